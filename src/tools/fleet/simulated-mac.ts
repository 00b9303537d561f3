/**
 * One simulated Apple-Silicon provider speaking the real provider protocol over grpc-js: it registers with
 * a provider token, heartbeats its capacity, loads and unloads models with realistic delays, admits or
 * rejects requests like a real provider, and generates deterministic text at a concurrency-dependent rate.
 * Failure injection (see failure-script.ts) makes it misbehave on purpose.
 *
 * States: `idle` (not started) → `connecting` → `registered` ⇄ `backoff` (stream broke; reconnecting with
 * exponential backoff) → `stopped` (stop()/kill()) or `unauthenticated` (the coordinator refused the token;
 * retrying cannot help, so the Mac gives up instead of hot-looping).
 *
 * Cancellation: on CancelInference the Mac stops the request at once and sends nothing more for it (no
 * CANCELLED error): the coordinator has already forgotten the id, so any further frame is noise.
 */
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  ErrorReason,
  LoadState,
  ProviderStatus,
  ThermalState,
  type CoordinatorMessage,
  type InferenceRequest,
  type ProviderMessageSchema,
  type RegisterAck,
} from "../../../gen/coordinator/provider/v1/provider_pb.js";
import { defaultCatalog } from "../../models/catalog.js";
import { keyPairFromSeed, signChallenge, type ProviderKeyPair } from "../../protocol/provider-keys.js";
import { systemClock, type Cancel, type Clock } from "../../util/clock.js";
import type { ChipProfile } from "./chip-profiles.js";
import { drawBehaviour, takeScripted, type FailureBehaviour, type ScriptedBehaviour } from "./failure-script.js";
import { PrefillGate, Run, runInference, scaledMs, type RunHost } from "./inference-run.js";
import { MacConnection, type MacStream } from "./mac-connection.js";
import type { MacState, RunRecord, SimModelOption, SimulatedMacOptions } from "./simulated-mac-options.js";
import { decodeTps, prefillTps, simModelSpec, type SimModelSpec } from "./mac-performance.js";
import { ModelSlots, type Slot } from "./model-slots.js";
import {
  countPromptTokens,
  hasNullableOrUntypedSchema,
  hashSeed,
  naturalLength,
  parseChatBody,
} from "./sim-request.js";
import { compareVersions } from "../../util/version.js";
import { mulberry32 } from "../shared/mulberry32.js";

type ProviderMessageInit = MessageInitShape<typeof ProviderMessageSchema>;

export type { MacState, RunRecord, SimModelOption, SimulatedMacOptions } from "./simulated-mac-options.js";

/** A simulated Mac provider. Call `start()`, then `ready()`. */
export class SimulatedMac extends EventEmitter {
  readonly serial: string;
  readonly version: string;
  readonly chip: ChipProfile;
  /** Request ids of every CancelInference received, in order. */
  readonly cancelsReceived: string[] = [];
  /** Request ids of every InferenceRequest received, in order. */
  readonly requestsReceived: string[] = [];
  /** The W3C trace context (`traceparent`, ...) of every InferenceRequest received, by request id. */
  readonly traceContextsReceived = new Map<string, Record<string, string>>();
  /** Finished requests (completed, failed, rejected, aborted or cut by a disconnect). */
  readonly records: RunRecord[] = [];
  /** Number of successful registrations (1 + reconnects). */
  registrations = 0;
  providerId: string | undefined;
  /** The last stream failure status, if any. */
  lastError: { code: grpc.status; details: string } | undefined;

  readonly #o: SimulatedMacOptions;
  readonly #clock: Clock;
  readonly #timeScale: number;
  readonly #instant: boolean;
  readonly #onDisk = new Map<string, SimModelSpec>();
  readonly #modelOptions = new Map<string, SimModelOption>();
  readonly #slots: ModelSlots;
  readonly #runs = new Map<string, Run>();
  readonly #decoding = { count: 0 };
  readonly #prefill = new PrefillGate();
  readonly #script: ScriptedBehaviour[];
  readonly #random: () => number;
  readonly #loadTimers = new Set<Cancel>();
  readonly #ready: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void };
  #state: MacState = "idle";
  #connection: MacConnection | undefined;
  #stream: MacStream | undefined;
  #heartbeatCancel: Cancel | undefined;
  #reconnectCancel: Cancel | undefined;
  #attempt = 0;
  #warmed = false;
  readonly #keys: ProviderKeyPair;

