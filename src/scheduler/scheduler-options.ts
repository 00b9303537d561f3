/**
 * Every tunable of the pure scheduler in one place, with units in the names and the defaults filled in once by
 * {@link resolveSchedulerOptions}. The composition root passes a partial object from config; tests and the
 * routing simulator pass their own.
 */

/** Which admission model the scheduler runs: ours, or the Go coordinator's worst case (for comparison only). */
export type AdmissionPolicy = "kv-aware" | "worst-case";

export interface SchedulerOptions {
  /** Admission model. Default "kv-aware". "worst-case" reproduces the Go coordinator (see worst-case-policy.ts). */
  policy: AdmissionPolicy;
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
  /** Concurrency law coefficient k in rate(n) = solo / (1 + k(n-1)). Default 0.27 (measured on M-series). */
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
  policy: "kv-aware",
  toolsVersionFloor: "0.6.3",
  toolsFloorWaivedByNormalization: false,
  outputMarginFactor: 1.0,
  overrunMarginTokens: 256,
  minOutputTokens: 16,
  concurrencyLawK: 0.27,
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
  memoryPressurePenaltyMs: 4000,
  thermalFairPenaltyMs: 2000,
  thermalSeriousPenaltyMs: 8000,
  prefillToDecodeRatio: 12,
  candidateSample: 24,
  defaultRetryAfterMs: 5000,
} satisfies SchedulerOptions);

/** Fills defaults once; the result is frozen. */
export function resolveSchedulerOptions(partial: Partial<SchedulerOptions> = {}): Readonly<SchedulerOptions> {
  const o: SchedulerOptions = { ...defaultSchedulerOptions };
  for (const [k, v] of Object.entries(partial)) if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  return Object.freeze(o);
}

/**
 * The Go coordinator's flat KV cost per token, bytes (scheduler.go:49): the worst-case policy's admission. Here,
 * with the options that select that policy, so admission reads it without importing the baseline (no cycle).
 */
export const WORST_CASE_KV_BYTES_PER_TOKEN = 400_000;

/** Bytes in a GiB: provider memory figures (`memoryGb`, `freeForLoadGb`) are binary gigabytes. */
export const GIB = 1024 ** 3;
