/**
 * The gRPC edge for providers: admits each stream's Register (frame validation, provider token, serial
 * ownership, Ed25519 key proof), keeps the registry in step with heartbeats, routes per-request frames to their
 * dispatcher handlers, re-challenges live sessions, ends sessions whose token was revoked, and evicts silent
 * providers.
 *
 * Providers are strangers' machines: nothing they send is trusted before frames.ts has validated it, a serial
 * belongs to the account whose token first registered it, and only the holder of the serial's key can take its
 * place. See the README's "Trust model".
 */
import * as grpc from "@grpc/grpc-js";
import { LoadState, type CoordinatorMessage, type ProviderMessage, type Register } from "../../gen/coordinator/provider/v1/provider_pb.js";
import type { ProviderDirectory } from "../dispatch/provider-channel.js";
import type { ProviderIdentityStore } from "../ledger/provider-identities.js";
import type { ProviderRecord, ProviderRegistry } from "../registry/provider-registry.js";
import { count, gauge } from "../telemetry/metrics.js";
import type { Clock } from "../util/clock.js";
import { silentLogger, type Logger } from "../util/logger.js";
import { FrameBudget, MAX_STRIKES, STRIKE_WINDOW_MS, type FrameKind } from "./frame-budget.js";
import { completeFromFrame, deltasFromChunk, errorFromFrame, heartbeatFromFrame, registerAckFrame } from "./frames.js";
import { MALFORMED_FRAME } from "./provider-message-decoder.js";
import { challengeSession, type ChallengeOutcome } from "./key-challenge.js";
import { ProviderAdmission } from "./provider-admission.js";
import { ProviderSession } from "./provider-session.js";
import { ProtocolViolation } from "./wire-bounds.js";

export interface ProviderServiceOptions {
  registry: ProviderRegistry;
  clock: Clock;
  /** Resolves a provider token to its owner account and token id; undefined = reject with UNAUTHENTICATED. */
  authenticate(token: string): Promise<{ accountId: string; tokenId: string } | undefined>;
  /** Serial → owner, key and opaque id. */
  identities: ProviderIdentityStore;
  /** The ids among these that are revoked (sessions holding them end). Without it, only {@link ProviderService.revokeToken} ends sessions. */
  revokedTokens?(tokenIds: readonly string[]): Promise<Set<string>>;
  /** Interval the coordinator asks providers to heartbeat at. Default 5,000 ms. */
  heartbeatIntervalMs?: number;
  /** A provider silent for this long is evicted. Default 20,000 ms. */
  heartbeatTimeoutMs?: number;
  /** Register (and the answer to its key challenge) must arrive within this long of the stream opening. Default 10,000 ms. */
  registerTimeoutMs?: number;
  /** A live session proves its key again this often. Default 300,000 ms. */
  challengeIntervalMs?: number;
  /** A live session must answer a challenge within this long. Default 30,000 ms. */
  challengeTimeoutMs?: number;
  /** How often live sessions' tokens are checked for revocation. Default 5,000 ms. */
  revocationCheckMs?: number;
  /** A serial disconnected for flooding may not register again for this long. Default 30,000 ms. */
  floodPenaltyMs?: number;
  /** Provider machines (serials) one account may own. Default 10,000. */
  maxMachinesPerAccount?: number;
  /** Called after a provider registers (e.g. to clear health state, drain queues). */
  onConnected?(rec: ProviderRecord): void;
  /** Called after a provider's session is gone and it left the registry. */
  onDisconnected?(rec: ProviderRecord, reason: string): void;
  /** A LoadModel outcome. */
  onLoadStatus?(rec: ProviderRecord, model: string, ok: boolean, error: string): void;
  logger?: Logger;
}

/** Defaults of the timing options (milliseconds). */
export const providerSessionDefaults = {
  heartbeatIntervalMs: 5_000,
  heartbeatTimeoutMs: 20_000,
  registerTimeoutMs: 10_000,
  challengeIntervalMs: 300_000,
  challengeTimeoutMs: 30_000,
  revocationCheckMs: 5_000,
  floodPenaltyMs: 30_000,
  maxMachinesPerAccount: 10_000,
} as const;


