/**
 * Per-account (and per-key) admission by token buckets: requests, input tokens and output tokens per minute.
 */
import type { AccountTier, RateLimitOverride } from "../accounts/types.js";

export type RateDimension = "requests" | "input_tokens" | "output_tokens";

/** What a refusal names: a bucket dimension, or the concurrency limit. */
export type AdmitDimension = RateDimension | "concurrent_requests";

/** Whose limits apply: the principal's account, key and tier, and the operator's overrides it carries. */
export interface RateLimitedCaller {
  accountId: string;
  keyId: string;
  tier: AccountTier;
  /** `SetLimits` on the account, as the principal carries it (absent = tier defaults). */
  accountLimits?: RateLimitOverride | undefined;
  /** `SetLimits` on the key, as the principal carries it (absent = the account's limits). */
  keyLimits?: RateLimitOverride | undefined;
}

export interface AdmitInput extends RateLimitedCaller {
  model: string;
  /** Prompt estimate in tokens. */
  inputTokens: number;
  /** The request's bounded max_tokens. */
  maxOutputTokens: number;
}

/** What to give back to {@link RateLimiter.reconcile} when the request finishes. */
export interface RateTicket {
  readonly accountId: string;
  readonly keyId: string;
  readonly model: string;
  readonly chargedInputTokens: number;
  readonly chargedOutputTokens: number;
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

export type AdmitResult =
  | { ok: true; ticket: RateTicket; headers: Record<string, string> }
  | { ok: false; dimension: AdmitDimension; retryAfterMs: number; message: string; headers: Record<string, string> };

export interface RateLimiter {
  /** Checks and charges every bucket atomically (all or nothing). Synchronous: it spends what is in memory. */
  admit(input: AdmitInput, nowMs: number): AdmitResult;
  /**
   * {@link admit}, and with a shared bucket store (`RATE_LIMIT_STORE=postgres`), when a bucket refused: one round
   * trip to fetch more for the short buckets, then one more try. Same answer as `admit` with the memory store.
   */
  admitWaiting(input: AdmitInput, now: () => number): Promise<AdmitResult>;
  /** Returns unused tokens / charges over-runs once actual usage is known. Idempotent per ticket. */
  /**
   * `representative: false` (failures, client aborts) settles the buckets without teaching the output
   * estimator a truncated length.
   */
  reconcile(
    ticket: RateTicket,
    actual: { inputTokens: number; outputTokens: number; representative?: boolean },
    nowMs: number,
  ): void;
  /** The `x-ratelimit-*` headers of the buckets as they stand, charging nothing (for answers refused before `admit`). */
  headers(who: RateLimitedCaller, nowMs: number): Record<string, string>;
}
