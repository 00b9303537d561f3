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
import { ProviderService as ProviderServiceDesc, LoadState, type CoordinatorMessage, type ProviderMessage, type Register } from "../../gen/coordinator/provider/v1/provider_pb.js";
import type { ProviderDirectory } from "../dispatch/provider-channel.js";
import type { ProviderIdentity, ProviderIdentityStore } from "../ledger/provider-identities.js";
import type { ProviderRecord, ProviderRegistry } from "../registry/provider-registry.js";
import { count, gauge } from "../telemetry/metrics.js";
import type { Clock } from "../util/clock.js";
import { silentLogger, type Logger } from "../util/logger.js";
import { challengeFrame, completeFromFrame, deltasFromChunk, errorFromFrame, heartbeatFromFrame, registerAckFrame, registrationFromFrame, type RegistrationInfo } from "./frames.js";
import { grpcServiceDefinition } from "./grpc-service.js";
import { newChallengeNonce, verifyChallenge } from "./provider-keys.js";
import { FrameBudget, MAX_STRIKES, STRIKE_WINDOW_MS, type FrameKind } from "./frame-budget.js";
import { decodeProviderMessage } from "./provider-message-decoder.js";
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

/** How long a registration from a serial in the flood penalty box is held before it is refused. */
export const FLOOD_TARPIT_MS = 5_000;

/** Serials remembered in the flood penalty box at most (the oldest penalty goes first). */
const MAX_PENALIZED_SERIALS = 10_000;

/** Status codes used on provider streams. */
const UNAUTHENTICATED = grpc.status.UNAUTHENTICATED;
const PERMISSION_DENIED = grpc.status.PERMISSION_DENIED;
const INVALID_ARGUMENT = grpc.status.INVALID_ARGUMENT;
const DEADLINE_EXCEEDED = grpc.status.DEADLINE_EXCEEDED;
const UNAVAILABLE = grpc.status.UNAVAILABLE;
const RESOURCE_EXHAUSTED = grpc.status.RESOURCE_EXHAUSTED;

/** Why a registration was refused: gRPC status, the provider-facing details, and the metric outcome. */
interface Refusal {
  code: grpc.status;
  details: string;
  outcome: string;
}

export class ProviderService implements ProviderDirectory {
  readonly #o: { -readonly [K in keyof typeof providerSessionDefaults]: number } & ProviderServiceOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, ProviderSession>();
  readonly #handshaking = new Set<ProviderSession>();
  /** Serials disconnected for flooding → when they may register again. */
  readonly #penalties = new Map<string, number>();
  #sweepCancel: (() => void) | undefined;
  #revocationCancel: (() => void) | undefined;
  #closed = false;

