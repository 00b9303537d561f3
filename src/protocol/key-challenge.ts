/**
 * One key challenge on a provider session: a fresh nonce goes out in a Challenge frame, and the session's
 * answer (a ChallengeResponse the service hands to {@link PendingChallenge.answer}) must be the Ed25519
 * signature of the key the session registered with, over that nonce and its serial (provider-keys.ts), within
 * the timeout. Used at registration and periodically on live sessions: {@link reproveKey} is that live re-proof
 * and what failing it costs (silence ends the session, a wrong signature fences the machine).
 */
import * as grpc from "@grpc/grpc-js";
import { count } from "../telemetry/metrics.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";
import { challengeFrame } from "./coordinator-frames.js";
import { newChallengeNonce, verifyChallenge } from "./provider-keys.js";
import type { ProviderSession } from "./provider-session.js";

/** How a challenge ended. */
export type ChallengeOutcome = { ok: true } | { ok: false; timedOut: boolean; reason: string };

/** Sends a challenge on `session` and resolves once it is answered, times out, or the stream ends. */
export function challengeSession(session: ProviderSession, clock: Clock, timeoutMs: number): Promise<ChallengeOutcome> {
  const nonce = newChallengeNonce();
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
        if (!who || !verifyChallenge(who.publicKey, who.serial, nonce, signature))
          return resolve({ ok: false, timedOut: false, reason: "key challenge signature invalid" });
        resolve({ ok: true });
      },
    };
    session.send(challengeFrame(nonce));
  });
}

/**
 * Hands a ChallengeResponse to the session's pending challenge. One that answers no pending challenge (none
 * sent, or another nonce) ends the session: an honest provider only ever answers what it was asked.
 */
export function answerChallenge(session: ProviderSession, nonce: Uint8Array, signature: Uint8Array, log: Logger): void {
  const pending = session.challenge;
  if (!pending || !Buffer.from(pending.nonce).equals(Buffer.from(nonce))) {
    count("provider.challenges", { outcome: "unsolicited" });
    log.warn("provider sent an unsolicited challenge response", {
      provider_id: session.providerId || undefined,
      peer: session.peer,
    });
    session.close("unsolicited challenge response", {
      code: grpc.status.INVALID_ARGUMENT,
      details: "no challenge with that nonce is pending",
    });
    return;
  }
  pending.answer(signature);
}

/** What a live session's key re-proof needs from the provider service. */
export interface ReproofContext {
  clock: Clock;
  log: Logger;
  /** Sends the challenge with the timeout for the session's state. */
  challenge(session: ProviderSession): Promise<ChallengeOutcome>;
  /** Stops trusting the machine (its identity fenced, its session ended). */
  fence(providerId: string, reason: string): Promise<void>;
}

/** Re-proves a live session's key; a wrong signature fences the machine, silence ends the session. */
export async function reproveKey(session: ProviderSession, ctx: ReproofContext): Promise<void> {
  const id = session.providerId;
  const who = session.identity;
  if (!who) return;
  const r = await ctx.challenge(session);
  if (session.state.t !== "ready") return;
  session.lastProvedMs = ctx.clock.nowMs();
  if (r.ok) {
    count("provider.challenges", { outcome: "ok" });
    return;
  }
  count("provider.challenges", { outcome: r.timedOut ? "timeout" : "bad_signature" });
  ctx.log.warn("provider failed a key challenge", {
    provider_id: id,
    serial: who.serial,
    account_id: who.accountId,
    reason: r.reason,
  });
  if (r.timedOut) {
    session.close(r.reason, { code: grpc.status.DEADLINE_EXCEEDED, details: r.reason });
    return;
  }
  await ctx.fence(id, r.reason);
}
