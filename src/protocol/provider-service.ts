/**
 * The gRPC edge for providers: admits each stream's Register (frame validation, provider token, serial
 * ownership, Ed25519 key proof), keeps the registry in step with heartbeats, routes per-request frames to their
 * dispatcher handlers, re-challenges live sessions, ends sessions whose token was revoked, and evicts silent
 * providers.
 *
 * Providers are strangers' machines: nothing they send is trusted before frames.ts has validated it, a serial
 * belongs to the account whose token first registered it, and only the holder of the serial's key can take its
 * place. See the README's "Trust model".
 *
 * This class owns the sessions and their lifecycle (handshake, registration, key re-proofs, revocation,
 * eviction, shutdown); what a registered session's frames do is ready-frame-handler.ts, admission of a
 * Register is provider-admission.ts, a key challenge (at registration, and the live re-proof) key-challenge.ts,
 * and the periodic pass that evicts silent sessions session-sweep.ts.
 */
import * as grpc from "@grpc/grpc-js";
import type { CoordinatorMessage, ProviderMessage, Register } from "../../gen/coordinator/provider/v1/provider_pb.js";
import type { ProviderDirectory } from "../dispatch/provider-channel.js";
import type { ProviderRecord } from "../registry/provider-registry.js";
import { count, gauge } from "../telemetry/metrics.js";
import { silentLogger, type Logger } from "../util/logger.js";
import { registerAckFrame } from "./coordinator-frames.js";
import { FrameBudget } from "./frame-budget.js";
import { MALFORMED_FRAME } from "./provider-message-decoder.js";
import { answerChallenge, challengeSession, type ChallengeOutcome, type ReproofContext } from "./key-challenge.js";
import { ProviderAdmission } from "./provider-admission.js";
import {
  resolveProviderServiceOptions,
  type ProviderServiceOptions,
  type ResolvedProviderServiceOptions,
} from "./provider-service-options.js";
import { ProviderSession } from "./provider-session.js";
import { handleReadyFrame, type ReadyFrameContext } from "./ready-frame-handler.js";
import { sweepSessions } from "./session-sweep.js";

/** Status codes used on provider streams. */
const UNAUTHENTICATED = grpc.status.UNAUTHENTICATED;
const PERMISSION_DENIED = grpc.status.PERMISSION_DENIED;
const INVALID_ARGUMENT = grpc.status.INVALID_ARGUMENT;
const UNAVAILABLE = grpc.status.UNAVAILABLE;

export class ProviderService implements ProviderDirectory {
  readonly #o: ResolvedProviderServiceOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, ProviderSession>();
  readonly #handshaking = new Set<ProviderSession>();
  readonly #admission: ProviderAdmission;
  readonly #ready: ReadyFrameContext;
  readonly #reproof: ReproofContext;
  #sweepCancel: (() => void) | undefined;
  #revocationCancel: (() => void) | undefined;
  #closed = false;