  constructor(options: ProviderServiceOptions) {
    this.#o = { ...providerSessionDefaults, ...options };
    this.#log = options.logger ?? silentLogger;
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
      if (serial) this.#penalize(serial, nowMs);
      count("provider.flood_disconnects", {});
      this.#log.warn("provider disconnected for flooding", { provider_id: providerId, account_id: session.identity?.accountId, serial, frame, reason: `more than ${MAX_STRIKES} frames over budget within ${STRIKE_WINDOW_MS} ms` });
      session.close("frame flood", { code: RESOURCE_EXHAUSTED, details: `too many frames: more than ${MAX_STRIKES} over budget within ${STRIKE_WINDOW_MS / 1000} s` });
    }
    return false;
  }

  #penalize(serial: string, nowMs: number): void {
    for (const [s, until] of this.#penalties) if (until <= nowMs) this.#penalties.delete(s);
    if (this.#penalties.size >= MAX_PENALIZED_SERIALS) this.#penalties.delete(this.#penalties.keys().next().value!);
    this.#penalties.set(serial, nowMs + this.#o.floodPenaltyMs);
  }

  /**
   * A serial in the flood penalty box is refused, but slowly: before any database work, the stream is held for
   * up to {@link FLOOD_TARPIT_MS}, so a flooder that reconnects at once costs one idle stream per hold, not a
   * registration per round trip.
   */
  #tarpit(session: ProviderSession, penaltyUntil: number): void {
    const { clock } = this.#o;
    count("provider.registrations", { outcome: "penalized" });
    clock.setTimeout(() => {
      if (session.state.t !== "handshaking") return;
      const waitS = Math.max(1, Math.ceil((penaltyUntil - clock.nowMs()) / 1000));
      this.#handshaking.delete(session);
      session.close("registration refused: flood penalty", { code: RESOURCE_EXHAUSTED, details: `disconnected for flooding; retry in ${waitS} s` });
    }, Math.min(FLOOD_TARPIT_MS, Math.max(0, penaltyUntil - clock.nowMs())));
  }

  async #register(session: ProviderSession, frame: Register): Promise<void> {
    const { clock, registry, identities } = this.#o;
    let info: RegistrationInfo;
    try {
      info = registrationFromFrame(frame);
    } catch (e) {
      if (!(e instanceof ProtocolViolation)) throw e;
      return this.#refuse(session, undefined, { code: INVALID_ARGUMENT, details: e.message, outcome: "invalid" });
    }
    const penaltyUntil = this.#penalties.get(info.serial);
    if (penaltyUntil !== undefined && penaltyUntil > clock.nowMs()) return this.#tarpit(session, penaltyUntil);
    let owner: { accountId: string; tokenId: string } | undefined;
    try {
      owner = await this.#o.authenticate(info.authToken);
    } catch (e) {
      this.#log.error("provider authentication unavailable", { peer: session.peer, serial: info.serial, reason: String((e as Error)?.message ?? e) });
      session.close("auth unavailable", { code: UNAVAILABLE, details: "provider authentication unavailable, retry" });
      return;
    }
    if (session.state.t !== "handshaking") return; // the stream ended while we were authenticating
    if (!owner) return this.#refuse(session, info, { code: UNAUTHENTICATED, details: "invalid provider token", outcome: "unauthenticated" });

    session.identity = { serial: info.serial, accountId: owner.accountId, tokenId: owner.tokenId, publicKey: info.publicKey };
    const known = await identities.get(info.serial);
    const refusal = known && identityRefusal(known, owner.accountId, info.publicKey);
    if (refusal) return this.#refuse(session, info, refusal, { account_id: owner.accountId, owner_account_id: known.accountId, provider_id: known.providerId });

    // Proof of the key: a fresh nonce signed over this serial. A new serial proves it too, so nobody can bind a
    // serial to a key it does not hold.
    const signature = await this.#challenge(session);
    if (session.state.t !== "handshaking") return;
    if (!signature.ok) return this.#refuse(session, info, { code: signature.timedOut ? DEADLINE_EXCEEDED : PERMISSION_DENIED, details: signature.reason, outcome: "bad_signature" });

    let identity: ProviderIdentity;
    if (known) {
      identity = known;
      await identities.seen(info.serial, owner.tokenId);
    } else {
      // Each new serial is a row: a token holder minting serials in a loop is stopped at the account's cap.
      if ((await identities.countByAccount(owner.accountId)) >= this.#o.maxMachinesPerAccount) {
        return this.#refuse(session, info, { code: RESOURCE_EXHAUSTED, details: `this account already has ${this.#o.maxMachinesPerAccount} provider machines; forget one first`, outcome: "too_many_machines" }, { account_id: owner.accountId });
      }
      identity = await identities.claim({ serial: info.serial, accountId: owner.accountId, publicKey: info.publicKey, tokenId: owner.tokenId });
      // Two first registrations raced: whoever's row is stored owns the serial.
      const lost = identityRefusal(identity, owner.accountId, info.publicKey);
      if (lost) return this.#refuse(session, info, lost, { account_id: owner.accountId, owner_account_id: identity.accountId });
    }
    if (session.state.t !== "handshaking") return;

    this.#handshaking.delete(session);
    session.lastProvedMs = clock.nowMs();
    // The same machine reconnecting (it proved the key): its older session, if any, gives way.
    const previous = registry.get(identity.providerId) ?? registry.bySerial(info.serial);
    if (previous) this.#sessions.get(previous.id)?.close("replaced by a new session", { code: UNAVAILABLE, details: "replaced by a newer session for this serial" });
    const { authToken: _token, publicKey: _key, ...registration } = info;
    const rec = registry.add({ ...registration, accountId: owner.accountId }, clock.nowMs(), identity.providerId);
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

  /** Ends a handshake with a refusal: one warn line and a counted outcome (the provider sees `details`). */
  #refuse(session: ProviderSession, info: RegistrationInfo | undefined, r: Refusal, fields: Record<string, unknown> = {}): void {
    count("provider.registrations", { outcome: r.outcome });
    this.#log.warn("provider registration refused", { peer: session.peer, serial: info?.serial, ...fields, outcome: r.outcome, reason: r.details });
    this.#handshaking.delete(session);
    session.close(`registration refused: ${r.details}`, { code: r.code, details: r.details });
  }

  /** Sends a challenge and waits for its answer (or the timeout, or the stream's end). */
  #challenge(session: ProviderSession): Promise<{ ok: true } | { ok: false; timedOut: boolean; reason: string }> {
    const { clock } = this.#o;
    const nonce = newChallengeNonce();
    const timeoutMs = session.state.t === "handshaking" ? this.#o.registerTimeoutMs : this.#o.challengeTimeoutMs;
    return new Promise((resolve) => {
      const cancel = clock.setTimeout(() => {
        if (session.challenge?.nonce !== nonce) return;
        session.challenge = undefined;
        resolve({ ok: false, timedOut: true, reason: "key challenge not answered in time" });
      }, timeoutMs);
      session.challenge = {
        nonce,
        sentAtMs: clock.nowMs(),
        answer: (signature) => {
          cancel();
          session.challenge = undefined;
          if (!signature) return resolve({ ok: false, timedOut: false, reason: "stream ended during the key challenge" });
          const who = session.identity;
          if (!who || !verifyChallenge(who.publicKey, who.serial, nonce, signature)) return resolve({ ok: false, timedOut: false, reason: "key challenge signature invalid" });
          resolve({ ok: true });
        },
      };
      session.send(challengeFrame(nonce));
    });
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
    count("provider.fenced", {});
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

