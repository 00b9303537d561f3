/**
 * The money boundary. Implementations talk to PostgreSQL; callers see only these interfaces.
 * All money is integer micro-USD as bigint (1 USD = 1,000,000 µUSD).
 */
import type { Usage } from "../inference/types.js";

export interface ReserveInput {
  requestId: string;
  accountId: string;
  keyId: string;
  model: string;
  /** Upper bound on prompt tokens (e.g. bytes of the prompt). */
  promptTokensUpperBound: number;
  /** The bounded output budget. */
  maxOutputTokens: number;
  /**
   * Served by the caller's own machines (X-Route: self): recorded like any request (provider, tokens) but priced
   * at zero, so it reserves and settles nothing. It still needs a credit lease to hang its row on.
   */
  selfServed?: boolean;
}

export type ReserveResult =
  | { ok: true; reservedMicroUsd: bigint }
  | { ok: false; reason: "insufficient_balance" | "spend_cap"; message: string }
  /** The ledger could not decide right now (database down and no lease left): shed with 429 + Retry-After. */
  | { ok: false; reason: "unavailable"; message: string; retryAfterMs: number };

export interface SettleInput {
  requestId: string;
  providerId: string;
  providerAccountId: string;
  model: string;
  usage: Usage;
}

export interface Settlement {
  requestId: string;
  consumerDebitMicroUsd: bigint;
  providerCreditMicroUsd: bigint;
  platformFeeMicroUsd: bigint;
  refundedMicroUsd: bigint;
}

/**
 * Reserve → (recordDispatch) → settle | release, each exactly once per request id, however often called and in
 * whatever order duplicates arrive.
 *
 * A reservation is held in memory until the request reaches a provider ({@link Ledger.recordDispatch}); only
 * then is it written. A request refused before dispatch (queue full, no capacity, cancelled while queued) is
 * released without ever writing a row, so refusals cost nothing durable (issue 13).
 */
export interface Ledger {
  reserve(input: ReserveInput): Promise<ReserveResult>;
  /**
   * The request was sent to a provider: its reservation becomes a durable `ledger_requests` row (queued for the
   * next group commit; this does not wait for it). Call it when the first attempt is sent. Idempotent; a no-op
   * for an unknown or already resolved request. `settle` records an unrecorded reservation itself.
   */
  recordDispatch(requestId: string): void;
  /** Charge the exact cost of `usage` and refund the rest of the reservation. */
  settle(input: SettleInput): Promise<Settlement>;
  /**
   * Refund the whole reservation (failure, pre-content failover, client gone before content). A reservation
   * that was never recorded is released in memory only: no row is written.
   */
  release(requestId: string, reason: string): Promise<void>;
}
