/**
 * The gRPC edge for providers: authenticates each stream's Register, keeps the registry in step with
 * heartbeats, routes per-request frames to their dispatcher handlers, evicts silent providers, and replaces a
 * session when the same serial reconnects.
 */
import * as grpc from "@grpc/grpc-js";
import { ProviderService as ProviderServiceDesc, LoadState, type CoordinatorMessage, type ProviderMessage } from "../../gen/coordinator/provider/v1/provider_pb.js";
import type { ProviderDirectory } from "../dispatch/provider-channel.js";
import type { ProviderRecord, ProviderRegistry } from "../registry/provider-registry.js";
import { count, gauge } from "../telemetry/metrics.js";
import type { Clock } from "../util/clock.js";
import { completeFromFrame, deltasFromChunk, errorFromFrame, heartbeatFromFrame, registerAckFrame, registrationFromFrame } from "./frames.js";
import { grpcServiceDefinition } from "./grpc-service.js";
import { decodeProviderMessage } from "./provider-message-decoder.js";
import { ProviderSession } from "./provider-session.js";

export interface ProviderServiceOptions {
  registry: ProviderRegistry;
  clock: Clock;
  /** Resolves a provider token to its owner account; undefined = reject with UNAUTHENTICATED. */
  authenticate(token: string): Promise<{ accountId: string } | undefined>;
  /** Interval the coordinator asks providers to heartbeat at. Default 5,000 ms. */
  heartbeatIntervalMs?: number;
  /** A provider silent for this long is evicted. Default 20,000 ms. */
  heartbeatTimeoutMs?: number;
  /** Register must arrive within this long of the stream opening. Default 10,000 ms. */
  registerTimeoutMs?: number;
  /** Called after a provider registers (e.g. to clear health state, drain queues). */
  onConnected?(rec: ProviderRecord): void;
  /** Called after a provider's session is gone and it left the registry. */
  onDisconnected?(rec: ProviderRecord, reason: string): void;
  /** A LoadModel outcome. */
  onLoadStatus?(rec: ProviderRecord, model: string, ok: boolean, error: string): void;
  log?(msg: string, fields?: Record<string, unknown>): void;
}

/** Status codes used on provider streams. */
const UNAUTHENTICATED = grpc.status.UNAUTHENTICATED;
const INVALID_ARGUMENT = grpc.status.INVALID_ARGUMENT;
const DEADLINE_EXCEEDED = grpc.status.DEADLINE_EXCEEDED;
const UNAVAILABLE = grpc.status.UNAVAILABLE;

export class ProviderService implements ProviderDirectory {
  readonly #o: Required<Omit<ProviderServiceOptions, "onConnected" | "onDisconnected" | "onLoadStatus" | "log">> & ProviderServiceOptions;
  readonly #sessions = new Map<string, ProviderSession>();
  readonly #handshaking = new Set<ProviderSession>();
  #sweepCancel: (() => void) | undefined;
  #closed = false;

  constructor(options: ProviderServiceOptions) {
    this.#o = { heartbeatIntervalMs: 5_000, heartbeatTimeoutMs: 20_000, registerTimeoutMs: 10_000, ...options };
    this.#scheduleSweep();
  }

