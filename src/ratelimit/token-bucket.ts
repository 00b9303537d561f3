/**
 * Pure token-bucket math with time injected (no I/O, no clock): the same shape as a Redis Lua limiter,
 * where `now` is an argument, so a shared store can run exactly this arithmetic.
 *
 * A bucket refills continuously at `ratePerSec` up to `burst`. Its `level` may be **negative**: that is
 * debt, from a charge applied after the fact (an over-run found at reconciliation, or the part of an
 * oversized request above the burst). Debt must be repaid by refill before the bucket admits again, which
 * is what keeps the long-run admitted rate exact even though admission charges an estimate.
 *
 * **Requests larger than the burst.** A request that costs more than `burst` could never fit, so it would be
 * rejected forever. Instead admission needs only `min(units, burst)` in the bucket (i.e. a full bucket admits
 * anything) and then charges the full `units`; the excess becomes debt. The long-run rate stays exact and the
 * oversized request waits for a full bucket rather than failing.
 *
 * A rate of 0 (or less) means "unlimited" (as in the Go coordinator, where RPS 0 bypasses): take always
 * allows and the level is ignored.
 */

/** One bucket: its limits and its state. Immutable; every operation returns a new value. */
export interface Bucket {
  /** Refill rate in units per second; ≤ 0 means unlimited. */
  readonly ratePerSec: number;
  /** Capacity in units (the most that can be taken at once after idling). */
  readonly burst: number;
  /** Units available at `updatedMs`; negative means debt. */
  readonly level: number;
  /** Epoch ms of the last refill. */
  readonly updatedMs: number;
}

/** A bucket's limits without state. */
export interface BucketLimits {
  readonly ratePerSec: number;
  readonly burst: number;
}

/** The outcome of {@link take}. `next` is the bucket to store if (and only if) the caller commits. */
export interface TakeResult {
  readonly allowed: boolean;
  /** The refilled bucket, charged when allowed, uncharged when not. */
  readonly next: Bucket;
  /** 0 when allowed; otherwise the ms after `nowMs` at which the same take will be allowed (Infinity if never). */
  readonly retryAfterMs: number;
}

/**
 * Floating-point slack in units. Rates such as 5M/min are not integers per ms, so `level + rate × Δt` can miss
 * a threshold by ~1e-9; comparing with this slack makes "admit exactly at the hinted retry time" hold. It can
 * over-admit by at most 1e-6 of a token.
 */
const EPSILON_UNITS = 1e-6;

/** A new, full bucket. */
export function fullBucket(limits: BucketLimits, nowMs: number): Bucket {
  return { ratePerSec: limits.ratePerSec, burst: limits.burst, level: limits.burst, updatedMs: nowMs };
}

/** True when the bucket never limits. */
export function isUnlimited(b: BucketLimits): boolean {
  return !(b.ratePerSec > 0);
}

/**
 * The bucket refilled up to `nowMs`. Time going backwards (clock skew between callers) refills nothing and
 * keeps `updatedMs`, so a stale `now` can never mint tokens.
 */
export function refill(b: Bucket, nowMs: number): Bucket {
  if (nowMs <= b.updatedMs) return b;
  if (isUnlimited(b)) return { ...b, level: b.burst, updatedMs: nowMs };
  const level = Math.min(b.burst, b.level + ((nowMs - b.updatedMs) * b.ratePerSec) / 1000);
  return { ...b, level, updatedMs: nowMs };
}

/** Units the bucket must hold to admit a take of `units`: clamped to the burst (see module comment). */
export function admissionNeed(b: BucketLimits, units: number): number {
  return Math.min(Math.max(0, units), Math.max(0, b.burst));
}

/**
 * Tries to take `units` at `nowMs`. Allowed when the refilled level covers `min(units, burst)`; then the full
 * `units` are subtracted (possibly into debt). Pure: the caller stores `next` only if it commits, which lets a
 * limiter peek several buckets and commit all or none.
 */
export function take(b: Bucket, units: number, nowMs: number): TakeResult {
  const r = refill(b, nowMs);
  if (isUnlimited(r) || units <= 0) return { allowed: true, next: r, retryAfterMs: 0 };
  const need = admissionNeed(r, units);
  if (r.level + EPSILON_UNITS >= need) {
    return { allowed: true, next: { ...r, level: r.level - units }, retryAfterMs: 0 };
  }
  return { allowed: false, next: r, retryAfterMs: msUntilLevel(r, need) };
}

/**
 * Applies a charge (`deltaUnits` > 0, may create debt) or a give-back (`deltaUnits` < 0, capped at the burst:
 * returned tokens never raise a bucket above its capacity) after the fact, e.g. at reconciliation.
 */
export function adjust(b: Bucket, deltaUnits: number, nowMs: number): Bucket {
  const r = refill(b, nowMs);
  if (isUnlimited(r) || deltaUnits === 0 || !Number.isFinite(deltaUnits)) return r;
  const level = deltaUnits < 0 ? Math.min(r.burst, r.level - deltaUnits) : r.level - deltaUnits;
  return { ...r, level };
}

/** Ms after the bucket's `updatedMs` until its level reaches `target` (0 if already there). */
export function msUntilLevel(b: Bucket, target: number): number {
  if (isUnlimited(b)) return 0;
  const missing = target - b.level - EPSILON_UNITS;
  if (missing <= 0) return 0;
  return Math.ceil((missing * 1000) / b.ratePerSec);
}

/** Ms from `nowMs` until the bucket is full again (OpenAI's "reset" meaning: back to its initial state). */
export function msUntilFull(b: Bucket, nowMs: number): number {
  return msUntilLevel(refill(b, nowMs), b.burst);
}

/**
 * Re-limits a bucket (an override changed or the process share changed): refill under the old limits up to
 * `nowMs`, then apply the new ones, keeping debt and clamping the level to the new burst.
 */
export function withLimits(b: Bucket, limits: BucketLimits, nowMs: number): Bucket {
  const r = refill(b, nowMs);
  return {
    ratePerSec: limits.ratePerSec,
    burst: limits.burst,
    level: Math.min(r.level, limits.burst),
    updatedMs: r.updatedMs,
  };
}
