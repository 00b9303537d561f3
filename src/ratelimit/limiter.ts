/**
 * Per-account and per-key rate limiting: requests/s, input tokens/min and output tokens/min, charged from the
 * request's **expected** usage and reconciled with its actual usage (load-test report, Issue 2).
 *
 * Wiring in an HTTP handler (after auth and parsing, before the balance reservation and dispatch):
 * ```ts
 * const r = limiter.admit({ accountId, keyId, tier, model, inputTokens: promptEstimate, maxOutputTokens }, clock.nowMs());
 * if (!r.ok) throw rateLimitError(r);          // 429 rate_limit_exceeded + Retry-After + x-ratelimit-*
 * setHeaders(res, r.headers);                    // x-ratelimit-* on every response
 * try { … dispatch … } finally {
 *   // success: usage from the provider; failure: outputTokens 0; client abort: the tokens streamed so far.
 *   limiter.reconcile(r.ticket, { inputTokens, outputTokens, representative: finishedNormally }, clock.nowMs());
 * }
 * ```
 */
import type { AccountTier, LimitSubject, RateLimitOverride } from "../accounts/types.js";
import { OutputEstimator } from "../util/output-estimator.js";
import { Admission, estimatorKey, makeTicket } from "./admission.js";
import { MemoryBucketStore, type BucketStore } from "./bucket-store.js";
import { ConcurrencyGate } from "./concurrency-gate.js";
import { LimitPlanner } from "./limit-planner.js";
import type { defaultTierLimits, TierLimits } from "./tier-limits.js";
import type { RateLimiter, RateTicket, ReconcileUsage } from "./types.js";

export { estimatorKey };
export type { ReconcileUsage };

/**
 * Options for {@link createRateLimiter}.
 *
 * ### Several coordinator processes: `processShare`
 * With N coordinator processes behind a load balancer, each process enforces `processShare = 1/N` of every
 * rate *and* burst (env `COORDINATOR_REPLICAS` = N; default 1, i.e. the whole limit). Why this keeps the
 * aggregate accurate: a balancer spreads an account's requests roughly evenly, so each process sees ~1/N of
 * the traffic and admits at most rate/N sustained plus burst/N at once; summed over N processes that is
 * exactly the account's rate and burst. Nothing is shared, so a single process needs no external service and
 * a Redis/Postgres outage cannot take admission down. Without the share, N processes would multiply the limit
 * by N (LiteLLM #2730: 3 replicas turned rpm_limit=10 into ~30).
 *
 * Trade-off: the share is exact only for balanced load. If the balancer pins one account to one process
 * (sticky connections, HTTP/2 keep-alive from a single client), that process admits only 1/N of the limit
 * while the others sit unused: the account is **under-admitted** by up to (N-1)/N. It never over-admits
 * beyond the account's limit (each process is capped at its share).
 *
 * ### Shared buckets: `store` = a `LeasedBucketStore` (`RATE_LIMIT_STORE=postgres`)
 * Every process draws grants from one PostgreSQL row per bucket and spends them in memory (see
 * leased-bucket-store.ts); `processShare` is then 1 and the account's limit holds across processes under any
 * balance. `concurrencyShare` stays 1/N: in-flight counts are not shared.
 */
export interface RateLimiterOptions {
  /** Per-tier overrides of {@link defaultTierLimits}. */
  tiers?: Partial<Record<AccountTier, Partial<TierLimits>>>;
  /** Fraction of every rate and burst this process enforces, in (0, 1]. Default 1 (see above). */
  processShare?: number;
  /** Fraction of every concurrency limit this process enforces, in (0, 1]. Default `processShare`. */
  concurrencyShare?: number;
  /** Expected-output model, keyed by {@link estimatorKey}. Default: a new `OutputEstimator()`. Share it with the scheduler. */
  estimator?: OutputEstimator;
  /** Charge OTPM with the expected output (true, default) or the full max_tokens (false, the old behaviour). */
  chargeExpectedOutput?: boolean;
  /** Buckets idle (and full) this long are dropped. Default 30 min. */
  idleEvictMs?: number;
  /** How often `admit` sweeps idle buckets, driven by `nowMs` (no timers). Default 5 min. */
  pruneIntervalMs?: number;
  /** Bucket storage. Default a {@link MemoryBucketStore}. */
  store?: BucketStore;
  /** Accounts that are never limited (the admin pseudo-account). */
  bypassAccountIds?: Iterable<string>;
  /**
   * How long an override recorded by {@link KeyedRateLimiter.applyOverride} wins over what principals carry:
   * the API-key cache TTL, after which every cached principal carries the change itself. Default 5_000 ms.
   */
  recentOverrideMs?: number;
}