  channel(providerId: string): ProviderSession | undefined {
    return this.#sessions.get(providerId);
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** The grpc-js handler for `ProviderService.Connect`. */
  readonly connect = (call: grpc.ServerDuplexStream<ProviderMessage, CoordinatorMessage>): void => {
    const { clock } = this.#o;
    const session = new ProviderSession(call, clock.nowMs());
    if (this.#closed) {
      session.close("coordinator shutting down", { code: UNAVAILABLE, details: "coordinator shutting down" });
      return;
    }
    this.#handshaking.add(session);
    call.on("data", (m: ProviderMessage) => this.#onFrame(session, m));
    // 'close' fires exactly once however the stream ends (grpc-js emits 'cancelled' even on a normal end).
    call.on("close", () => this.#onStreamGone(session, "stream closed"));
    call.on("error", () => this.#onStreamGone(session, "stream error"));
    call.on("end", () => session.close("provider ended the stream"));
  };

  #onFrame(session: ProviderSession, m: ProviderMessage): void {
    const { registry, clock } = this.#o;
    const msg = m.msg;
    if (session.state.t === "handshaking") {
      if (msg.case !== "register") {
        session.close("first frame was not Register", { code: INVALID_ARGUMENT, details: "first frame must be Register" });
        return;
      }
      void this.#register(session, msg.value);
      return;
    }
    if (session.state.t !== "ready") return;
    const id = session.state.providerId;
    const now = clock.nowMs();
    registry.touch(id, now);
    switch (msg.case) {
      case "heartbeat":
        registry.applyHeartbeat(id, heartbeatFromFrame(msg.value), now);
        break;
      case "inferenceAccepted":
        session.deliver(msg.value.requestId, { kind: "accepted" });
        break;
      case "inferenceChunk":
        session.deliver(msg.value.requestId, { kind: "chunk", deltas: deltasFromChunk(msg.value) });
        break;
      case "inferenceComplete":
        session.deliver(msg.value.requestId, completeFromFrame(msg.value));
        break;
      case "inferenceError":
        session.deliver(msg.value.requestId, errorFromFrame(msg.value));
        break;
      case "modelLoadStatus": {
        const rec = registry.get(id);
        const st = msg.value.state;
        if (!rec || (st !== LoadState.SUCCEEDED && st !== LoadState.FAILED)) break;
        registry.loadFinished(id, msg.value.model);
        this.#o.onLoadStatus?.(rec, msg.value.model, st === LoadState.SUCCEEDED, msg.value.error);
        break;
      }
      case "register":
        session.close("duplicate Register", { code: INVALID_ARGUMENT, details: "Register sent twice" });
        break;
      default:
        break; // unknown future frame: ignore
    }
  }

  async #register(session: ProviderSession, frame: Parameters<typeof registrationFromFrame>[0]): Promise<void> {
    const { registry, clock } = this.#o;
    const info = registrationFromFrame(frame);
    if (!info.serial) {
      session.close("missing serial", { code: INVALID_ARGUMENT, details: "Register.serial is required" });
      return;
    }
    let owner: { accountId: string } | undefined;
    try {
      owner = await this.#o.authenticate(info.authToken);
    } catch (e) {
      session.close("auth unavailable", { code: UNAVAILABLE, details: "provider authentication unavailable, retry" });
      this.#o.log?.("provider auth failed", { error: String(e) });
      return;
    }
    if (session.state.t !== "handshaking") return; // the stream ended while we were authenticating
    if (!owner) {
      count("provider.registrations", { outcome: "unauthenticated" });
      session.close("bad token", { code: UNAUTHENTICATED, details: "invalid provider token" });
      return;
    }
    this.#handshaking.delete(session);
    const previous = registry.bySerial(info.serial);
    if (previous) this.#sessions.get(previous.id)?.close("replaced by a new session", { code: UNAVAILABLE, details: "replaced by a newer session for this serial" });
    const rec = registry.add({ ...info, accountId: owner.accountId }, clock.nowMs());
    this.#sessions.set(rec.id, session);
    session.markReady(rec.id, (reason) => this.#evict(rec, reason));
    session.send(registerAckFrame(rec.id, this.#o.heartbeatIntervalMs, []));
    count("provider.registrations", { outcome: "ok" });
    gauge("providers.connected", this.#sessions.size);
    this.#o.log?.("provider registered", { provider_id: rec.id, serial: rec.serial, version: rec.version, models: rec.models.map((m) => m.id) });
    this.#o.onConnected?.(rec);
  }

  #onStreamGone(session: ProviderSession, reason: string): void {
    this.#handshaking.delete(session);
    session.streamEnded(reason);
  }

  #evict(rec: ProviderRecord, reason: string): void {
    const { registry } = this.#o;
    this.#sessions.delete(rec.id);
    registry.remove(rec.id);
    gauge("providers.connected", this.#sessions.size);
    count("provider.disconnects", {});
    this.#o.log?.("provider disconnected", { provider_id: rec.id, serial: rec.serial, reason });
    this.#o.onDisconnected?.(rec, reason);
  }

  /** Evicts providers silent past the heartbeat timeout and handshakes past the register timeout. */
  sweep(): void {
    const { clock, registry, heartbeatTimeoutMs, registerTimeoutMs } = this.#o;
    const now = clock.nowMs();
    for (const [id, session] of this.#sessions) {
      const rec = registry.get(id);
      if (rec && now - rec.lastHeartbeatMs > heartbeatTimeoutMs) {
        session.close("heartbeat timeout", { code: DEADLINE_EXCEEDED, details: "no heartbeat within the timeout" });
      }
    }
    for (const s of this.#handshaking) {
      if (s.state.t === "handshaking" && now - s.state.sinceMs > registerTimeoutMs) {
        this.#handshaking.delete(s);
        s.close("register timeout", { code: DEADLINE_EXCEEDED, details: "Register not received in time" });
      }
    }
  }

  #scheduleSweep(): void {
    const every = Math.max(250, Math.floor(this.#o.heartbeatTimeoutMs / 4));
    this.#sweepCancel = this.#o.clock.setTimeout(() => {
      this.sweep();
      if (!this.#closed) this.#scheduleSweep();
    }, every);
  }

  /** Closes every session (in-flight requests get `disconnected`). */
  closeAll(reason: string): void {
    this.#closed = true;
    this.#sweepCancel?.();
    for (const s of [...this.#sessions.values()]) s.close(reason, { code: UNAVAILABLE, details: reason });
    for (const s of [...this.#handshaking]) s.close(reason, { code: UNAVAILABLE, details: reason });
  }
}

export interface GrpcServerOptions {
  host?: string;
  port: number;
  /** Server keepalive ping interval; a frozen provider is detected within about time + timeout. Default 5,000 ms. */
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  /** Max message size both ways. Default 16 MiB (bodies carry images). */
  maxMessageBytes?: number;
}

/** Starts the grpc-js server for providers; resolves with the bound port. */
export async function startGrpcServer(service: ProviderService, o: GrpcServerOptions): Promise<{ port: number; close(): Promise<void> }> {
  const maxBytes = o.maxMessageBytes ?? 16 * 1024 * 1024;
  const server = new grpc.Server({
    "grpc.keepalive_time_ms": o.keepaliveTimeMs ?? 5_000,
    "grpc.keepalive_timeout_ms": o.keepaliveTimeoutMs ?? 3_000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.http2.min_ping_interval_without_data_ms": 1_000,
    "grpc.max_receive_message_length": maxBytes,
    "grpc.max_send_message_length": maxBytes,
  });
  server.addService(grpcServiceDefinition(ProviderServiceDesc, { requestDeserialize: decodeProviderMessage }), { connect: service.connect });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${o.host ?? "0.0.0.0"}:${o.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        service.closeAll("coordinator shutting down");
        const force = setTimeout(() => server.forceShutdown(), 2_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
