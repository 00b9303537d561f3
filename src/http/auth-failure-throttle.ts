/**
 * Failed API-key attempts per client address: a token bucket each (`burst` attempts, `refillPerSec` regained per
 * second), held in an LRU of at most `maxAddresses` so memory stays bounded whatever the number of clients.
 * Before an outside request's key is looked up, {@link check} decides from memory whether the address may try
 * again; each failure is charged afterwards ({@link recordFailure}) and may drive the bucket into debt, so a
 * client with many attempts in flight at once still averages `refillPerSec` over time.
 *
 * Key spraying used to be free: 2,100 wrong keys a second from one client, each a database query (issue 13).
 * Forgetting an address (LRU eviction) only forgives it. Successes neither charge nor refund: a client that
 * holds one valid key cannot use it to keep guessing others.
 */
import { LRUCache } from "lru-cache";
import { fullBucket, adjust, take, type Bucket, type BucketLimits } from "../ratelimit/token-bucket.js";

/** The throttle's bounds. Every field is a setting in `src/config/config.ts`. */
export interface AuthFailureLimits {
  /** Failures an address may make at once. Default 20. */
  burst: number;
  /** Failures an address regains per second. Default 2. */
  refillPerSec: number;
  /** Addresses remembered at most. Default 100_000. */
  maxAddresses: number;
}

export const defaultAuthFailureLimits: Readonly<AuthFailureLimits> = Object.freeze({
  burst: 20,
  refillPerSec: 2,
  maxAddresses: 100_000,
});

/** Whether an address may try a key now; when not, how long until it may (ms). */
export type AuthAttemptDecision = { allowed: true } | { allowed: false; retryAfterMs: number };

/** The per-address failure buckets of one process. */
export class AuthFailureThrottle {
  readonly #limits: BucketLimits;
  readonly #buckets: LRUCache<string, Bucket>;

  constructor(limits: Partial<AuthFailureLimits> = {}) {
    const l = { ...defaultAuthFailureLimits, ...limits };
    this.#limits = { burst: l.burst, ratePerSec: l.refillPerSec };
    this.#buckets = new LRUCache({ max: l.maxAddresses });
  }

  /** May `address` attempt a key lookup at `nowMs`? Pure with respect to the buckets (nothing is charged). */
  check(address: string, nowMs: number): AuthAttemptDecision {
    const b = this.#buckets.get(address);
    if (!b) return { allowed: true };
    const r = take(b, 1, nowMs);
    return r.allowed ? { allowed: true } : { allowed: false, retryAfterMs: r.retryAfterMs };
  }

  /** Charges one failed attempt to `address`. */
  recordFailure(address: string, nowMs: number): void {
    const b = this.#buckets.get(address) ?? fullBucket(this.#limits, nowMs);
    this.#buckets.set(address, adjust(b, 1, nowMs));
  }

  /** Addresses currently remembered. */
  get size(): number {
    return this.#buckets.size;
  }
}
