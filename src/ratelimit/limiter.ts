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
import { count, observe } from "../telemetry/metrics.js";
import { OutputEstimator } from "../util/output-estimator.js";
import { MemoryBucketStore, type BucketStore, type TakeRequest } from "./bucket-store.js";
import { ConcurrencyGate, type ConcurrencySlot } from "./concurrency-gate.js";
import { overrideGoverns, overrideToTierLimits, sameOverride } from "./limit-override.js";
import { RecentOverrides } from "./recent-overrides.js";
import { writeDimensionHeaders } from "./rate-limit-headers.js";
import {
  defaultTierLimits,
  definedFields,
  dimensionFields,
  dimensionLimits,
  rateDimensions,
  type TierLimits,
} from "./tier-limits.js";
import type { Bucket, BucketLimits } from "./token-bucket.js";
import type { AdmitInput, AdmitResult, RateDimension, RateLimitedCaller, RateLimiter, RateTicket } from "./types.js";

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
 * beyond the account's limit (each process is capped at its share). Keep N small, use round-robin per request
 * (not per connection), or move to a shared store when that matters.
 *
 * What a shared store adds: implement {@link BucketStore} over Redis (one `EVAL` of a Lua script doing
 * refill → check all → commit all for the account's and key's buckets, with `now` passed in, so the math is
 * `token-bucket.ts` verbatim) or Postgres (`SELECT … FOR UPDATE` on the bucket rows in key order, then one
 * UPDATE, in a transaction). Then every process sees one bucket per account: exact under any load balance,
 * and `processShare` goes back to 1. The cost is a network round trip per admission and per reconciliation,
 * an async `admit`, and a dependency whose outage must fail open or closed by policy.
 */
