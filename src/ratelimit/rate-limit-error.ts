/**
 * The HTTP edge's view of a rejection: one {@link CoordinatorError} carrying everything the OpenAI 429 needs.
 */
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { AdmitResult } from "./types.js";

/** A rejected {@link AdmitResult}. */
export type RateRejection = Extract<AdmitResult, { ok: false }>;

/**
 * Maps a rejection to `429 rate_limited` with wire code `rate_limit_exceeded`, the dimension in the message,
 * `Retry-After` from the bucket (`errorHeaders` rounds it up to whole seconds, at least 1) and the
 * `x-ratelimit-*` headers. Usage in a handler:
 * `const r = limiter.admit(input, clock.nowMs()); if (!r.ok) throw rateLimitError(r);`
 */
export function rateLimitError(rejection: RateRejection): CoordinatorError {
  return new CoordinatorError("rate_limited", rejection.message, {
    wireCode: "rate_limit_exceeded",
    retryAfterS: rejection.retryAfterMs / 1000,
    headers: rejection.headers,
  });
}
