/**
 * Rate-limit numbers per tier, and how overrides and the per-process share combine into bucket limits.
 * Defaults are the Go coordinator's (`ratelimit/config.go`), see reference go-coordinator.md §5.
 */
import type { AccountTier } from "../accounts/types.js";
import type { RateDimension } from "./types.js";
import type { BucketLimits } from "./token-bucket.js";

/**
 * The numbers of one limit set. A rate of 0 disables that dimension (unlimited), as does a concurrency of 0.
 * Requests are per second (as configured in the Go coordinator); tokens are per minute (ITPM/OTPM).
 */
export interface TierLimits {
  /** Sustained requests per second. */
  requestsPerSec: number;
  /** Requests admitted at once after idling. */
  requestsBurst: number;
  /** Input (prompt) tokens per minute. */
  inputTokensPerMin: number;
  inputTokensBurst: number;
  /** Output (completion) tokens per minute. */
  outputTokensPerMin: number;
  outputTokensBurst: number;
  /** Requests in flight at once (admitted, not yet finished); 0 = unlimited. */
  maxConcurrentRequests: number;
}

/**
 * consumer: 20 req/s burst 120, ITPM 5M burst 1M, OTPM 500k burst 64k. service: 10× (burst 600/5M/512k).
 * Neither tier limits concurrency; an operator can, per account or key (`SetLimits`).
 */
export const defaultTierLimits: Readonly<Record<AccountTier, Readonly<TierLimits>>> = Object.freeze({
  consumer: Object.freeze({
    requestsPerSec: 20,
    requestsBurst: 120,
    inputTokensPerMin: 5_000_000,
    inputTokensBurst: 1_000_000,
    outputTokensPerMin: 500_000,
    outputTokensBurst: 64_000,
    maxConcurrentRequests: 0,
  }),
  service: Object.freeze({
    requestsPerSec: 200,
    requestsBurst: 600,
    inputTokensPerMin: 50_000_000,
    inputTokensBurst: 5_000_000,
    outputTokensPerMin: 5_000_000,
    outputTokensBurst: 512_000,
    maxConcurrentRequests: 0,
  }),
});

/** The three dimensions in a fixed order (the order buckets are checked and headers are written). */
export const rateDimensions: readonly RateDimension[] = ["requests", "input_tokens", "output_tokens"];

/** Bucket limits of one dimension, scaled by the process share (see `createRateLimiter`). */
export function dimensionLimits(limits: TierLimits, dimension: RateDimension, processShare: number): BucketLimits {
  switch (dimension) {
    case "requests":
      return { ratePerSec: limits.requestsPerSec * processShare, burst: limits.requestsBurst * processShare };
    case "input_tokens":
      return {
        ratePerSec: (limits.inputTokensPerMin / 60) * processShare,
        burst: limits.inputTokensBurst * processShare,
      };
    case "output_tokens":
      return {
        ratePerSec: (limits.outputTokensPerMin / 60) * processShare,
        burst: limits.outputTokensBurst * processShare,
      };
  }
}

/** Fields of a partial override that are actually set (undefined never erases a default). */
export function definedFields(partial: Partial<TierLimits>): Partial<TierLimits> {
  const out: Partial<TierLimits> = {};
  for (const [k, v] of Object.entries(partial) as Array<[keyof TierLimits, number | undefined]>) {
    if (v !== undefined) {
      if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`rate limit ${k} must be a finite number >= 0`);
      out[k] = v;
    }
  }
  return out;
}

/** Which override fields govern a dimension (a key override creates a key bucket only for these). */
export function dimensionFields(dimension: RateDimension): readonly [keyof TierLimits, keyof TierLimits] {
  switch (dimension) {
    case "requests":
      return ["requestsPerSec", "requestsBurst"];
    case "input_tokens":
      return ["inputTokensPerMin", "inputTokensBurst"];
    case "output_tokens":
      return ["outputTokensPerMin", "outputTokensBurst"];
  }
}
