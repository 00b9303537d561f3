/**
 * The API-key cache in front of the database lookup: bounded, coalescing, and usable while the database is down.
 *
 * - **Known keys** (a lookup found a live key) are trusted for `ttlMs`, then looked up again. They live in their
 *   own LRU of at most `maxKeys`: using a key keeps it, and only the least recently used key is forgotten (the
 *   old Map was cleared entirely at 100,000 entries, so every key missed at once).
 * - **Unknown keys** (a lookup found nothing) are remembered for `negativeTtlMs` in a separate, smaller LRU, so a
 *   client repeating a wrong key costs no query, and a spray of random keys cannot evict a known key.
 * - **Coalesced misses:** one lookup per key hash is in flight at a time; everyone asking meanwhile shares it.
 * - **Stale if error:** when a lookup fails (database down or slow), a key verified within `staleIfErrorMs` is
 *   still answered from the cache, and not looked up again for another `ttlMs` (one failing query per key per
 *   TTL, not one per request). Other keys get the error (the HTTP edge answers 503 + Retry-After).
 * - **Revocation:** {@link forgetKey} drops every entry of a key id and makes lookups already in flight unable to
 *   re-cache what they read, so a key revoked through this process stops working at once, even during an outage.
 *
 * Keys are held as sha256 hex only. Time comes from the injected clock; the lookup is the caller's.
 */
import { LRUCache } from "lru-cache";
import type { Clock } from "../util/clock.js";
import type { Principal } from "../accounts/types.js";

/** The cache's bounds (see the module comment). Every field is a setting in `src/config/config.ts`. */
export interface ApiKeyCacheLimits {
  /** A known key is trusted this long before it is looked up again, ms. Default 5_000. */
  ttlMs: number;
  /** An unknown key is remembered this long, ms (0 = not remembered). Default 30_000. */
  negativeTtlMs: number;
  /** A lookup error is answered from a known key verified within this long, ms (0 = never). Default 3_600_000. */
  staleIfErrorMs: number;
  /** Known keys held at most. Default 100_000. */
  maxKeys: number;
  /** Unknown keys held at most. Default 10_000. */
  maxUnknownKeys: number;
}

export const defaultApiKeyCacheLimits: Readonly<ApiKeyCacheLimits> = Object.freeze({
  ttlMs: 5_000,
  negativeTtlMs: 30_000,
  staleIfErrorMs: 3_600_000,
  maxKeys: 100_000,
  maxUnknownKeys: 10_000,
});

interface KnownKey {
  principal: Principal;
  /** When a lookup last confirmed the key. Bounds how long it may be served while lookups fail. */
  verifiedAtMs: number;
  /** Until then the entry answers without a lookup (verification + TTL, or a failed lookup + TTL). */
  freshUntilMs: number;
}

/** How a lookup ended, for the caller's metrics. */
export type KeyLookupOutcome = "known" | "unknown" | "stale" | "error";

export interface ApiKeyCacheOptions extends Partial<ApiKeyCacheLimits> {
  clock: Clock;
  /** Called once per database lookup with how it ended. */
  onLookup?: (outcome: KeyLookupOutcome) => void;
}

/** One process's cache of API-key hash → principal. */
export class ApiKeyCache {
  readonly #clock: Clock;
  readonly #limits: ApiKeyCacheLimits;
  readonly #onLookup: (outcome: KeyLookupOutcome) => void;
  readonly #known: LRUCache<string, KnownKey>;
  /** Hash → when a lookup found nothing. */
  readonly #unknown: LRUCache<string, number>;
  readonly #inflight = new Map<string, Promise<Principal | undefined>>();
  /** Bumped by every revocation: a lookup that started before one may answer its caller but not fill the cache. */
  #epoch = 0;