/** Status codes used on provider streams. */
const UNAUTHENTICATED = grpc.status.UNAUTHENTICATED;
const PERMISSION_DENIED = grpc.status.PERMISSION_DENIED;
const INVALID_ARGUMENT = grpc.status.INVALID_ARGUMENT;
const DEADLINE_EXCEEDED = grpc.status.DEADLINE_EXCEEDED;
const UNAVAILABLE = grpc.status.UNAVAILABLE;
const RESOURCE_EXHAUSTED = grpc.status.RESOURCE_EXHAUSTED;


export class ProviderService implements ProviderDirectory {
  readonly #o: { -readonly [K in keyof typeof providerSessionDefaults]: number } & ProviderServiceOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, ProviderSession>();
  readonly #handshaking = new Set<ProviderSession>();
  readonly #admission: ProviderAdmission;
  #sweepCancel: (() => void) | undefined;
  #revocationCancel: (() => void) | undefined;
  #closed = false;

  constructor(options: ProviderServiceOptions) {
    this.#o = { ...providerSessionDefaults, ...options };
    this.#log = options.logger ?? silentLogger;
    this.#admission = new ProviderAdmission({ ...this.#o, log: this.#log, challenge: (session) => this.#challenge(session) });
    this.#scheduleSweep();
    this.#scheduleRevocationCheck();
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
    // 'close' fires exactly once however the stream ends (grpc-js emits 'cancelled' even on a normal end). A
    // session the coordinator closed itself keeps the reason it was closed with (streamEnded does not overwrite it).
    call.on("close", () => this.#onStreamGone(session, "stream closed"));
    call.on("error", (e: Partial<grpc.ServiceError>) => this.#onStreamGone(session, `stream error: ${e.details || e.message || "unknown"}`));
    call.on("end", () => session.close("provider ended the stream"));
  };

  #onFrame(session: ProviderSession, m: ProviderMessage): void {
    if (m === MALFORMED_FRAME) {
      count("provider.protocol_violations", { frame: "malformed" });
      this.#log.warn("provider sent a malformed frame", { provider_id: session.providerId || undefined, account_id: session.identity?.accountId, peer: session.peer });
      session.close("malformed frame", { code: INVALID_ARGUMENT, details: "frame is not a valid ProviderMessage" });
      return;
    }
    const msg = m.msg;
    if (session.state.t === "handshaking") {
      if (msg.case === "challengeResponse") return this.#onChallengeResponse(session, msg.value.nonce, msg.value.signature);
      if (session.registering) return; // Register is being checked; anything else waits for the ack
      if (msg.case !== "register") {
        session.close("first frame was not Register", { code: INVALID_ARGUMENT, details: "first frame must be Register" });
        return;
      }
      session.registering = true;
      void this.#register(session, msg.value).catch((e) => {
        // A database error while checking the serial: the provider retries; nothing was decided.
        this.#log.error("provider registration failed", { peer: session.peer, reason: String((e as Error)?.message ?? e) });
        session.close("registration failed", { code: UNAVAILABLE, details: "registration unavailable, retry" });
      });
      return;
    }
    if (session.state.t !== "ready") return;
    const { registry, clock } = this.#o;
    const id = session.state.providerId;
    const now = clock.nowMs();
    // Per-request frames for ids this session does not own are "foreign": budgeted, never handled.
    const requestId = perRequestId(msg);
    const kind = msg.case === "heartbeat" ? "heartbeat" : msg.case === "modelLoadStatus" ? "load_status" : requestId !== undefined && !session.knows(requestId) ? "foreign" : "other";
    if (kind !== "other" && !this.#admit(session, id, kind, msg.case ?? "unknown", requestId, now)) return;
    if (kind === "foreign") return;
    try {
      switch (msg.case) {
        case "heartbeat": {
          registry.touch(id, now);
          const clamped = registry.applyHeartbeat(id, heartbeatFromFrame(msg.value), now);
          if (clamped.length > 0 && !session.heartbeatClampLogged) {
            session.heartbeatClampLogged = true; // once per session: every heartbeat would repeat it
            this.#log.warn("provider claims clamped", { provider_id: id, account_id: session.identity?.accountId, frame: "heartbeat", clamped });
          }
          break;
        }
        case "inferenceAccepted":
          registry.touch(id, now);
          session.deliver(msg.value.requestId, { kind: "accepted" });
          break;
        case "inferenceChunk":
          registry.touch(id, now);
          session.deliver(msg.value.requestId, { kind: "chunk", deltas: deltasFromChunk(msg.value) });
          break;
        case "inferenceComplete": {
          registry.touch(id, now);
          const done = completeFromFrame(msg.value);
          session.deliver(msg.value.requestId, done);
          // The request completed (billed at the coordinator's count); the session that lied ends.
          if (done.usageRefused) throw new ProtocolViolation("inference_complete", done.usageRefused);
          break;
        }
        case "inferenceError":
          registry.touch(id, now);
          session.deliver(msg.value.requestId, errorFromFrame(msg.value));
          break;
        case "modelLoadStatus": {
          registry.touch(id, now);
          const rec = registry.get(id);
          const st = msg.value.state;
          if (!rec || (st !== LoadState.SUCCEEDED && st !== LoadState.FAILED)) break;
          registry.loadFinished(id, msg.value.model);
          this.#o.onLoadStatus?.(rec, msg.value.model, st === LoadState.SUCCEEDED, msg.value.error.slice(0, 500));
          break;
        }
        case "challengeResponse":
          this.#onChallengeResponse(session, msg.value.nonce, msg.value.signature);
          break;
        case "register":
          session.close("duplicate Register", { code: INVALID_ARGUMENT, details: "Register sent twice" });
          break;
        default:
          break; // unknown future frame: ignore
      }
    } catch (e) {
      if (!(e instanceof ProtocolViolation)) throw e;
      // One malformed frame ends the session: its in-flight requests fail over to honest Macs.
      count("provider.protocol_violations", { frame: msg.case ?? "unknown" });
      this.#log.warn("provider protocol violation", { provider_id: id, account_id: session.identity?.accountId, frame: msg.case, reason: e.message });
      session.close(`protocol violation: ${e.message}`, { code: INVALID_ARGUMENT, details: e.message });
    }
  }

