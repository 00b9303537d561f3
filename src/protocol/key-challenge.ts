/**
 * One key challenge on a provider session: a fresh nonce goes out in a Challenge frame, and the session's
 * answer (a ChallengeResponse the service hands to {@link PendingChallenge.answer}) must be the Ed25519
 * signature of the key the session registered with, over that nonce and its serial (provider-keys.ts), within
 * the timeout. Used at registration and periodically on live sessions.
 */
import type { Clock } from "../util/clock.js";
import { challengeFrame } from "./frames.js";
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
        if (!who || !verifyChallenge(who.publicKey, who.serial, nonce, signature)) return resolve({ ok: false, timedOut: false, reason: "key challenge signature invalid" });
        resolve({ ok: true });
      },
    };
    session.send(challengeFrame(nonce));
  });
}
