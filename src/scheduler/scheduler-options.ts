/**
 * Every tunable of the pure scheduler in one place, with units in the names and the defaults filled in once by
 * {@link resolveSchedulerOptions}. The composition root passes a partial object from config; tests and the
 * routing simulator pass their own.
 */
import { RATE_CONCURRENCY_LAW_K } from "../registry/observed-rates.js";

import type { CatalogModel } from "../models/catalog.js";
import type { ProviderView } from "../registry/types.js";
import type { HealthGates, PickResult, RouteRequest } from "./types.js";

export interface SchedulerOptions {
  /**
   * Another policy plugged into the scheduler's seam (below), for the routing simulator's
   * comparison only. Undefined (the default, and always in the product): the scheduler's own KV-aware policy.
   */
  policy?: SchedulingPolicy | undefined;
  /** Providers below this version are excluded from tool requests unless waived. Default "0.6.3". */
  toolsVersionFloor: string;
  /**
   * True when the coordinator repairs tool schemas centrally, so old providers' template crashes cannot be
   * triggered and the tools floor is waived. Default false here; the lead sets it true in the server.
   */
  toolsFloorWaivedByNormalization: boolean;
  /** Multiplier on the estimator's expected output for the slot reservation, ≥ 1. Default 1.0 (the estimator already adds its own safety factor). */
  outputMarginFactor: number;
  /** Tokens added on top of what an in-flight request has already used when it over-runs its reservation. Default 256. */
  overrunMarginTokens: number;
  /** Smallest output a request must be able to produce for the context check. Default 16 tokens. */
  minOutputTokens: number;
  /** Concurrency law coefficient k in rate(n) = solo / (1 + k(n-1)). Default {@link RATE_CONCURRENCY_LAW_K} (0.27, measured on M-series). */
  concurrencyLawK: number;
  /** Per-stream decode floor the quality cap protects, tok/s. Default 15. */
  qualityDecodeFloorTps: number;
  /** Multiplier on the quality concurrency (the cap is a soft SLA: more streams still finish sooner than a queue). Default 2. */
  qualityOvercommit: number;
  /** Concurrency used when a slot reports no max_concurrency and no budget. Default 4. */
  fallbackMaxConcurrency: number;
  /** Hard ceiling on concurrency per slot whatever the slot says. Default 24. */
  maxConcurrencyCeiling: number;
  /** Memory the OS and the provider runtime keep (memory-based fallback gates), GiB. Default 4. */
  osReserveGb: number;
  /** Share of unified memory the GPU may wire (memory-based KV budget fallback). Default 0.9. */
  gpuMemoryFraction: number;
  /** The provider's own load rule: weights × this ≤ total memory. Default 3. */
  providerLoadFactor: number;
  /** Padding applied to weights before comparing with the provider's `freeForLoadGb`. Default 1.2. */
  loadPaddingFactor: number;
  /** Load time assumed when no slot reports one, per GB of weights, ms. Default 1500 (≈ 0.7 GB/s incl. warm-up). */
  loadMsPerGb: number;
  /** Fixed part of a cold load, ms. Default 3000. */
  loadBaseMs: number;
  /** Near-tie window, as a fraction of the best cost. Default 0.05. */
  nearTieFraction: number;
  /** Near-tie window floor, ms (tiny costs are noise). Default 250. */
  nearTieMinMs: number;
  /**
   * In a cluster, a request goes to a Mac another coordinator owns only when this node's best own Mac would cost
   * more than (1 + this) times as much (choose-in-tier.ts). Default 0.5, as CLUSTER_FORWARD_MARGIN's.
   */
  forwardMarginFraction: number;
  /** Health penalty per unit of memory pressure, ms. Default 4000. */
  memoryPressurePenaltyMs: number;
  /** Health penalties for thermal fair / serious, ms. Defaults 2000 / 8000. */
  thermalFairPenaltyMs: number;
  thermalSeriousPenaltyMs: number;
  /** Prefill rate assumed as a multiple of decode when nothing better is known. Default 12. */
  prefillToDecodeRatio: number;
  /**
   * Bounded work per decision: with more advertisers than this, a pick walks them from a random offset and
   * stops once it holds this many warm candidates (the best of a random sample — "power of d choices" — is
   * near the global best when many are alike). Cold candidates are only evaluated when no warm slot admits,
   * and also stop at this many. Default 24.
   */
  candidateSample: number;
  /** Retry-After hint when the model has no queue measurement at all (offline catalog model), ms. Default 5000. */
  defaultRetryAfterMs: number;
}

