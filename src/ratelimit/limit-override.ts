/**
 * Operator overrides (`SetLimits`) in the limiter's terms: their bounds, how an override in API units (per
 * minute) becomes bucket limits (`TierLimits`, requests per second), and the limits that are in effect for an
 * account or key. Pure: no I/O.
 *
 * **Bursts.** An override that sets a rate but not its burst gets burst = min(rate per minute, the burst it
 * overrides): a key given 6 requests/min takes at most 6 at once, then one every 10 s, and raising a rate never
 * raises a burst unasked. A burst may be set on its own (the rate then stays as it was).
 */
import type { RateLimitOverride } from "../accounts/types.js";
import type { TierLimits } from "./tier-limits.js";
import type { RateDimension } from "./types.js";

/** The largest value of each override field (each must also be >= 1). README "Limits" lists them. */
export const limitOverrideBounds = Object.freeze({
  /** Requests per minute (and requests burst): 10^6/min ≈ 16,700/s, far above one Mac fleet's rate. */
  maxRequestsPerMin: 1_000_000,
  /** Input or output tokens per minute (and their bursts): 10^9/min, 20× the service tier's 50 M ITPM. */
  maxTokensPerMin: 1_000_000_000,
  /** Concurrent requests of one account or key. */
  maxConcurrentRequests: 100_000,
});

type Field = keyof RateLimitOverride;

/** Each override field with its upper bound. */
const fieldBounds: Readonly<Record<Field, number>> = {
  requestsPerMin: limitOverrideBounds.maxRequestsPerMin,
  requestsBurst: limitOverrideBounds.maxRequestsPerMin,
  inputTokensPerMin: limitOverrideBounds.maxTokensPerMin,
  inputTokensBurst: limitOverrideBounds.maxTokensPerMin,
  outputTokensPerMin: limitOverrideBounds.maxTokensPerMin,
  outputTokensBurst: limitOverrideBounds.maxTokensPerMin,
  maxConcurrentRequests: limitOverrideBounds.maxConcurrentRequests,
};

/** The override fields, in the order the admin API lists them. */
export const rateLimitOverrideFields = Object.keys(fieldBounds) as readonly Field[];

/** Why `o` cannot be stored (field name and bound), or undefined when every set field is an integer in range. */
export function rateLimitOverrideProblem(o: RateLimitOverride): { field: Field; message: string } | undefined {
  for (const field of rateLimitOverrideFields) {
    const v = o[field];
    if (v === undefined) continue;
    const max = fieldBounds[field];
    if (!Number.isInteger(v) || v < 1 || v > max)
      return { field, message: `must be an integer from 1 to ${max}, got ${v}` };
  }
  return undefined;
}

/** True when both set the same fields to the same values (absent and empty are the same). */
export function sameOverride(a: RateLimitOverride | undefined, b: RateLimitOverride | undefined): boolean {
  if (a === b) return true;
  return rateLimitOverrideFields.every((f) => a?.[f] === b?.[f]);
}

/** True when no field is set. */
export function isEmptyOverride(o: RateLimitOverride | undefined): boolean {
  return o === undefined || rateLimitOverrideFields.every((f) => o[f] === undefined);
}

/** The override fields of each bucket dimension. */
const dimensionOverrideFields: Readonly<Record<RateDimension, readonly [Field, Field]>> = {
  requests: ["requestsPerMin", "requestsBurst"],
  input_tokens: ["inputTokensPerMin", "inputTokensBurst"],
  output_tokens: ["outputTokensPerMin", "outputTokensBurst"],
};

/** True when the override sets a field of `dimension` (a key override then gets the key its own bucket). */
export function overrideGoverns(o: RateLimitOverride | undefined, dimension: RateDimension): boolean {
  return o !== undefined && dimensionOverrideFields[dimension].some((f) => o[f] !== undefined);
}

/**
 * The bucket limits an override sets on top of `base` (the tier's, or for a key its account's effective limits).
 * Only the fields the override governs are returned, so `{ ...base, ...overrideToTierLimits(o, base) }` is the
 * result.
 */
export function overrideToTierLimits(o: RateLimitOverride | undefined, base: TierLimits): Partial<TierLimits> {
  if (!o) return {};
  const out: Partial<TierLimits> = {};
  if (o.requestsPerMin !== undefined) {
    out.requestsPerSec = o.requestsPerMin / 60;
    out.requestsBurst = defaultBurst(o.requestsPerMin, base.requestsBurst);
  }
  if (o.requestsBurst !== undefined) out.requestsBurst = o.requestsBurst;
  if (o.inputTokensPerMin !== undefined) {
    out.inputTokensPerMin = o.inputTokensPerMin;
    out.inputTokensBurst = defaultBurst(o.inputTokensPerMin, base.inputTokensBurst);
  }
  if (o.inputTokensBurst !== undefined) out.inputTokensBurst = o.inputTokensBurst;
  if (o.outputTokensPerMin !== undefined) {
    out.outputTokensPerMin = o.outputTokensPerMin;
    out.outputTokensBurst = defaultBurst(o.outputTokensPerMin, base.outputTokensBurst);
  }
  if (o.outputTokensBurst !== undefined) out.outputTokensBurst = o.outputTokensBurst;
  if (o.maxConcurrentRequests !== undefined) out.maxConcurrentRequests = o.maxConcurrentRequests;
  return out;
}

function defaultBurst(perMin: number, baseBurst: number): number {
  return baseBurst > 0 ? Math.min(perMin, baseBurst) : perMin;
}

/**
 * The limits in effect, in API units, for an account (`key` undefined) or for one of its keys: a key's own
 * buckets apply on top of its account's, so each field is the stricter of the two. Unlimited fields are absent.
 */
export function effectiveLimits(
  tier: TierLimits,
  account: RateLimitOverride | undefined,
  key?: RateLimitOverride,
): RateLimitOverride {
  const acct: TierLimits = { ...tier, ...overrideToTierLimits(account, tier) };
  const a = inApiUnits(acct);
  if (isEmptyOverride(key)) return a;
  const k = inApiUnits({ ...acct, ...overrideToTierLimits(key, acct) });
  const out: RateLimitOverride = {};
  for (const f of rateLimitOverrideFields) {
    const v = a[f] === undefined ? k[f] : k[f] === undefined ? a[f] : Math.min(a[f]!, k[f]!);
    if (v !== undefined) out[f] = v;
  }
  return out;
}

function inApiUnits(l: TierLimits): RateLimitOverride {
  const out: RateLimitOverride = {};
  if (l.requestsPerSec > 0) {
    out.requestsPerMin = Math.round(l.requestsPerSec * 60);
    out.requestsBurst = l.requestsBurst;
  }
  if (l.inputTokensPerMin > 0) {
    out.inputTokensPerMin = l.inputTokensPerMin;
    out.inputTokensBurst = l.inputTokensBurst;
  }
  if (l.outputTokensPerMin > 0) {
    out.outputTokensPerMin = l.outputTokensPerMin;
    out.outputTokensBurst = l.outputTokensBurst;
  }
  if (l.maxConcurrentRequests > 0) out.maxConcurrentRequests = l.maxConcurrentRequests;
  return out;
}