export interface RateLimiterOptions {
  /** Per-tier overrides of {@link defaultTierLimits}. */
  tiers?: Partial<Record<AccountTier, Partial<TierLimits>>>;
  /** Fraction of every rate and burst this process enforces, in (0, 1]. Default 1 (see above). */
  processShare?: number;
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

/** Actual usage at the end of a request. Extends the contract with an optional hint for the estimator. */
export interface ReconcileUsage {
  inputTokens: number;
  outputTokens: number;
  /**
   * False when `outputTokens` is not a natural completion length (provider failure → 0, client abort →
   * partial): the buckets are still reconciled but the estimator does not learn from it. Default true.
   */
  representative?: boolean;
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

/** The estimator key for an (account, model) pair. */
export function estimatorKey(accountId: string, model: string): string {
  return `${accountId}\u0000${model}`;
}

interface TicketInfo {
  caller: RateLimitedCaller;
  maxOutputTokens: number;
  /** Store keys charged per token dimension, to reconcile the same buckets. */
  inputKeys: string[];
  outputKeys: string[];
  /** Concurrency counters this request holds, given back at reconciliation. */
  concurrencyKeys: string[];
}

/** A request's buckets and concurrency slots, under the limits that apply now. */
interface Plan {
  buckets: PlannedBucket[];
  slots: ConcurrencySlot[];
}

interface PlannedBucket extends TakeRequest {
  readonly dimension: RateDimension;
  readonly scope: "account" | "key";
}

/** Builds the limiter. See {@link RateLimiterOptions} for the multi-process model. */
export function createRateLimiter(options: RateLimiterOptions = {}): KeyedRateLimiter {
  const share = options.processShare ?? 1;
  if (!(share > 0 && share <= 1)) throw new RangeError("processShare must be in (0, 1]");
  const tiers: Record<AccountTier, TierLimits> = {
    consumer: { ...defaultTierLimits.consumer, ...definedFields(options.tiers?.consumer ?? {}) },
    service: { ...defaultTierLimits.service, ...definedFields(options.tiers?.service ?? {}) },
  };
  const estimator = options.estimator ?? new OutputEstimator();
  const expectedOutput = options.chargeExpectedOutput ?? true;
  const idleEvictMs = options.idleEvictMs ?? 30 * 60_000;
  const pruneIntervalMs = options.pruneIntervalMs ?? 5 * 60_000;
  const store = options.store ?? new MemoryBucketStore();
  const bypass = new Set(options.bypassAccountIds ?? []);
  const accountOverrides = new Map<string, Partial<TierLimits>>();
  const keyOverrides = new Map<string, Partial<TierLimits>>();
  const recent = new RecentOverrides(options.recentOverrideMs ?? 5_000);
  const gate = new ConcurrencyGate(share);
  // Tickets this limiter issued and has not reconciled: identity makes reconcile idempotent without a new field.
  const open = new WeakMap<RateTicket, TicketInfo>();
  let lastPruneMs = -Infinity;

  // The account-scope part of a plan (store keys and limits) depends only on the account, its tier and its
  // overrides: cached so the hot path builds no key strings and spreads no limit objects per request.
  // setAccountLimits drops the entry; the tier and the operator override are part of the check because both can
  // change (compared by value: each key's cached principal carries its own copy of the account's override).
  interface AccountPlan {
    tier: AccountTier;
    override: RateLimitOverride | undefined;
    limits: TierLimits;
    buckets: readonly { dimension: RateDimension; key: string; limits: BucketLimits }[];
    slot: ConcurrencySlot;
  }
  const accountPlans = new Map<string, AccountPlan>();

  function accountPlan(accountId: string, tier: AccountTier, override: RateLimitOverride | undefined): AccountPlan {
    const cached = accountPlans.get(accountId);
    if (cached?.tier === tier && sameOverride(cached.override, override)) return cached;
    const programmatic = { ...tiers[tier], ...accountOverrides.get(accountId) };
    const limits = { ...programmatic, ...overrideToTierLimits(override, programmatic) };
    const buckets = rateDimensions.map((dimension) => ({ dimension, key: `a:${accountId}:${dimension}`, limits: dimensionLimits(limits, dimension, share) }));
    const entry: AccountPlan = { tier, override, limits, buckets, slot: { key: `a:${accountId}`, limit: limits.maxConcurrentRequests, scope: "account" } };
    accountPlans.set(accountId, entry);
    return entry;
  }

  function plan(who: RateLimitedCaller, units: Record<RateDimension, number>, nowMs: number): Plan {
    const account = accountPlan(who.accountId, who.tier, recent.resolve(`a:${who.accountId}`, who.accountLimits, nowMs));
    const programmaticKey = keyOverrides.get(who.keyId);
    const operatorKey = recent.resolve(`k:${who.keyId}`, who.keyLimits, nowMs);
    const out: PlannedBucket[] = [];
    // Only keys with an override pay for their own limits object; the rest share the account's plan.
    const keyLimits = programmaticKey || operatorKey ? keyLimitsOver(account.limits, programmaticKey, operatorKey) : undefined;
    for (const a of account.buckets) {
      const dimension = a.dimension;
      out.push({ dimension, units: units[dimension], scope: "account", key: a.key, limits: a.limits });
      if (keyLimits && (governs(programmaticKey, dimension) || overrideGoverns(operatorKey, dimension))) {
        out.push({ dimension, units: units[dimension], scope: "key", key: `k:${who.keyId}:${dimension}`, limits: dimensionLimits(keyLimits, dimension, share) });
      }
    }
    const slots = [account.slot, { key: `k:${who.keyId}`, limit: keyLimits?.maxConcurrentRequests ?? 0, scope: "key" as const }];
    return { buckets: out, slots };
  }

  function keyLimitsOver(account: TierLimits, programmatic: Partial<TierLimits> | undefined, operator: RateLimitOverride | undefined): TierLimits {
    const base = { ...account, ...programmatic };
    const limits = { ...base, ...overrideToTierLimits(operator, base) };
    // A key without its own concurrency limit is bounded by its account's slot only (not a second copy of it).
    if (programmatic?.maxConcurrentRequests === undefined && operator?.maxConcurrentRequests === undefined) limits.maxConcurrentRequests = 0;
    return limits;
  }

  function headersFrom(planned: readonly PlannedBucket[], buckets: readonly Bucket[], nowMs: number): Record<string, string> {
    const headers: Record<string, string> = {};
    // One account bucket per dimension, in order, unless a key has its own: then the headers combine both.
    if (planned.length === rateDimensions.length) {
      for (let i = 0; i < planned.length; i++) writeDimensionHeaders(headers, planned[i]!.dimension, buckets[i]!, nowMs, share);
      return headers;
    }
    for (const dimension of rateDimensions) {
      writeDimensionHeaders(headers, dimension, buckets.filter((_, i) => planned[i]!.dimension === dimension), nowMs, share);
    }
    return headers;
  }

  const limiter: KeyedRateLimiter = {
    estimator,
    store,

    admit(input: AdmitInput, nowMs: number): AdmitResult {
      if (nowMs - lastPruneMs >= pruneIntervalMs) limiter.evictIdle(nowMs);
      const maxOut = nonNegativeInt(input.maxOutputTokens);
      const chargedIn = nonNegativeInt(input.inputTokens);
      if (bypass.has(input.accountId)) {
        const ticket = makeTicket(input, 0, 0);
        return { ok: true, ticket, headers: {} };
      }
      const ek = estimatorKey(input.accountId, input.model);
      const chargedOut = expectedOutput ? estimator.expected(ek, maxOut) : maxOut;
      const { buckets: planned, slots } = plan(input, {
        requests: 1,
        input_tokens: chargedIn,
        output_tokens: chargedOut,
      }, nowMs);
      // Concurrency first: a request refused for it is charged nothing.
      const full = gate.full(slots);
      if (full) {
        const headers = headersFrom(planned, planned.map((p) => store.peek(p.key, p.limits, nowMs)), nowMs);
        gate.writeHeaders(headers, slots);
        count("ratelimit.rejections", { tier: input.tier, dimension: "concurrent_requests" });
        const who = full.scope === "key" ? `API key ${input.keyId}` : `account ${input.accountId}`;
        return {
          ok: false,
          dimension: "concurrent_requests",
          retryAfterMs: 1_000,
          message: `concurrent_requests limit (${full.limit}) reached for ${who}; retry when one of its requests has finished`,
          headers,
        };
      }
      const result = store.takeAll(planned, nowMs);
      const headers = headersFrom(planned, result.buckets, nowMs);
      if (!result.allowed) {
        gate.writeHeaders(headers, slots);
        const p = planned[result.index]!;
        count("ratelimit.rejections", { tier: input.tier, dimension: p.dimension });
        const who = p.scope === "key" ? `API key ${input.keyId}` : `account ${input.accountId}`;
        const retryS = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
        return {
          ok: false,
          dimension: p.dimension,
          retryAfterMs: result.retryAfterMs,
          message: `${p.dimension} rate limit exceeded for ${who}; retry in ${retryS} s`,
          headers,
        };
      }
      gate.enter(slots);
      gate.writeHeaders(headers, slots);
      const ticket = makeTicket(input, chargedIn, chargedOut);
      open.set(ticket, {
        caller: input,
        maxOutputTokens: maxOut,
        inputKeys: planned.filter((p) => p.dimension === "input_tokens").map((p) => p.key),
        outputKeys: planned.filter((p) => p.dimension === "output_tokens").map((p) => p.key),
        concurrencyKeys: slots.map((c) => c.key),
      });
      return { ok: true, ticket, headers };
    },

    headers(who, nowMs) {
      if (bypass.has(who.accountId)) return {};
      const { buckets: planned, slots } = plan(who, { requests: 0, input_tokens: 0, output_tokens: 0 }, nowMs);
      const headers = headersFrom(planned, planned.map((p) => store.peek(p.key, p.limits, nowMs)), nowMs);
      gate.writeHeaders(headers, slots);
      return headers;
    },

    reconcile(ticket: RateTicket, actual: ReconcileUsage, nowMs: number): void {
      const info = open.get(ticket);
      if (!info) return; // already reconciled, a bypass ticket, or not ours
      open.delete(ticket);
      gate.leave(info.concurrencyKeys);
      const actualIn = nonNegativeInt(actual.inputTokens);
      const actualOut = nonNegativeInt(actual.outputTokens);
      const deltaIn = actualIn - ticket.chargedInputTokens;
      const deltaOut = actualOut - ticket.chargedOutputTokens;
      // Re-plan with today's limits (an override may have changed mid-request) but the buckets charged then.
      for (const p of plan(info.caller, { requests: 0, input_tokens: 0, output_tokens: 0 }, nowMs).buckets) {
        if (p.dimension === "input_tokens" && info.inputKeys.includes(p.key)) store.adjust(p.key, p.limits, deltaIn, nowMs);
        if (p.dimension === "output_tokens" && info.outputKeys.includes(p.key)) store.adjust(p.key, p.limits, deltaOut, nowMs);
      }
      // Magnitude plus a direction tag: OpenTelemetry histograms drop negative values.
      const direction = deltaOut > 0 ? "over" : deltaOut < 0 ? "under" : "exact";
      observe("ratelimit.output_admission.delta_tokens", Math.abs(deltaOut), { tier: info.caller.tier, direction });
      if (actual.representative !== false) {
        estimator.observe(estimatorKey(ticket.accountId, ticket.model), actualOut, info.maxOutputTokens);
      }
    },

    setAccountLimits(accountId, limits) {
      if (limits === undefined) accountOverrides.delete(accountId);
      else accountOverrides.set(accountId, definedFields(limits));
      accountPlans.delete(accountId);
    },

    setKeyLimits(keyId, limits) {
      const fields = limits === undefined ? {} : definedFields(limits);
      if (Object.keys(fields).length === 0) keyOverrides.delete(keyId);
      else keyOverrides.set(keyId, fields);
    },

    applyOverride(subject, override, nowMs) {
      if (subject.kind === "account") {
        recent.record(`a:${subject.accountId}`, override, nowMs);
        accountPlans.delete(subject.accountId);
      } else {
        recent.record(`k:${subject.keyId}`, override, nowMs);
      }
    },

    tierLimits: (tier) => tiers[tier],

    setBypass(accountId, on) {
      if (on) bypass.add(accountId);
      else bypass.delete(accountId);
    },

    evictIdle(nowMs) {
      lastPruneMs = nowMs;
      accountPlans.clear(); // a cache: idle accounts must not pin entries forever
      recent.prune(nowMs);
      return store.evictIdle(nowMs, idleEvictMs);
    },
  };
  return limiter;
}

function makeTicket(input: AdmitInput, chargedInputTokens: number, chargedOutputTokens: number): RateTicket {
  return Object.freeze({
    accountId: input.accountId,
    keyId: input.keyId,
    model: input.model,
    chargedInputTokens,
    chargedOutputTokens,
  });
}

/** True when a programmatic key override sets a field of `dimension` (the key then gets its own bucket). */
function governs(o: Partial<TierLimits> | undefined, dimension: RateDimension): boolean {
  return o !== undefined && dimensionFields(dimension).some((f) => o[f] !== undefined);
}

function nonNegativeInt(x: number): number {
  return Number.isFinite(x) && x > 0 ? Math.ceil(x) : 0;
}