export const defaultSchedulerOptions: Readonly<SchedulerOptions> = Object.freeze({
  toolsVersionFloor: "0.6.3",
  toolsFloorWaivedByNormalization: false,
  outputMarginFactor: 1.0,
  overrunMarginTokens: 256,
  minOutputTokens: 16,
  concurrencyLawK: RATE_CONCURRENCY_LAW_K,
  qualityDecodeFloorTps: 15,
  qualityOvercommit: 2,
  fallbackMaxConcurrency: 4,
  maxConcurrencyCeiling: 24,
  osReserveGb: 4,
  gpuMemoryFraction: 0.9,
  providerLoadFactor: 3,
  loadPaddingFactor: 1.2,
  loadMsPerGb: 1500,
  loadBaseMs: 3000,
  nearTieFraction: 0.05,
  nearTieMinMs: 250,
  forwardMarginFraction: 0.5,
  memoryPressurePenaltyMs: 4000,
  thermalFairPenaltyMs: 2000,
  thermalSeriousPenaltyMs: 8000,
  prefillToDecodeRatio: 12,
  candidateSample: 24,
  defaultRetryAfterMs: 5000,
} satisfies SchedulerOptions);

/*
 * The scheduler's policy seam. The product runs one policy, its own KV-aware one, and leaves
 * `SchedulerOptions.policy` undefined. The routing simulator plugs another in — the Go coordinator's worst-case
 * baseline (src/tools/simulate/baseline/) — to run the same scenario under both and compare. Each member
 * replaces exactly one decision the scheduler otherwise makes itself, so the scheduler's own code reads without
 * the baseline's branches and never imports it. (Here rather than in a file of its own: the options name the
 * policy and the policy is handed the options.)
 */

/** What a policy's selection gets: the request's context, already past the shared gates. */
export interface PolicyPickContext {
  nowMs: number;
  random: () => number;
  health: HealthGates;
  /** Retry-After the scheduler would give for a queue decision, ms. */
  retryAfterMs: number;
  /** A model's weight bytes on a provider. */
  weightsOf: (p: ProviderView, model: string) => number;
  /** The catalog's entry for the requested model, when it has one. */
  entry: CatalogModel | undefined;
}

/** The warm-pool planner's decisions a policy replaces. */
export interface PolicyWarmPool {
  /** Mean service time of one request for Little's law, ms (`ref`: a provider holding or able to hold the model). */
  serviceTimeMs(ref: ProviderView | undefined): number;
  /** Multiplier on the offered load before dividing by concurrency (ours: `WarmPoolOptions.headroomFactor`). */
  headroomFactor: number;
  /** Whether admission pressure (capacity rejects, queue timeouts) adds one Mac to the target. */
  pressureAddsOne: boolean;
}

export interface SchedulingPolicy {
  /** Output tokens a request reserves on a slot (ours: the estimator's expectation, bounded by max_tokens). */
  reservedOutputTokens(maxTokens: number): number;
  /** KV bytes per token for a budget derived from memory (ours: the slot's, else the model's). */
  readonly kvBytesPerToken: number;
  /** Whether a request whose prompt + max_tokens exceed a slot's whole KV budget is refused there as too large. */
  readonly refusesOversized: boolean;
  /** The memory rule for a cold load (ours: free_for_load with padding, else weights + KV + resident ≤ total). */
  fitsForLoad(totalMemoryGb: number, weightsBytes: number): boolean;
  /** The selection among `capable` (the advertisers that passed the shared gates, at least one). */
  pick(
    capable: readonly ProviderView[],
    req: RouteRequest,
    ctx: PolicyPickContext,
    options: Readonly<SchedulerOptions>,
  ): PickResult;
  readonly warmPool: PolicyWarmPool;
}

/** Fills defaults once; the result is frozen. */
export function resolveSchedulerOptions(partial: Partial<SchedulerOptions> = {}): Readonly<SchedulerOptions> {
  const o: SchedulerOptions = { ...defaultSchedulerOptions };
  for (const [k, v] of Object.entries(partial)) if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  return Object.freeze(o);
}

/** Bytes in a GiB: provider memory figures (`memoryGb`, `freeForLoadGb`) are binary gigabytes. */
export const GIB = 1024 ** 3;
