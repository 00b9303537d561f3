/**
 * Which limits apply to a caller, and so which buckets and concurrency slots a request charges: the tier
 * defaults, the programmatic overrides (`setAccountLimits`, `setKeyLimits`) and the operator's `SetLimits` (as
 * the principal carries it, or as recorded on this process for one key-cache TTL). Pure state, no I/O.
 */
import type { AccountTier, LimitSubject, RateLimitOverride } from "../accounts/types.js";
import type { TakeRequest } from "./bucket-store.js";
import type { ConcurrencySlot } from "./concurrency-gate.js";
import { overrideGoverns, overrideToTierLimits, sameOverride } from "./limit-override.js";
import { writeDimensionHeaders } from "./rate-limit-headers.js";
import { RecentOverrides } from "./recent-overrides.js";
import {
  defaultTierLimits,
  definedFields,
  dimensionFields,
  dimensionLimits,
  rateDimensions,
  type TierLimits,
} from "./tier-limits.js";
import type { Bucket, BucketLimits } from "./token-bucket.js";
import type { RateDimension, RateLimitedCaller } from "./types.js";

/** A request's buckets and concurrency slots, under the limits that apply now. */
export interface LimitPlan {
  buckets: PlannedBucket[];
  slots: ConcurrencySlot[];
}

/** One bucket a request charges, with the dimension and scope its refusal message and headers name. */
export interface PlannedBucket extends TakeRequest {
  readonly dimension: RateDimension;
  readonly scope: "account" | "key";
}

/** How a planner is built (the limiter's options, already validated). */
export interface LimitPlannerOptions {
  /** Per-tier overrides of {@link defaultTierLimits}. */
  tiers?: Partial<Record<AccountTier, Partial<TierLimits>>> | undefined;
  /** Fraction of every rate and burst this process enforces, in (0, 1]. */
  processShare: number;
  /** How long an operator override applied here wins over what principals carry (the API-key cache TTL). */
  recentOverrideMs: number;
}

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

/** The limits in force per account and key, and the plans built from them. */
export class LimitPlanner {
  readonly #share: number;
  readonly #tiers: Record<AccountTier, TierLimits>;
  readonly #accountOverrides = new Map<string, Partial<TierLimits>>();
  readonly #keyOverrides = new Map<string, Partial<TierLimits>>();
  readonly #recent: RecentOverrides;
  readonly #accountPlans = new Map<string, AccountPlan>();