  constructor(options: SimulatedMacOptions) {
    super();
    this.#o = options;
    this.serial = options.serial;
    this.version = options.version ?? "0.7.0";
    this.chip = options.chip;
    this.#clock = options.clock ?? systemClock;
    this.#instant = options.instant === true || options.timeScale === Infinity;
    this.#timeScale = this.#instant ? Infinity : Math.max(1e-6, options.timeScale ?? 1);
    this.#script = [...(options.failures?.script ?? [])];
    this.#random = mulberry32(hashSeed(options.serial, String(options.seed ?? 0)));
    this.#keys = keyPairFromSeed(options.keySeed ?? simulatedKeySeed(options.serial));
    for (const m of options.models) {
      const opt = typeof m === "string" ? { id: m } : m;
      const spec = simModelSpec(opt.id, options.catalog ?? defaultCatalog);
      if (opt.isVision !== undefined) spec.isVision = opt.isVision;
      this.#onDisk.set(opt.id, spec);
      this.#modelOptions.set(opt.id, opt);
    }
    this.#slots = new ModelSlots({
      chip: options.chip,
      onDisk: this.#onDisk,
      maxModelSlots: options.maxModelSlots ?? 2,
      maxConcurrency: options.maxConcurrency ?? 8,
      diskGbs: options.diskGbs ?? 3,
    });
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {}); // callers of ready() still see the rejection
    this.#ready = { promise, resolve, reject };
  }

  get state(): MacState {
    return this.#state;
  }

  /** Opens the connection and registers. */
  start(): this {
    if (this.#state !== "idle") return this;
    this.#connection = new MacConnection(this.#o);
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
    return this.#slots.all().filter((s) => s.state === "ready").map((s) => s.spec.id);
  }

  /** Requests currently in flight on this Mac. */
  activeRequests(): number {
    return this.#runs.size;
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
    for (const cancel of this.#loadTimers) cancel();
    this.#loadTimers.clear();
    for (const run of this.#runs.values()) run.abort();
    const stream = this.#stream;
    this.#stream = undefined;
    return stream;
  }

  // ---------------------------------------------------------------------------------------------------
  // Connection lifecycle
  // ---------------------------------------------------------------------------------------------------

  #openStream(): void {
    this.#state = "connecting";
    const stream = this.#connection!.open({
      onMessage: (m) => this.#onMessage(m),
      onEnd: (status) => this.#onStreamEnd(stream, status),
    });
    this.#stream = stream;
    const first = this.#onDisk.values().next().value as SimModelSpec | undefined;
    void stream.send({
      msg: {
        case: "register",
        value: {
          authToken: this.#o.token,
          serial: this.serial,
          publicKey: this.#keys.publicKey,
          version: this.version,
          hardware: {
            chipName: this.chip.chipName,
            chipFamily: this.chip.chipFamily,
            memoryGb: this.chip.memoryGb,
            memoryBandwidthGbs: this.chip.memoryBandwidthGbs,
            gpuCores: this.chip.gpuCores,
          },
          decodeTps: first ? decodeTps(this.chip, first) : 0,
          prefillTps: first ? prefillTps(this.chip, first) : 0,
          maxModelSlots: this.#o.maxModelSlots ?? 2,
          privateOnly: this.#o.privateOnly === true,
          models: [...this.#onDisk.values()].map((spec) => {
            const opt = this.#modelOptions.get(spec.id)!;
            return {
              id: spec.id,
              sizeBytes: BigInt(spec.sizeBytes),
              quantization: opt.quantization ?? (spec.id.startsWith("gpt-oss") ? "mxfp4" : "4bit"),
              contextLength: spec.contextLength,
              isVision: spec.isVision,
              ...(opt.templateRenderOk === undefined ? {} : { templateRenderOk: opt.templateRenderOk }),
            };
          }),
        },
      },
    });
  }

  #onStreamEnd(stream: MacStream, status: { code: grpc.status; details: string }): void {
    if (this.#stream !== stream) return; // an old stream (replaced, or stopped on purpose)
    this.#stream = undefined;
    this.#heartbeatCancel?.();
    for (const run of this.#runs.values()) run.abort();
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
    const delayMs = Math.min(this.#o.reconnectMaxMs ?? 10_000, base * 2 ** this.#attempt) * (0.8 + 0.4 * this.#random());
    this.#attempt++;
    this.#reconnectCancel = this.#clock.setTimeout(() => {
      if (this.#state === "backoff") this.#openStream();
    }, delayMs);
  }

  #onMessage(m: CoordinatorMessage): void {
    switch (m.msg.case) {
      case "registerAck":
        return this.#onRegistered(m.msg.value);
      case "challenge": {
        // Prove the machine's key: the coordinator refuses a serial whose key cannot sign its nonce.
        const nonce = m.msg.value.nonce;
        const signature = this.#o.badSignatures ? new Uint8Array(64) : signChallenge(this.#keys.privateKey, this.serial, nonce);
        void this.#stream?.send({ msg: { case: "challengeResponse", value: { nonce, signature } } });
        return;
      }
      case "inferenceRequest":
        void this.#onInference(m.msg.value);
        return;
      case "cancelInference":
        this.cancelsReceived.push(m.msg.value.requestId);
        this.#runs.get(m.msg.value.requestId)?.abort();
        this.emit("cancel", m.msg.value.requestId);
        return;
      case "loadModel":
        this.#beginLoad(m.msg.value.model);
        return;
      case "unloadModel":
        if (this.#slots.unload(m.msg.value.model)) {
          this.#sendLoadStatus(m.msg.value.model, LoadState.UNLOADED);
          this.#heartbeat();
        }
        return;
      default:
        return;
    }
  }

  #onRegistered(ack: RegisterAck): void {
    this.#state = "registered";
    this.#attempt = 0;
    this.registrations++;
    this.providerId = ack.providerId;
    this.#log(`registered as ${ack.providerId} (${this.chip.chipName} ${this.chip.memoryGb} GB, v${this.version})`);
    this.#ready.resolve();
    this.emit("registered", ack);
    const intervalMs = Math.max(
      10,
      this.#o.heartbeatIntervalMs ?? (ack.heartbeatIntervalMs > 0 ? ack.heartbeatIntervalMs : Math.max(200, 2000 / this.#timeScale)),
    );
    const beat = () => {
      this.#heartbeat();
      this.#heartbeatCancel = this.#clock.setTimeout(beat, intervalMs);
    };
    this.#heartbeatCancel?.();
    beat();
    const toLoad = [...ack.desiredModels, ...(this.#warmed ? [] : (this.#o.warmModels ?? []))];
    this.#warmed = true;
    for (const model of toLoad) this.#beginLoad(model);
  }

  #heartbeat(): void {
    const slots = this.#slots.all();
    const running = slots.reduce((n, s) => n + s.running, 0);
    void this.#send({
      msg: {
        case: "heartbeat",
        value: {
          status: running > 0 ? ProviderStatus.SERVING : ProviderStatus.IDLE,
          system: {
            memoryPressure: this.#slots.memoryPressure(),
            cpuUsage: Math.min(1, 0.05 + 0.1 * this.#decoding.count),
            thermalState: this.#decoding.count >= 4 ? ThermalState.FAIR : ThermalState.NOMINAL,
          },
          capacity: this.#slots.capacity(),
          warmModels: this.loadedModels(),
        },
      },
    });
  }

  #send(msg: ProviderMessageInit): Promise<boolean> {
    return this.#stream ? this.#stream.send(msg) : Promise.resolve(false);
  }

  #sendLoadStatus(model: string, state: LoadState, extra: { error?: string; loadTimeMs?: number } = {}): void {
    void this.#send({ msg: { case: "modelLoadStatus", value: { model, state, ...extra } } });
  }

  #log(line: string): void {
    this.#o.log?.(`[${this.serial}] ${line}`);
  }

  // ---------------------------------------------------------------------------------------------------
  // Models
  // ---------------------------------------------------------------------------------------------------

  /**
   * Starts (or joins) a load. `beforeStart` runs just before ModelLoadStatus STARTED, so an inference
   * request can send InferenceAccepted first. Returns the ready slot, a promise, or a refusal.
   */
  #beginLoad(
    model: string,
    beforeStart?: () => void,
  ): { kind: "ready"; slot: Slot } | { kind: "pending"; slot: Slot } | { kind: "refused"; reason: ErrorReason; message: string } {
    const d = this.#slots.beginLoad(model, this.#clock.nowMs());
    if (d.kind === "loaded") return { kind: "ready", slot: d.slot };
    if (d.kind === "loading") {
      beforeStart?.();
      return { kind: "pending", slot: d.slot };
    }
    if (d.kind === "refused") {
      this.#sendLoadStatus(model, LoadState.FAILED, { error: d.message });
      const reason = d.reason === "insufficient_memory" ? ErrorReason.INSUFFICIENT_MEMORY : d.reason === "no_free_slot" ? ErrorReason.CAPACITY : ErrorReason.MODEL_LOAD_FAILED;
      return { kind: "refused", reason, message: d.message };
    }
    for (const evicted of d.evicted) this.#sendLoadStatus(evicted, LoadState.UNLOADED);
    beforeStart?.();
    this.#sendLoadStatus(model, LoadState.STARTED);
    const slot = d.slot;
    slot.whenReady = new Promise<boolean>((resolve) => {
      const finish = () => {
        this.#loadTimers.delete(cancel);
        if (this.#slots.get(model) !== slot) return resolve(false);
        this.#slots.finishLoad(model);
        this.#sendLoadStatus(model, LoadState.SUCCEEDED, { loadTimeMs: slot.loadTimeMs });
        this.#log(`loaded ${model} in ${slot.loadTimeMs} ms (simulated)`);
        this.#heartbeat();
        resolve(true);
      };
      const cancel = this.#clock.setTimeout(finish, scaledMs(this.#hostTiming(), slot.loadTimeMs));
      this.#loadTimers.add(() => {
        cancel();
        resolve(false);
      });
    });
    this.#heartbeat();
    return { kind: "pending", slot };
  }

  #hostTiming(): { timeScale: number; instant: boolean } {
    return { timeScale: this.#timeScale, instant: this.#instant };
  }

  // ---------------------------------------------------------------------------------------------------
  // Inference
  // ---------------------------------------------------------------------------------------------------

  async #onInference(req: InferenceRequest): Promise<void> {
    const id = req.requestId;
    this.requestsReceived.push(id);
    this.traceContextsReceived.set(id, { ...req.traceContext });
    const stream = this.#stream;
    const sendError = (statusCode: number, reason: ErrorReason, message: string) =>
      void stream?.send({ msg: { case: "inferenceError", value: { requestId: id, statusCode, reason, message } } });
    const reject = (statusCode: number, reason: ErrorReason, message: string) => {
      sendError(statusCode, reason, message);
      this.records.push({ requestId: id, model: req.model, behaviour: "normal", outcome: "rejected", promptTokens: 0, completionTokens: 0, decodeTps: undefined });
    };
    const body = parseChatBody(req.bodyJson);
    if (!body) return reject(400, ErrorReason.INVALID_REQUEST, "body_json is not a chat-completions object");
    const spec = this.#onDisk.get(req.model);
    if (!spec) return reject(503, ErrorReason.MODEL_LOAD_FAILED, `model ${req.model} is not on this provider`);
    const promptTokens = countPromptTokens(body);
    if (promptTokens >= spec.contextLength) {
      return reject(400, ErrorReason.CONTEXT_OVERFLOW, `prompt of ${promptTokens} tokens exceeds context ${spec.contextLength}`);
    }
    const requested = body.maxTokens ?? (req.traits?.maxTokens || spec.defaultMaxTokens);
    const maxTokens = Math.max(1, Math.min(requested, spec.contextLength - promptTokens));
    const run = new Run(id, this.#clock);

    // Cold model: accept, load, then admit.
    const load = this.#beginLoad(req.model, () => void stream?.send({ msg: { case: "inferenceAccepted", value: { requestId: id } } }));
    if (load.kind === "refused") return reject(503, load.reason, load.message);
    const slot = load.slot;
    this.#runs.set(id, run);
    try {
      if (load.kind === "pending") {
        slot.waiting++;
        const ok = await slot.whenReady;
        slot.waiting--;
        if (run.aborted) return;
        if (!ok) return reject(503, ErrorReason.MODEL_LOAD_FAILED, `loading ${req.model} was abandoned`);
      }
      // Continuous batching: only the prompt's KV is needed to start; output KV grows as it is generated.
      const admit = this.#slots.admit(slot, promptTokens, this.#clock.nowMs());
      if (admit.kind === "rejected") return reject(503, ErrorReason.CAPACITY, admit.message);
      const lease = admit.lease;
      try {
        await this.#generate(req, run, slot, { promptTokens, maxTokens, body, stream, growKv: (n) => this.#slots.grow(slot, lease, n) });
      } finally {
        this.#slots.release(slot, lease, this.#clock.nowMs());
      }
    } finally {
      this.#runs.delete(id);
    }
  }

  async #generate(
    req: InferenceRequest,
    run: Run,
    slot: Slot,
    ctx: {
      promptTokens: number;
      maxTokens: number;
      body: NonNullable<ReturnType<typeof parseChatBody>>;
      stream: MacStream | undefined;
      growKv: (tokens: number) => Promise<void> | undefined;
    },
  ): Promise<void> {
    const { body, stream } = ctx;
    const hasTools = body.tools.length > 0;
    const modelOpt = this.#modelOptions.get(req.model);
    const crashBelow = this.#o.failures?.templateCrashOnNullableToolsBelow;
    let behaviour: FailureBehaviour;
    if (modelOpt?.templateRenderOk === false) {
      behaviour = { kind: "error_before_content", statusCode: 500, reason: ErrorReason.TEMPLATE, message: "chat template failed to render" };
    } else if (crashBelow && hasTools && compareVersions(this.version, crashBelow) < 0 && hasNullableOrUntypedSchema(body.tools)) {
      behaviour = { kind: "error_before_content", statusCode: 500, reason: ErrorReason.TEMPLATE, message: "chat template crashed on a tool schema without a string type" };
    } else if ((body.hasImages || req.traits?.requiresVision) && !slot.spec.isVision) {
      // What a text-only build does with an image: a sickness error after the role delta, not a 4xx.
      behaviour = { kind: "error_before_content", statusCode: 500, reason: ErrorReason.INTERNAL, message: "this build has no vision encoder" };
    } else {
      behaviour = takeScripted(this.#script, { model: req.model, hasTools }) ?? drawBehaviour(this.#o.failures ?? {}, this.#random());
      // A model told it must call a tool does so (tool_choice "required" or a named function).
      if (behaviour.kind === "normal" && body.toolCallRequired) behaviour = { kind: "tool_call" };
    }
    if (behaviour.kind === "tool_call" && (!hasTools || body.toolCallForbidden)) behaviour = { kind: "normal" };
    const seed = hashSeed(req.model, req.bodyJson);
    const range = this.#o.naturalTokens ?? { min: 20, max: 200 };
    const host: RunHost = {
      clock: this.#clock,
      timeScale: this.#timeScale,
      instant: this.#instant,
      coalesceMs: this.#o.coalesceMs ?? 5,
      decoding: this.#decoding,
      prefill: this.#prefill,
      growKv: ctx.growKv,
      send: (msg, options) => (this.#stream === stream && stream ? stream.send(msg, options) : Promise.resolve(false)),
      dropConnection: () => {
        if (this.#stream === stream) this.dropConnection();
      },
    };
    const outcome = await runInference(host, run, {
      model: req.model,
      promptTokens: ctx.promptTokens,
      maxTokens: ctx.maxTokens,
      naturalTokens: naturalLength(seed, range.min, range.max),
      seed,
      decodeTps: decodeTps(this.chip, slot.spec),
      prefillTps: prefillTps(this.chip, slot.spec),
      behaviour,
      tools: body.tools,
      stop: body.stop,
      reasoning: this.#o.reasoning === true && req.model.startsWith("gpt-oss"),
    });
    let decodeRate: number | undefined;
    if (outcome.kind === "completed" && outcome.decodeTps !== undefined) {
      decodeRate = outcome.decodeTps;
      slot.observedDecodeTps = 0.7 * slot.observedDecodeTps + 0.3 * outcome.decodeTps;
    }
    this.records.push({
      requestId: req.requestId,
      model: req.model,
      behaviour: behaviour.kind,
      outcome: outcome.kind,
      promptTokens: ctx.promptTokens,
      completionTokens: outcome.kind === "completed" ? outcome.completionTokens : 0,
      decodeTps: decodeRate,
    });
    this.emit("record", this.records[this.records.length - 1]);
  }
}

/**
 * The simulator's key seed for a serial: deterministic, so a simulated Mac keeps its identity across restarts
 * like a real one keeping its key on disk. Anyone who knows the serial can derive it, which is fine for a
 * simulator and why real providers generate theirs randomly.
 */
export function simulatedKeySeed(serial: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update("simulated-mac-key\0").update(serial).digest());
}