/** A frame that is not a ProviderMessage at all (see {@link decodeOrMalformed}). */
const MALFORMED_FRAME: ProviderMessage = { $typeName: "coordinator.provider.v1.ProviderMessage", msg: { case: undefined } };

/**
 * Decodes a frame; bytes that are not a ProviderMessage become {@link MALFORMED_FRAME} instead of a throw, so
 * the session can say why it ends (grpc-js would end the stream with a bare INTERNAL) and the log names it.
 */
function decodeOrMalformed(bytes: Buffer): ProviderMessage {
  try {
    return decodeProviderMessage(bytes);
  } catch {
    return MALFORMED_FRAME;
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

/** Why a known identity refuses this registration, or undefined if the account and key match and it is not fenced. */
function identityRefusal(known: ProviderIdentity, accountId: string, publicKey: Uint8Array): Refusal | undefined {
  if (known.accountId !== accountId) return { code: PERMISSION_DENIED, details: "this serial is registered to another account", outcome: "foreign_serial" };
  if (known.fenceReason !== null) {
    return { code: PERMISSION_DENIED, details: `this provider is fenced (${known.fenceReason}); its owner must forget it before it registers again`, outcome: "fenced" };
  }
  if (!Buffer.from(known.publicKey).equals(Buffer.from(publicKey))) {
    return { code: PERMISSION_DENIED, details: "public key differs from the one registered for this serial", outcome: "key_mismatch" };
  }
  return undefined;
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
  server.addService(grpcServiceDefinition(ProviderServiceDesc, { requestDeserialize: decodeOrMalformed }), { connect: service.connect });
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