  constructor(options: ApiKeyCacheOptions) {
    this.#clock = options.clock;
    this.#limits = { ...defaultApiKeyCacheLimits, ...definedOnly(options) };
    this.#onLookup = options.onLookup ?? (() => {});
    this.#known = new LRUCache({ max: this.#limits.maxKeys });
    this.#unknown = new LRUCache({ max: this.#limits.maxUnknownKeys });
  }

  /** The principal of a known key that needs no lookup now, else undefined. Never queries. */
  fresh(hash: string): Principal | undefined {
    const k = this.#known.get(hash);
    return k && this.#clock.nowMs() < k.freshUntilMs ? k.principal : undefined;
  }

  /**
   * Resolves a key hash: from the cache when fresh (known or unknown), else by `lookup`, shared with any lookup
   * of the same hash already in flight. Rejects only when the lookup fails and no stale answer is allowed.
   */
  resolve(hash: string, lookup: () => Promise<Principal | undefined>): Promise<Principal | undefined> {
    const now = this.#clock.nowMs();
    const known = this.#known.get(hash);
    if (known && now < known.freshUntilMs) return Promise.resolve(known.principal);
    const unknownAt = this.#unknown.get(hash);
    if (!known && unknownAt !== undefined && now - unknownAt < this.#limits.negativeTtlMs)
      return Promise.resolve(undefined);
    const pending = this.#inflight.get(hash);
    if (pending) return pending;
    const started = this.#lookup(hash, lookup).finally(() => {
      if (this.#inflight.get(hash) === started) this.#inflight.delete(hash);
    });
    this.#inflight.set(hash, started);
    return started;
  }

  async #lookup(hash: string, lookup: () => Promise<Principal | undefined>): Promise<Principal | undefined> {
    const epoch = this.#epoch;
    let principal: Principal | undefined;
    try {
      principal = await lookup();
    } catch (e) {
      const now = this.#clock.nowMs();
      const known = this.#known.get(hash);
      if (known && epoch === this.#epoch && now - known.verifiedAtMs <= this.#limits.staleIfErrorMs) {
        known.freshUntilMs = now + this.#limits.ttlMs;
        this.#onLookup("stale");
        return known.principal;
      }
      this.#onLookup("error");
      throw e;
    }
    this.#onLookup(principal ? "known" : "unknown");
    if (epoch !== this.#epoch) return principal;
    const now = this.#clock.nowMs();
    if (principal) {
      this.#known.set(hash, { principal, verifiedAtMs: now, freshUntilMs: now + this.#limits.ttlMs });
      this.#unknown.delete(hash);
    } else {
      this.#known.delete(hash);
      if (this.#limits.negativeTtlMs > 0) this.#unknown.set(hash, now);
    }
    return principal;
  }

  /** Forgets a hash (a key was just issued with it: it must not stay "unknown"). */
  forgetHash(hash: string): void {
    this.#known.delete(hash);
    this.#unknown.delete(hash);
    this.#inflight.delete(hash);
    this.#epoch++;
  }

  /** Forgets every entry of a key id (revocation), including what lookups in flight would have cached. */
  forgetKey(keyId: string): void {
    const hashes: string[] = [];
    for (const [hash, k] of this.#known.entries()) if (k.principal.keyId === keyId) hashes.push(hash);
    for (const hash of hashes) this.#known.delete(hash);
    // Callers already waiting get what their lookup reads; new callers start a fresh lookup.
    this.#inflight.clear();
    this.#epoch++;
  }

  /** Entries held (for tests and status). */
  get size(): { known: number; unknown: number; inflight: number } {
    return { known: this.#known.size, unknown: this.#unknown.size, inflight: this.#inflight.size };
  }
}

function definedOnly(o: Partial<ApiKeyCacheLimits>): Partial<ApiKeyCacheLimits> {
  const out: Partial<ApiKeyCacheLimits> = {};
  for (const k of ["ttlMs", "negativeTtlMs", "staleIfErrorMs", "maxKeys", "maxUnknownKeys"] as const)
    if (o[k] !== undefined) out[k] = o[k];
  return out;
}