  constructor(options: ProviderServiceOptions) {
    this.#o = resolveProviderServiceOptions(options);
    this.#log = options.logger ?? silentLogger;
    this.#admission = new ProviderAdmission({
      ...this.#o,
      log: this.#log,
      challenge: (session) => this.#challenge(session),
    });
    this.#ready = {
      registry: this.#o.registry,
      log: this.#log,
      penalize: (serial, nowMs) => this.#admission.penalize(serial, nowMs),
      onLoadStatus: (rec, model, ok, error) => this.#o.onLoadStatus?.(rec, model, ok, error),
    };
    this.#reproof = {
      clock: this.#o.clock,
      log: this.#log,
      challenge: (session) => this.#challenge(session),
      fence: (providerId, reason) => this.fence(providerId, reason),
    };
    this.#scheduleSweep();
    this.#scheduleRevocationCheck();
  }

  channel(providerId: string): ProviderSession | undefined {
    return this.#sessions.get(providerId);
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Streams open and not yet registered (each waits for its Register until the handshake timeout). */
  get handshakingCount(): number {
    return this.#handshaking.size;
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
    call.on("error", (e: Partial<grpc.ServiceError>) =>
      this.#onStreamGone(session, `stream error: ${e.details || e.message || "unknown"}`),
    );
    call.on("end", () => session.close("provider ended the stream"));
  };

  #onFrame(session: ProviderSession, m: ProviderMessage): void {
    if (m === MALFORMED_FRAME) {
      count("provider.protocol_violations", { frame: "malformed" });
      this.#log.warn("provider sent a malformed frame", {
        provider_id: session.providerId || undefined,
        account_id: session.identity?.accountId,
        peer: session.peer,
      });
      session.close("malformed frame", { code: INVALID_ARGUMENT, details: "frame is not a valid ProviderMessage" });
      return;
    }
    const msg = m.msg;
    if (session.state.t === "handshaking") {
      if (msg.case === "challengeResponse") {
        answerChallenge(session, msg.value.nonce, msg.value.signature, this.#log);
        return;
      }
      if (session.registering) return; // Register is being checked; anything else waits for the ack
      if (msg.case !== "register") {
        session.close("first frame was not Register", {
          code: INVALID_ARGUMENT,
          details: "first frame must be Register",
        });
        return;
      }
      session.registering = true;
      void this.#register(session, msg.value).catch((e) => {
        // A database error while checking the serial: the provider retries; nothing was decided.
        this.#log.error("provider registration failed", {
          peer: session.peer,
          reason: String((e as Error)?.message ?? e),
        });
        session.close("registration failed", { code: UNAVAILABLE, details: "registration unavailable, retry" });
      });
      return;
    }
    if (session.state.t !== "ready") return;
    handleReadyFrame(this.#ready, session, session.state.providerId, msg, this.#o.clock.nowMs());
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
    const live = previous && this.#sessions.get(previous.id);
    if (live)
      live.close("replaced by a new session", {
        code: UNAVAILABLE,
        details: "replaced by a newer session for this serial",
      });
    // A record with no session here mirrors another coordinator's stream of this Mac (cluster mode): the Mac has
    // moved here, so the mirror gives way to the live session.
    else if (previous) registry.remove(previous.id);
    const { authToken: _token, publicKey: _key, ...registration } = info;
    const rec = registry.add({ ...registration, accountId }, clock.nowMs(), identity.providerId);
    this.#sessions.set(rec.id, session);
    session.frames = new FrameBudget({ heartbeatIntervalMs: this.#o.heartbeatIntervalMs, clock });
    session.markReady(rec.id, (reason) => this.#evict(session, rec, reason));
    session.send(registerAckFrame(rec.id, this.#o.heartbeatIntervalMs, []));
    count("provider.registrations", { outcome: "ok" });
    gauge("providers.connected", this.#sessions.size);
    if (rec.claimsClamped.length > 0)
      this.#log.warn("provider claims clamped", {
        provider_id: rec.id,
        account_id: rec.accountId,
        frame: "register",
        clamped: rec.claimsClamped,
      });
    this.#log.info("provider registered", {
      provider_id: rec.id,
      serial: rec.serial,
      account_id: rec.accountId,
      version: rec.version,
      models: rec.models.map((m) => m.id),
    });
    this.#o.onConnected?.(rec);
  }

  /** Sends a key challenge (registration: within the register timeout; live: the challenge timeout). */
  #challenge(session: ProviderSession): Promise<ChallengeOutcome> {
    const timeoutMs = session.state.t === "handshaking" ? this.#o.registerTimeoutMs : this.#o.challengeTimeoutMs;
    return challengeSession(session, this.#o.clock, timeoutMs);
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
    this.#log.warn("provider fenced", {
      provider_id: providerId,
      serial,
      account_id: session?.identity?.accountId,
      reason,
    });
    if (session) session.close(`fenced: ${reason}`, { code: PERMISSION_DENIED, details: `fenced: ${reason}` });
    else if (this.#o.registry.get(providerId)) this.#o.onRemoteSession?.(providerId, `fenced: ${reason}`);
  }

  /** Ends every live session that registered with this provider token (call after revoking it). */
  revokeToken(tokenId: string, reason = "provider token revoked"): number {
    let n = 0;
    for (const session of [...this.#sessions.values()]) {
      if (session.identity?.tokenId !== tokenId) continue;
      n++;
      this.#log.warn("provider session ended: token revoked", {
        provider_id: session.providerId,
        account_id: session.identity.accountId,
        token_id: tokenId,
      });
      session.close(reason, { code: UNAUTHENTICATED, details: reason });
    }
    return n;
  }

  /** Ends the live session of a serial (its identity was forgotten). */
  disconnectSerial(serial: string, reason: string): boolean {
    const rec = this.#o.registry.bySerial(serial);
    const session = rec && this.#sessions.get(rec.id);
    if (session) session.close(reason, { code: UNAVAILABLE, details: reason });
    else if (rec) this.#o.onRemoteSession?.(rec.id, reason);
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
    this.#log.info("provider disconnected", {
      provider_id: rec.id,
      serial: rec.serial,
      account_id: rec.accountId,
      reason,
    });
    this.#o.onDisconnected?.(rec, reason);
  }

  /** Evicts silent providers and stalled handshakes, and starts periodic key challenges. */
  sweep(): void {
    sweepSessions(this.#sessions, this.#handshaking, { ...this.#o, log: this.#log, reproof: this.#reproof });
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
        .catch((e) =>
          this.#log.warn("provider token revocation check failed", { reason: String((e as Error)?.message ?? e) }),
        )
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