/** The limiter with its administration surface. */
export interface KeyedRateLimiter extends RateLimiter {
  reconcile(ticket: RateTicket, actual: ReconcileUsage, nowMs: number): void;
  /** Overrides (or with `undefined`, clears) an account's limits; unspecified fields keep the tier default. */
  setAccountLimits(accountId: string, limits: Partial<TierLimits> | undefined): void;
  /**
   * Adds (or clears) per-key limits. A key gets its own buckets only for dimensions it overrides; the account's
   * buckets always apply too, so a key can be stricter than its account but never looser.
   */
  setKeyLimits(keyId: string, limits: Partial<TierLimits> | undefined): void;
  /**
   * An operator's `SetLimits` (undefined = cleared), applied at once on this process. Principals carry the
   * overrides read at key lookup; this one wins over theirs until the key cache has renewed them
   * (`recentOverrideMs`). Order of precedence per field: key override, account override, tier default; a key's
   * buckets apply on top of its account's, so a key can be stricter than its account but never looser.
   */
  applyOverride(subject: LimitSubject, override: RateLimitOverride | undefined, nowMs: number): void;
  /** The tier defaults this limiter enforces (after its `tiers` option), before any override. */
  tierLimits(tier: AccountTier): Readonly<TierLimits>;
  /** Marks an account as never limited (admin). */
  setBypass(accountId: string, bypass: boolean): void;
  /** Drops idle, full buckets now; returns how many. `admit` also does this every `pruneIntervalMs`. */
  evictIdle(nowMs: number): number;
  readonly estimator: OutputEstimator;
  readonly store: BucketStore;
}

/** `processShare` for N coordinator replicas (env `COORDINATOR_REPLICAS`); invalid or < 1 counts as 1. */
export function processShareForReplicas(replicas: number): number {
  return Number.isFinite(replicas) && replicas >= 1 ? 1 / Math.floor(replicas) : 1;
}

/** Builds the limiter. See {@link RateLimiterOptions} for the multi-process model. */
export function createRateLimiter(options: RateLimiterOptions = {}): KeyedRateLimiter {
  const share = options.processShare ?? 1;
  if (!(share > 0 && share <= 1)) throw new RangeError("processShare must be in (0, 1]");
  const planner = new LimitPlanner({
    tiers: options.tiers,
    processShare: share,
    recentOverrideMs: options.recentOverrideMs ?? 5_000,
  });
  const estimator = options.estimator ?? new OutputEstimator();
  const idleEvictMs = options.idleEvictMs ?? 30 * 60_000;
  const pruneIntervalMs = options.pruneIntervalMs ?? 5 * 60_000;
  const store: BucketStore = options.store ?? new MemoryBucketStore();
  const bypass = new Set(options.bypassAccountIds ?? []);
  const concurrencyShare = options.concurrencyShare ?? share;
  if (!(concurrencyShare > 0 && concurrencyShare <= 1)) throw new RangeError("concurrencyShare must be in (0, 1]");
  const gate = new ConcurrencyGate(concurrencyShare);
  const admission = new Admission({
    planner,
    store,
    gate,
    estimator,
    chargeExpectedOutput: options.chargeExpectedOutput ?? true,
  });
  let lastPruneMs = -Infinity;

  const limiter: KeyedRateLimiter = {
    estimator,
    store,
    admit(input, nowMs) {
      if (nowMs - lastPruneMs >= pruneIntervalMs) limiter.evictIdle(nowMs);
      if (bypass.has(input.accountId)) return { ok: true, ticket: makeTicket(input, 0, 0), headers: {} };
      return admission.admit(input, nowMs);
    },
    async admitWaiting(input, now) {
      if (bypass.has(input.accountId) || !store.replenish) return limiter.admit(input, now());
      const nowMs = now();
      if (nowMs - lastPruneMs >= pruneIntervalMs) limiter.evictIdle(nowMs);
      return admission.admitWaiting(input, now);
    },
    headers: (who, nowMs) => (bypass.has(who.accountId) ? {} : admission.headers(who, nowMs)),
    reconcile: (ticket: RateTicket, actual: ReconcileUsage, nowMs: number) =>
      admission.reconcile(ticket, actual, nowMs),
    setAccountLimits: (accountId, limits) => planner.setAccountLimits(accountId, limits),
    setKeyLimits: (keyId, limits) => planner.setKeyLimits(keyId, limits),
    applyOverride: (subject, override, nowMs) => planner.applyOverride(subject, override, nowMs),
    tierLimits: (tier) => planner.tierLimits(tier),
    setBypass(accountId, on) {
      if (on) bypass.add(accountId);
      else bypass.delete(accountId);
    },
    evictIdle(nowMs) {
      lastPruneMs = nowMs;
      planner.prune(nowMs);
      return store.evictIdle(nowMs, idleEvictMs);
    },
  };
  return limiter;
}
