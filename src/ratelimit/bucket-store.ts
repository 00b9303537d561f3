/**
 * Where bucket state lives. The limiter decides *what* to charge; the store makes the charge atomic.
 *
 * The atomic unit is {@link BucketStore.takeAll}: refill every listed bucket, check every one, and commit all
 * charges only if all fit (no partial charge on rejection). That is exactly the body a shared store would run
 * server-side: a Redis `EVAL` with KEYS = bucket keys and ARGV = (limits, units, nowMs) per key, or a Postgres
 * `SELECT … FOR UPDATE` over the rows in key order followed by one UPDATE, in one transaction. The arithmetic
 * is `token-bucket.ts`, unchanged. `takeAll` stays synchronous for every store: the shared one
 * (`leased-bucket-store.ts`) spends grants drawn ahead of time in memory, and offers {@link BucketStore.replenish}
 * for the rare request its grants cannot cover (`KeyedRateLimiter.admitWaiting` awaits it and retries, up to
 * `MAX_REPLENISH_ROUNDS` times).
 */
import { adjust, fullBucket, refill, take, withLimits, type Bucket, type BucketLimits } from "./token-bucket.js";

/** One bucket to charge in a {@link BucketStore.takeAll}. */
export interface TakeRequest {
  /** Store key, e.g. `a:<accountId>:output_tokens`. */
  readonly key: string;
  /** The limits that apply now (tier default or override, times the process share). */
  readonly limits: BucketLimits;
  readonly units: number;
}

/** Result of {@link BucketStore.takeAll}: `buckets[i]` is the state of `requests[i]` after the call. */
export type TakeAllResult =
  | { readonly allowed: true; readonly buckets: readonly Bucket[] }
  | {
      readonly allowed: false;
      readonly buckets: readonly Bucket[];
      /** Index of the request that needs the longest wait (the binding one). */
      readonly index: number;
      /** Ms until every rejected bucket can take its units (the max over them). */
      readonly retryAfterMs: number;
    };

/** Bucket state storage. Implementations must make `takeAll` atomic with respect to every other call. */
export interface BucketStore {
  /** Checks all, then commits all or nothing. */
  takeAll(requests: readonly TakeRequest[], nowMs: number): TakeAllResult;
  /** Charges (`deltaUnits` > 0, may go into debt) or gives back (< 0, capped at burst) one bucket. */
  adjust(key: string, limits: BucketLimits, deltaUnits: number, nowMs: number): void;
  /** The bucket refilled to `nowMs`, without changing it (a missing bucket reads as full). */
  peek(key: string, limits: BucketLimits, nowMs: number): Bucket;
  /**
   * Drops buckets untouched for at least `idleMs` **and full after refill** (so eviction never forgives debt:
   * a recreated bucket starts full, which is then the same state). Returns how many were dropped.
   */
  evictIdle(nowMs: number, idleMs: number): number;
  /**
   * Stores whose state lives elsewhere: fetch more for the buckets of `requests` that cannot cover their units
   * now, so one retry of `takeAll` may succeed. Absent on the in-memory store (nothing to wait for).
   */
  replenish?(requests: readonly TakeRequest[], nowMs: number): Promise<void>;
  /** Number of buckets held (for tests and a gauge). */
  readonly size: number;
}

/** The single-process store: a Map. Atomic because JavaScript runs `takeAll` to completion on one thread. */
export class MemoryBucketStore implements BucketStore {
  readonly #buckets = new Map<string, Bucket>();

  takeAll(requests: readonly TakeRequest[], nowMs: number): TakeAllResult {
    const results = requests.map((r) => take(this.#current(r.key, r.limits, nowMs), r.units, nowMs));
    let index = -1;
    let retryAfterMs = 0;
    results.forEach((res, i) => {
      if (!res.allowed && (index < 0 || res.retryAfterMs > retryAfterMs)) {
        index = i;
        retryAfterMs = res.retryAfterMs;
      }
    });
    const buckets = results.map((r) => r.next);
    if (index >= 0) {
      // Nothing is charged, but a bucket whose limits changed (an operator's override) keeps its new limits from
      // now on: otherwise it would go on refilling at the old rate for as long as every request is refused.
      requests.forEach((r, i) => {
        const stored = this.#buckets.get(r.key);
        if (stored && (stored.ratePerSec !== r.limits.ratePerSec || stored.burst !== r.limits.burst))
          this.#buckets.set(r.key, buckets[i]!);
      });
      return { allowed: false, buckets, index, retryAfterMs };
    }
    for (const [i, r] of requests.entries()) this.#buckets.set(r.key, buckets[i]!);
    return { allowed: true, buckets };
  }

  adjust(key: string, limits: BucketLimits, deltaUnits: number, nowMs: number): void {
    this.#buckets.set(key, adjust(this.#current(key, limits, nowMs), deltaUnits, nowMs));
  }

  peek(key: string, limits: BucketLimits, nowMs: number): Bucket {
    return refill(this.#current(key, limits, nowMs), nowMs);
  }

  evictIdle(nowMs: number, idleMs: number): number {
    let n = 0;
    for (const [key, b] of this.#buckets) {
      if (nowMs - b.updatedMs >= idleMs && refill(b, nowMs).level >= b.burst) {
        this.#buckets.delete(key);
        n++;
      }
    }
    return n;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** The stored bucket under the current limits (a new full one if absent). */
  #current(key: string, limits: BucketLimits, nowMs: number): Bucket {
    const b = this.#buckets.get(key);
    if (!b) return fullBucket(limits, nowMs);
    if (b.ratePerSec === limits.ratePerSec && b.burst === limits.burst) return b;
    return withLimits(b, limits, nowMs);
  }
}