  constructor(options: LimitPlannerOptions) {
    this.#share = options.processShare;
    this.#tiers = {
      consumer: { ...defaultTierLimits.consumer, ...definedFields(options.tiers?.consumer ?? {}) },
      service: { ...defaultTierLimits.service, ...definedFields(options.tiers?.service ?? {}) },
    };
    this.#recent = new RecentOverrides(options.recentOverrideMs);
  }

  /** The buckets (charged `units` per dimension) and concurrency slots that apply to `who` now. */
  plan(who: RateLimitedCaller, units: Record<RateDimension, number>, nowMs: number): LimitPlan {
    const account = this.#accountPlan(
      who.accountId,
      who.tier,
      this.#recent.resolve(`a:${who.accountId}`, who.accountLimits, nowMs),
    );
    const programmaticKey = this.#keyOverrides.get(who.keyId);
    const operatorKey = this.#recent.resolve(`k:${who.keyId}`, who.keyLimits, nowMs);
    const out: PlannedBucket[] = [];
    // Only keys with an override pay for their own limits object; the rest share the account's plan.
    const keyLimits =
      programmaticKey || operatorKey ? keyLimitsOver(account.limits, programmaticKey, operatorKey) : undefined;
    for (const a of account.buckets) {
      const dimension = a.dimension;
      out.push({ dimension, units: units[dimension], scope: "account", key: a.key, limits: a.limits });
      if (keyLimits && (governs(programmaticKey, dimension) || overrideGoverns(operatorKey, dimension))) {
        out.push({
          dimension,
          units: units[dimension],
          scope: "key",
          key: `k:${who.keyId}:${dimension}`,
          limits: dimensionLimits(keyLimits, dimension, this.#share),
        });
      }
    }
    const slots = [
      account.slot,
      { key: `k:${who.keyId}`, limit: keyLimits?.maxConcurrentRequests ?? 0, scope: "key" as const },
    ];
    return { buckets: out, slots };
  }

  /** The `x-ratelimit-*` headers of a plan's buckets (`buckets[i]` is the state of `planned[i]`). */
  headers(planned: readonly PlannedBucket[], buckets: readonly Bucket[], nowMs: number): Record<string, string> {
    const headers: Record<string, string> = {};
    // One account bucket per dimension, in order, unless a key has its own: then the headers combine both.
    if (planned.length === rateDimensions.length) {
      for (let i = 0; i < planned.length; i++)
        writeDimensionHeaders(headers, planned[i]!.dimension, buckets[i]!, nowMs, this.#share);
      return headers;
    }
    for (const dimension of rateDimensions) {
      writeDimensionHeaders(
        headers,
        dimension,
        buckets.filter((_, i) => planned[i]!.dimension === dimension),
        nowMs,
        this.#share,
      );
    }
    return headers;
  }

  /** See `KeyedRateLimiter.setAccountLimits` (limiter.ts). */
  setAccountLimits(accountId: string, limits: Partial<TierLimits> | undefined): void {
    if (limits === undefined) this.#accountOverrides.delete(accountId);
    else this.#accountOverrides.set(accountId, definedFields(limits));
    this.#accountPlans.delete(accountId);
  }

  /** See `KeyedRateLimiter.setKeyLimits` (limiter.ts). */
  setKeyLimits(keyId: string, limits: Partial<TierLimits> | undefined): void {
    const fields = limits === undefined ? {} : definedFields(limits);
    if (Object.keys(fields).length === 0) this.#keyOverrides.delete(keyId);
    else this.#keyOverrides.set(keyId, fields);
  }

  /** See `KeyedRateLimiter.applyOverride` (limiter.ts). */
  applyOverride(subject: LimitSubject, override: RateLimitOverride | undefined, nowMs: number): void {
    if (subject.kind === "account") {
      this.#recent.record(`a:${subject.accountId}`, override, nowMs);
      this.#accountPlans.delete(subject.accountId);
    } else {
      this.#recent.record(`k:${subject.keyId}`, override, nowMs);
    }
  }

  /** The tier defaults in force (after the `tiers` option), before any override. */
  tierLimits(tier: AccountTier): Readonly<TierLimits> {
    return this.#tiers[tier];
  }

  /** Drops the plan cache (idle accounts must not pin entries forever) and expired operator overrides. */
  prune(nowMs: number): void {
    this.#accountPlans.clear();
    this.#recent.prune(nowMs);
  }

  #accountPlan(accountId: string, tier: AccountTier, override: RateLimitOverride | undefined): AccountPlan {
    const cached = this.#accountPlans.get(accountId);
    if (cached?.tier === tier && sameOverride(cached.override, override)) return cached;
    const programmatic = { ...this.#tiers[tier], ...this.#accountOverrides.get(accountId) };
    const limits = { ...programmatic, ...overrideToTierLimits(override, programmatic) };
    const buckets = rateDimensions.map((dimension) => ({
      dimension,
      key: `a:${accountId}:${dimension}`,
      limits: dimensionLimits(limits, dimension, this.#share),
    }));
    const entry: AccountPlan = {
      tier,
      override,
      limits,
      buckets,
      slot: { key: `a:${accountId}`, limit: limits.maxConcurrentRequests, scope: "account" },
    };
    this.#accountPlans.set(accountId, entry);
    return entry;
  }
}

function keyLimitsOver(
  account: TierLimits,
  programmatic: Partial<TierLimits> | undefined,
  operator: RateLimitOverride | undefined,
): TierLimits {
  const base = { ...account, ...programmatic };
  const limits = { ...base, ...overrideToTierLimits(operator, base) };
  // A key without its own concurrency limit is bounded by its account's slot only (not a second copy of it).
  if (programmatic?.maxConcurrentRequests === undefined && operator?.maxConcurrentRequests === undefined)
    limits.maxConcurrentRequests = 0;
  return limits;
}

/** True when a programmatic key override sets a field of `dimension` (the key then gets its own bucket). */
function governs(o: Partial<TierLimits> | undefined, dimension: RateDimension): boolean {
  return o !== undefined && dimensionFields(dimension).some((f) => o[f] !== undefined);
}
