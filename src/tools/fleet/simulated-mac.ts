/**
 * One simulated Apple-Silicon provider speaking the real provider protocol over grpc-js: it registers with
 * a provider token, heartbeats its capacity, loads and unloads models with realistic delays, admits or
 * rejects requests like a real provider, and generates deterministic text at a concurrency-dependent rate.
 * Failure injection (see failure-script.ts) makes it misbehave on purpose. This class owns the connection
 * and its lifecycle; loads are mac-model-loader.ts's, requests inference-engine.ts's, frames mac-frames.ts's.
 *
 * States: `idle` (not started) → `connecting` → `registered` ⇄ `backoff` (stream broke; reconnecting with
 * exponential backoff) → `stopped` (stop()/kill()) or `unauthenticated` (the coordinator refused the token;
 * retrying cannot help, so the Mac gives up instead of hot-looping). With several coordinator addresses each
 * reconnect goes to the next address in rotation, the way a provider with a list of coordinators re-homes.
 *
 * Cancellation: on CancelInference the Mac stops the request at once and sends nothing more for it (no
 * CANCELLED error): the coordinator has already forgotten the id, so any further frame is noise.
 */
import { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";
import type { CoordinatorMessage, LoadState, RegisterAck } from "../../../gen/coordinator/provider/v1/provider_pb.js";
import { keyPairFromSeed, signChallenge, type ProviderKeyPair } from "../../protocol/provider-keys.js";
import { systemClock, type Cancel, type Clock } from "../../util/clock.js";
import { mulberry32 } from "../shared/mulberry32.js";
import type { ChipProfile } from "./chip-profiles.js";
import type { ScriptedBehaviour } from "./failure-script.js";
import { InferenceEngine } from "./inference-engine.js";
import { MacConnection, type MacStream } from "./mac-connection.js";
import { heartbeatFrame, registerFrame } from "./mac-frames.js";
import { MacModelLoader } from "./mac-model-loader.js";
import type { SimModelSpec } from "./mac-performance.js";
import { ModelSlots } from "./model-slots.js";
import { hashSeed } from "./sim-request.js";
import {
  simModelsOnDisk,
  type MacState,
  type RunRecord,
  type SimModelOption,
  type SimulatedMacOptions,
} from "./simulated-mac-options.js";
import { simulatedKeySeed } from "./simulated-key-seed.js";

export type {
  ExecutionEntry,
  MacState,
  RunRecord,
  SimModelOption,
  SimulatedMacOptions,
} from "./simulated-mac-options.js";

/** A simulated Mac provider. Call `start()`, then `ready()`. */
export class SimulatedMac extends EventEmitter {
  readonly serial: string;
  readonly version: string;
  readonly chip: ChipProfile;
  /** Request ids of every CancelInference received, in order. */
  readonly cancelsReceived: string[] = [];
  /** Request ids of every InferenceRequest received, in order. */
  readonly requestsReceived: string[];
  /** The W3C trace context (`traceparent`, ...) of every InferenceRequest received, by request id. */
  readonly traceContextsReceived: Map<string, Record<string, string>>;
  /** Finished requests (completed, failed, rejected, aborted or cut by a disconnect). */
  readonly records: RunRecord[];
  /** Number of successful registrations (1 + reconnects). */
  registrations = 0;
  providerId: string | undefined;
  /** The last stream failure status, if any. */
  lastError: { code: grpc.status; details: string } | undefined;

  readonly #o: SimulatedMacOptions;
  readonly #clock: Clock;
  readonly #timeScale: number;
  readonly #onDisk: ReadonlyMap<string, SimModelSpec>;
  readonly #modelOptions: ReadonlyMap<string, SimModelOption>;
  readonly #slots: ModelSlots;
  readonly #loader: MacModelLoader;
  readonly #engine: InferenceEngine;
  readonly #script: ScriptedBehaviour[];
  readonly #random: () => number;
  readonly #ready: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void };
  #state: MacState = "idle";
  #connection: MacConnection | undefined;
  #stream: MacStream | undefined;
  #heartbeatCancel: Cancel | undefined;
  #reconnectCancel: Cancel | undefined;
  #registerTimeoutCancel: Cancel | undefined;
  #attempt = 0;
  /** Rotation of coordinator addresses and the index of the one in use. */
  readonly #addresses: readonly string[];
  #addressIndex = 0;
  #warmed = false;
  readonly #keys: ProviderKeyPair;

  constructor(options: SimulatedMacOptions) {
    super();
    this.#o = options;
    this.serial = options.serial;
    this.version = options.version ?? "0.7.0";
    this.chip = options.chip;
    this.#clock = options.clock ?? systemClock;
    const instant = options.instant === true || options.timeScale === Infinity;
    this.#timeScale = instant ? Infinity : Math.max(1e-6, options.timeScale ?? 1);
    this.#script = [...(options.failures?.script ?? [])];
    this.#random = mulberry32(hashSeed(options.serial, String(options.seed ?? 0)));
    this.#keys = keyPairFromSeed(options.keySeed ?? simulatedKeySeed(options.serial));
    const list = options.coordinators ?? [];
    this.#addresses = list.includes(options.coordinator) ? list : [options.coordinator, ...list];
    this.#addressIndex = this.#addresses.indexOf(options.coordinator);
    ({ specs: this.#onDisk, options: this.#modelOptions } = simModelsOnDisk(options));
    this.#slots = new ModelSlots({
      chip: options.chip,
      onDisk: this.#onDisk,
      maxModelSlots: options.maxModelSlots ?? 2,
      maxConcurrency: options.maxConcurrency ?? 8,
      diskGbs: options.diskGbs ?? 3,
    });
    this.#loader = new MacModelLoader({
      slots: this.#slots,
      clock: this.#clock,
      timing: { timeScale: this.#timeScale, instant },
      sendLoadStatus: (model, state, extra) => this.#sendLoadStatus(model, state, extra),
      heartbeat: () => this.#heartbeat(),
      log: (line) => this.#log(line),
    });
    this.#engine = new InferenceEngine({
      options,
      version: this.version,
      chip: this.chip,
      clock: this.#clock,
      timeScale: this.#timeScale,
      instant,
      onDisk: this.#onDisk,
      modelOptions: this.#modelOptions,
      slots: this.#slots,
      script: this.#script,
      random: this.#random,
      currentStream: () => this.#stream,
      beginLoad: (model, beforeStart) => this.#loader.begin(model, beforeStart),
      dropConnection: () => this.dropConnection(),
      onRecord: (record) => this.emit("record", record),
      serial: options.serial,
      address: () => this.address,
    });
    this.requestsReceived = this.#engine.requestsReceived;
    this.traceContextsReceived = this.#engine.traceContextsReceived;
    this.records = this.#engine.records;
    let settle!: { resolve: () => void; reject: (e: Error) => void };
    const promise = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    promise.catch(() => {}); // callers of ready() still see the rejection
    this.#ready = { promise, ...settle };
  }

  get state(): MacState {
    return this.#state;
  }

  /** The coordinator address the Mac is connected (or connecting) to. */
  get address(): string {
    return this.#addresses[this.#addressIndex]!;
  }

  /** Opens the connection and registers. */
  start(): this {
    if (this.#state !== "idle") return this;
    this.#connection = new MacConnection({ ...this.#o, coordinator: this.address });
    this.#openStream();
    return this;
  }

  /** Resolves on the first RegisterAck; rejects if the token is refused or the Mac stops first. */
  ready(): Promise<void> {
    return this.#ready.promise;
  }

  /** Queues scripted behaviours for the next matching requests. */
  script(...behaviours: ScriptedBehaviour[]): void {
    this.#script.push(...behaviours);
  }

  /** Ids of resident models that finished loading. */
  loadedModels(): string[] {
    return this.#slots
      .all()
      .filter((s) => s.state === "ready")
      .map((s) => s.spec.id);
  }

  /** Requests currently in flight on this Mac. */
  activeRequests(): number {
    return this.#engine.active;
  }

  /** Stops cleanly: ends in-flight work, half-closes the stream, closes the channel. */
  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    const stream = this.#shutdown();
    await stream?.end();
    this.#connection?.close();
  }

  /** Crashes: resets the stream and closes the channel with no goodbye; the Mac does not come back. */
  kill(): void {
    if (this.#state === "stopped") return;
    this.#shutdown()?.cancel();
    this.#connection?.close();
  }

  /** Breaks the current stream abruptly; the Mac reconnects (same serial) after its backoff. */
  dropConnection(): void {
    this.#stream?.cancel();
  }

  #shutdown(): MacStream | undefined {
    this.#state = "stopped";
    this.#ready.reject(new Error(`mac ${this.serial} stopped`));
    this.#heartbeatCancel?.();
    this.#reconnectCancel?.();
    this.#registerTimeoutCancel?.();
    this.#loader.cancelAll();
    this.#engine.abortAll();
    const stream = this.#stream;
    this.#stream = undefined;
    return stream;
  }

  #openStream(): void {
    this.#state = "connecting";
    const stream = this.#connection!.open({
      onMessage: (m) => this.#onMessage(m),
      onEnd: (status) => this.#onStreamEnd(stream, status),
    });
    this.#stream = stream;
    const bound = this.#o.registerTimeoutMs;
    if (bound !== undefined) {
      this.#registerTimeoutCancel?.();
      // Cancelling ends the stream with CANCELLED, so the usual path (backoff, next address) follows.
      this.#registerTimeoutCancel = this.#clock.setTimeout(() => {
        if (this.#stream === stream && this.#state === "connecting") {
          this.#log(`no RegisterAck from ${this.address} within ${bound} ms; moving on`);
          stream.cancel();
        }
      }, bound);
    }
    const { serial, version, chip } = this;
    void stream.send(
      registerFrame({
        options: this.#o,
        serial,
        version,
        chip,
        publicKey: this.#keys.publicKey,
        onDisk: this.#onDisk,
        modelOptions: this.#modelOptions,
      }),
    );
  }

  #onStreamEnd(stream: MacStream, status: { code: grpc.status; details: string }): void {
    if (this.#stream !== stream) return; // an old stream (replaced, or stopped on purpose)
    this.#stream = undefined;
    this.#heartbeatCancel?.();
    this.#registerTimeoutCancel?.();
    this.#engine.abortAll();
    if (this.#state === "stopped") return;
    this.lastError = status;
    this.emit("disconnected", status);
    if (status.code === grpc.status.UNAUTHENTICATED || status.code === grpc.status.PERMISSION_DENIED) {
      this.#state = "unauthenticated";
      this.#log(`auth refused (${grpc.status[status.code]}: ${status.details}); not retrying`);
      this.#ready.reject(new Error(`mac ${this.serial}: ${grpc.status[status.code]}: ${status.details}`));
      this.emit("auth_failed", status);
      this.#connection?.close();
      return;
    }
    this.#state = "backoff";
    const base = this.#o.reconnectBaseMs ?? 250;
    const delayMs =
      Math.min(this.#o.reconnectMaxMs ?? 10_000, base * 2 ** this.#attempt) * (0.8 + 0.4 * this.#random());
    this.#attempt++;
    this.#reconnectCancel = this.#clock.setTimeout(() => {
      if (this.#state !== "backoff") return;
      if (this.#addresses.length > 1) {
        // A new channel per address: a grpc-js client is bound to one target.
        this.#connection?.close();
        this.#addressIndex = (this.#addressIndex + 1) % this.#addresses.length;
        this.#connection = new MacConnection({ ...this.#o, coordinator: this.address });
      }
      this.#openStream();
    }, delayMs);
  }

  #onMessage(m: CoordinatorMessage): void {
    switch (m.msg.case) {
      case "registerAck":
        this.#onRegistered(m.msg.value);
        return;
      case "challenge": {
        // Prove the machine's key: the coordinator refuses a serial whose key cannot sign its nonce.
        const nonce = m.msg.value.nonce;
        const signature = this.#o.badSignatures
          ? new Uint8Array(64)
          : signChallenge(this.#keys.privateKey, this.serial, nonce);
        void this.#stream?.send({ msg: { case: "challengeResponse", value: { nonce, signature } } });
        return;
      }
      case "inferenceRequest":
        void this.#engine.serve(m.msg.value);
        return;
      case "cancelInference":
        this.cancelsReceived.push(m.msg.value.requestId);
        this.#engine.cancel(m.msg.value.requestId);
        this.emit("cancel", m.msg.value.requestId);
        return;
      case "loadModel":
        this.#loader.begin(m.msg.value.model);
        return;
      case "unloadModel":
        this.#loader.unload(m.msg.value.model);
        return;
      default:
        return;
    }
  }

  #onRegistered(ack: RegisterAck): void {
    this.#registerTimeoutCancel?.();
    this.#state = "registered";
    this.#attempt = 0;
    this.registrations++;
    this.providerId = ack.providerId;
    this.#log(
      `registered as ${ack.providerId} at ${this.address} (${this.chip.chipName} ${this.chip.memoryGb} GB, v${this.version})`,
    );
    this.#ready.resolve();
    this.emit("registered", ack);
    const intervalMs = Math.max(
      10,
      this.#o.heartbeatIntervalMs ??
        (ack.heartbeatIntervalMs > 0 ? ack.heartbeatIntervalMs : Math.max(200, 2000 / this.#timeScale)),
    );
    const beat = () => {
      this.#heartbeat();
      this.#heartbeatCancel = this.#clock.setTimeout(beat, intervalMs);
    };
    this.#heartbeatCancel?.();
    beat();
    const toLoad = [...ack.desiredModels, ...(this.#warmed ? [] : (this.#o.warmModels ?? []))];
    this.#warmed = true;
    for (const model of toLoad) this.#loader.begin(model);
  }

  #heartbeat(): void {
    void this.#send(heartbeatFrame(this.#slots, this.#engine.decoding));
  }

  #send(msg: Parameters<MacStream["send"]>[0]): Promise<boolean> {
    return this.#stream ? this.#stream.send(msg) : Promise.resolve(false);
  }

  #sendLoadStatus(model: string, state: LoadState, extra: { error?: string; loadTimeMs?: number } = {}): void {
    void this.#send({ msg: { case: "modelLoadStatus", value: { model, state, ...extra } } });
  }

  #log(line: string): void {
    this.#o.log?.(`[${this.serial}] ${line}`);
  }
}
