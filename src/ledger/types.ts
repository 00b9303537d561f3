/**
 * The money and identity boundary. Implementations talk to PostgreSQL; callers see only these interfaces.
 * All money is integer micro-USD as bigint (1 USD = 1,000,000 µUSD).
 */
import type { Usage } from "../inference/types.js";

export type AccountTier = "consumer" | "service";

/** Who is calling: resolved from an API key. */
export interface Principal {
  accountId: string;
  keyId: string;
  tier: AccountTier;
}

export interface ReserveInput {
  requestId: string;
  accountId: string;
  keyId: string;
  model: string;
  /** Upper bound on prompt tokens (e.g. bytes of the prompt). */
  promptTokensUpperBound: number;
  /** The bounded output budget. */
  maxOutputTokens: number;
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

export interface AccountSummary {
  id: string;
  name: string;
  tier: AccountTier;
  balanceMicroUsd: bigint;
  reservedMicroUsd: bigint;
  platformFeeBps: number;
}

export interface UsageSummary {
  requests: number;
  promptTokens: number;
  completionTokens: number;
  spentMicroUsd: bigint;
  earnedMicroUsd: bigint;
}

/** Accounts, keys, provider tokens and prices. */
export interface AccountStore {
  /**
   * Resolves a consumer API key (cached; revocation takes effect within the cache TTL). While the database
   * cannot be queried, a key verified recently enough is still resolved from the cache; others reject.
   */
  authenticate(apiKey: string): Promise<Principal | undefined>;
  /** The principal of a key the cache can answer for right now without a query, else undefined. */
  authenticateCached(apiKey: string): Principal | undefined;
  /** Resolves a provider token to the owning account. */
  authenticateProvider(token: string): Promise<{ accountId: string; tokenId: string } | undefined>;
  createAccount(input: { name: string; tier: AccountTier; initialCreditMicroUsd?: bigint; platformFeeBps?: number }): Promise<AccountSummary>;
  getAccount(accountId: string): Promise<AccountSummary | undefined>;
  /** Idempotent by reference. */
  creditAccount(accountId: string, amountMicroUsd: bigint, reference: string): Promise<AccountSummary>;
  issueApiKey(input: { accountId: string; name?: string; spendCapMicroUsd?: bigint; value?: string }): Promise<{ keyId: string; apiKey: string }>;
  revokeApiKey(keyId: string): Promise<void>;
  issueProviderToken(input: { accountId: string; name?: string }): Promise<{ tokenId: string; token: string }>;
  /** Revokes a provider token; resolves to its owner account, or undefined if there is no live token by that id. */
  revokeProviderToken(tokenId: string): Promise<{ accountId: string } | undefined>;
  /** The ids among `tokenIds` that are revoked or gone (live sessions holding them must end). */
  revokedProviderTokens(tokenIds: readonly string[]): Promise<Set<string>>;
  setModelPrice(model: string, inputMicroUsdPerMtok: bigint, outputMicroUsdPerMtok: bigint): Promise<void>;
  getUsage(accountId: string, sinceMs?: number): Promise<UsageSummary>;
}
