/**
 * OpenAI's `x-ratelimit-*` headers from bucket state.
 *
 * Convention (OpenAI's, https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers):
 * - `x-ratelimit-limit-{requests,tokens}`: the per-minute limit (OpenAI sends RPM/TPM). Requests are configured
 *   per second here, so the header is `requestsPerSec × 60`. Token headers are split into `-input-tokens` and
 *   `-output-tokens` because we limit them separately (as Anthropic does).
 * - `x-ratelimit-remaining-*`: whole units available now (0 while in debt).
 * - `x-ratelimit-reset-*`: time until the bucket is back to its initial (full) state, as a Go-style duration
 *   string, e.g. `"20ms"`, `"1s"`, `"1.5s"`, `"6m0s"`, `"1h2m3s"`, the format OpenAI sends.
 * Values describe this process's share of the limit when `processShare` < 1 (see `createRateLimiter`), scaled
 * back up so a client sees the account's limit, not the share.
 */
import type { RateDimension } from "./types.js";
import { isUnlimited, msUntilFull, refill, type Bucket } from "./token-bucket.js";

const suffix: Readonly<Record<RateDimension, string>> = {
  requests: "requests",
  input_tokens: "input-tokens",
  output_tokens: "output-tokens",
};

/** Formats a duration in ms like Go's `time.Duration.String()` at ms precision (OpenAI's reset format). */
export function formatResetDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total === 0) return "0s";
  if (total < 1000) return `${total}ms`;
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / 60_000);
  const sMs = total % 60_000;
  const s = sMs % 1000 === 0 ? String(sMs / 1000) : (sMs / 1000).toFixed(3).replace(/0+$/, "");
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/**
 * Writes the three headers of one dimension from the buckets that apply to it (the account's, and a key's own
 * when it has an override): `limit` is the strictest rate, `remaining` the least any of them holds (what may be
 * sent now), `reset` the longest until all are full again. `processShare` undoes the per-process scaling so the
 * numbers are account-wide. Unlimited buckets are ignored; with none left nothing is written.
 */
export function writeDimensionHeaders(
  headers: Record<string, string>,
  dimension: RateDimension,
  buckets: Bucket | readonly Bucket[],
  nowMs: number,
  processShare: number,
): void {
  let ratePerSec = Infinity;
  let level = Infinity;
  let resetMs = -1;
  for (const b of Array.isArray(buckets) ? (buckets as readonly Bucket[]) : [buckets as Bucket]) {
    if (isUnlimited(b)) continue;
    const r = refill(b, nowMs);
    ratePerSec = Math.min(ratePerSec, r.ratePerSec);
    level = Math.min(level, r.level);
    resetMs = Math.max(resetMs, msUntilFull(r, nowMs));
  }
  if (resetMs < 0) return;
  const name = suffix[dimension];
  headers[`x-ratelimit-limit-${name}`] = String(Math.round(ratePerSec * (60 / processShare)));
  headers[`x-ratelimit-remaining-${name}`] = String(Math.max(0, Math.floor(level / processShare + 1e-6)));
  headers[`x-ratelimit-reset-${name}`] = formatResetDuration(resetMs);
}

/**
 * The concurrency headers, written only when an operator limited concurrency (`SetLimits`):
 * `x-ratelimit-limit-concurrent-requests` (requests in flight allowed at once) and
 * `x-ratelimit-remaining-concurrent-requests` (how many more may start now). There is no reset: a slot frees
 * when a request finishes.
 */
export function writeConcurrencyHeaders(headers: Record<string, string>, limit: number, remaining: number): void {
  headers["x-ratelimit-limit-concurrent-requests"] = String(limit);
  headers["x-ratelimit-remaining-concurrent-requests"] = String(Math.max(0, remaining));
}