  /**
   * Applies the session's frame budget: false when the frame is to be ignored. A session past its strikes ends
   * with RESOURCE_EXHAUSTED and its serial waits out the penalty before it may register again.
   */
  #admit(session: ProviderSession, providerId: string, kind: FrameKind, frame: string, requestId: string | undefined, nowMs: number): boolean {
    if (kind === "foreign" && session.foreignFrames++ === 0) {
      // One line per session: a flood of them is what the budget is for.
      this.#log.warn("provider sent a frame for a request it does not hold", { provider_id: providerId, account_id: session.identity?.accountId, frame, request_id: requestId?.slice(0, 64) });
    }
    const verdict = session.frames?.admit(kind, nowMs) ?? "ok";
    if (verdict === "ok") return true;
    count("provider.frames_dropped", { kind });
    if (verdict === "disconnect") {
      const serial = session.identity?.serial;
      if (serial) this.#admission.penalize(serial, nowMs);
      count("provider.flood_disconnects", {});
      this.#log.warn("provider disconnected for flooding", { provider_id: providerId, account_id: session.identity?.accountId, serial, frame, reason: `more than ${MAX_STRIKES} frames over budget within ${STRIKE_WINDOW_MS} ms` });
      session.close("frame flood", { code: RESOURCE_EXHAUSTED, details: `too many frames: more than ${MAX_STRIKES} over budget within ${STRIKE_WINDOW_MS / 1000} s` });
    }
    return false;
  }

  async #register(session: ProviderSession, frame: Register): Promise<void> {
    const { clock, registry } = this.#o;
    const admitted = await this.#admission.admit(session, frame);
    if (!admitted || session.state.t !== "handshaking") return;
    const { info, identity, accountId } = admitted;
    this.#handshaking.delete(session);
    session.lastProvedMs = clock.nowMs();
    // The same machine reconnecting (it proved the key): its older session, if any, gives way.
    const previous = registry.get(identity.providerId) ?? registry.bySerial(info.serial);
    if (previous) this.#sessions.get(previous.id)?.close("replaced by a new session", { code: UNAVAILABLE, details: "replaced by a newer session for this serial" });
    const { authToken: _token, publicKey: _key, ...registration } = info;
    const rec = registry.add({ ...registration, accountId }, clock.nowMs(), identity.providerId);
    this.#sessions.set(rec.id, session);
    session.frames = new FrameBudget({ heartbeatIntervalMs: this.#o.heartbeatIntervalMs, clock });
    session.markReady(rec.id, (reason) => this.#evict(session, rec, reason));
    session.send(registerAckFrame(rec.id, this.#o.heartbeatIntervalMs, []));
    count("provider.registrations", { outcome: "ok" });
    gauge("providers.connected", this.#sessions.size);
    if (rec.claimsClamped.length > 0) this.#log.warn("provider claims clamped", { provider_id: rec.id, account_id: rec.accountId, frame: "register", clamped: rec.claimsClamped });
    this.#log.info("provider registered", { provider_id: rec.id, serial: rec.serial, account_id: rec.accountId, version: rec.version, models: rec.models.map((m) => m.id) });
    this.#o.onConnected?.(rec);
  }

  /** Sends a key challenge (registration: within the register timeout; live: the challenge timeout). */
  #challenge(session: ProviderSession): Promise<ChallengeOutcome> {
    const timeoutMs = session.state.t === "handshaking" ? this.#o.registerTimeoutMs : this.#o.challengeTimeoutMs;
    return challengeSession(session, this.#o.clock, timeoutMs);
  }

  #onChallengeResponse(session: ProviderSession, nonce: Uint8Array, signature: Uint8Array): void {
    const pending = session.challenge;
    if (!pending || !Buffer.from(pending.nonce).equals(Buffer.from(nonce))) {
      count("provider.challenges", { outcome: "unsolicited" });
      this.#log.warn("provider sent an unsolicited challenge response", { provider_id: session.providerId || undefined, peer: session.peer });
      session.close("unsolicited challenge response", { code: INVALID_ARGUMENT, details: "no challenge with that nonce is pending" });
      return;
    }
    pending.answer(signature);
  }

  /** Re-proves a live session's key; a wrong signature fences the machine, silence ends the session. */
  async #rechallenge(session: ProviderSession): Promise<void> {
    const id = session.providerId;
    const who = session.identity;
    if (!who) return;
    const r = await this.#challenge(session);
    if (session.state.t !== "ready") return;
    session.lastProvedMs = this.#o.clock.nowMs();
    if (r.ok) {
      count("provider.challenges", { outcome: "ok" });
      return;
    }
    count("provider.challenges", { outcome: r.timedOut ? "timeout" : "bad_signature" });
    this.#log.warn("provider failed a key challenge", { provider_id: id, serial: who.serial, account_id: who.accountId, reason: r.reason });
    if (r.timedOut) {
      session.close(r.reason, { code: DEADLINE_EXCEEDED, details: r.reason });
      return;
    }
    await this.fence(id, r.reason);
  }

  /**
   * Stops trusting a machine: its identity is fenced (registrations refused until its owner or an operator
   * forgets the identity) and its live session ends.
   */
  async fence(providerId: string, reason: string): Promise<void> {
    const session = this.#sessions.get(providerId);
    const serial = session?.identity?.serial ?? this.#o.registry.get(providerId)?.serial;
    if (serial) await this.#o.identities.fence(serial, reason);
    count("provider.fenced", { provider_id: providerId });
    this.#log.warn("provider fenced", { provider_id: providerId, serial, account_id: session?.identity?.accountId, reason });
    session?.close(`fenced: ${reason}`, { code: PERMISSION_DENIED, details: `fenced: ${reason}` });
  }

  /** Ends every live session that registered with this provider token (call after revoking it). */
  revokeToken(tokenId: string, reason = "provider token revoked"): number {
    let n = 0;
    for (const session of [...this.#sessions.values()]) {
      if (session.identity?.tokenId !== tokenId) continue;
      n++;
      this.#log.warn("provider session ended: token revoked", { provider_id: session.providerId, account_id: session.identity.accountId, token_id: tokenId });
      session.close(reason, { code: UNAUTHENTICATED, details: reason });
    }
    return n;
  }

  /** Ends the live session of a serial (its identity was forgotten). */
  disconnectSerial(serial: string, reason: string): boolean {
    const rec = this.#o.registry.bySerial(serial);
    const session = rec && this.#sessions.get(rec.id);
    session?.close(reason, { code: UNAVAILABLE, details: reason });
    return session !== undefined;
  }

  #onStreamGone(session: ProviderSession, reason: string): void {
    this.#handshaking.delete(session);
    session.streamEnded(reason);
  }

  #evict(session: ProviderSession, rec: ProviderRecord, reason: string): void {
    const { registry } = this.#o;
    // A replaced session must not remove its successor (same stable id).
    if (this.#sessions.get(rec.id) === session) this.#sessions.delete(rec.id);
    if (registry.get(rec.id) === rec) registry.remove(rec.id);
    gauge("providers.connected", this.#sessions.size);
    count("provider.disconnects", {});
    this.#log.info("provider disconnected", { provider_id: rec.id, serial: rec.serial, account_id: rec.accountId, reason });
    this.#o.onDisconnected?.(rec, reason);
  }

  /** Evicts silent providers and stalled handshakes, and starts periodic key challenges. */
  sweep(): void {
    const { clock, registry, heartbeatTimeoutMs, registerTimeoutMs, challengeIntervalMs } = this.#o;
    const now = clock.nowMs();
    for (const [id, session] of this.#sessions) {
      const rec = registry.get(id);
      if (rec && now - rec.lastHeartbeatMs > heartbeatTimeoutMs) {
        session.close("heartbeat timeout", { code: DEADLINE_EXCEEDED, details: "no heartbeat within the timeout" });
      } else if (!session.challenge && now - session.lastProvedMs >= challengeIntervalMs) {
        void this.#rechallenge(session).catch((e) => this.#log.error("provider fence failed", { provider_id: id, reason: String((e as Error)?.message ?? e) }));
      }
    }
    for (const s of this.#handshaking) {
      if (s.state.t === "handshaking" && now - s.state.sinceMs > registerTimeoutMs) {
        this.#handshaking.delete(s);
        s.close("register timeout", { code: DEADLINE_EXCEEDED, details: "Register not received in time" });
      }
    }
  }

  /** Ends sessions whose token was revoked (by another coordinator or straight in the database). */
  async checkRevocations(): Promise<void> {
    const revokedTokens = this.#o.revokedTokens;
    if (!revokedTokens) return;
    const ids = new Set<string>();
    for (const s of this.#sessions.values()) if (s.identity) ids.add(s.identity.tokenId);
    if (ids.size === 0) return;
    for (const tokenId of await revokedTokens([...ids])) this.revokeToken(tokenId);
  }

  #scheduleSweep(): void {
    const every = Math.max(250, Math.min(Math.floor(this.#o.heartbeatTimeoutMs / 4), this.#o.challengeIntervalMs));
    this.#sweepCancel = this.#o.clock.setTimeout(() => {
      this.sweep();
      if (!this.#closed) this.#scheduleSweep();
    }, every);
  }

  #scheduleRevocationCheck(): void {
    if (!this.#o.revokedTokens) return;
    this.#revocationCancel = this.#o.clock.setTimeout(() => {
      this.checkRevocations()
        .catch((e) => this.#log.warn("provider token revocation check failed", { reason: String((e as Error)?.message ?? e) }))
        .finally(() => {
          if (!this.#closed) this.#scheduleRevocationCheck();
        });
    }, this.#o.revocationCheckMs);
  }

  /** Closes every session (in-flight requests get `disconnected`). */
  closeAll(reason: string): void {
    this.#closed = true;
    this.#sweepCancel?.();
    this.#revocationCancel?.();
    for (const s of [...this.#sessions.values()]) s.close(reason, { code: UNAVAILABLE, details: reason });
    for (const s of [...this.#handshaking]) s.close(reason, { code: UNAVAILABLE, details: reason });
  }
}

/** The request id of a per-request frame, or undefined for session-level frames. */
function perRequestId(msg: ProviderMessage["msg"]): string | undefined {
  switch (msg.case) {
    case "inferenceAccepted":
    case "inferenceChunk":
    case "inferenceComplete":
    case "inferenceError":
      return msg.value.requestId;
    default:
      return undefined;
  }
}

