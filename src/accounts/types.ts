/**
 * Who calls and what an operator set on them: accounts, API-key principals and their limit overrides. The ledger
 * stores them; authentication, the rate limiter and the admin service read them through these interfaces.
 * All money is integer micro-USD as bigint (1 USD = 1,000,000 µUSD).
 */

export type AccountTier = "consumer" | "service";

/** Who is calling: resolved from an API key. */
export interface Principal {
  accountId: string;
  keyId: string;
  tier: AccountTier;
  /** Rate and concurrency limits an operator set on the account (`SetLimits`), as of the key lookup. */
  accountLimits?: RateLimitOverride;
  /** Rate and concurrency limits an operator set on this key, as of the key lookup. */
  keyLimits?: RateLimitOverride;
}

/**
 * Rate and concurrency limits an operator set on one account or key, overriding the tier defaults field by field
 * (an absent field follows the tier, or for a key its account). Requests and tokens are per minute, bursts in
 * requests or tokens; see `src/ratelimit/limit-override.ts` for how they become buckets and for their bounds.
 */
export interface RateLimitOverride {
  requestsPerMin?: number;
  requestsBurst?: number;
  inputTokensPerMin?: number;
  inputTokensBurst?: number;
  outputTokensPerMin?: number;
  outputTokensBurst?: number;
  maxConcurrentRequests?: number;
}

/** Everything `SetLimits` can set on one account or key: the rate limits plus a lifetime spend cap. */
export interface LimitOverride extends RateLimitOverride {
  /** Settled spend (µUSD) the key or account may never exceed; a request that could pass it gets 402. */
  spendCapMicroUsd?: bigint;
}

/** Whose limits: one account (and every key of it) or one API key. */
export type LimitSubject = { kind: "account"; accountId: string } | { kind: "key"; keyId: string };

/** The limits stored for a subject, with what a caller needs to compute the effective ones. */
export interface StoredLimits {
  accountId: string;
  tier: AccountTier;
  /** The account's override (empty when none). */
  account: LimitOverride;
  /** For a key subject: the key's override, its spend cap included (empty when none). */
  key?: LimitOverride;
}

/** Limit overrides on PostgreSQL (`limit_overrides`, and `api_keys.spend_cap_micro_usd` for a key's cap). */
export interface LimitStore {
  /**
   * Replaces the subject's overrides with `limits` (an empty object clears them, a key's spend cap included).
   * Rejects with `not_found` when the account or key does not exist.
   */
  set(subject: LimitSubject, limits: LimitOverride): Promise<StoredLimits>;
  /** The subject's overrides and its account's; undefined when the account or key does not exist. */
  get(subject: LimitSubject): Promise<StoredLimits | undefined>;
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
  /**
   * Creates (and funds, in the same transaction) an account. With `requestId`, a retry of a call that landed
   * returns the account it made, credited once; the same key for a different account is `already_exists`.
   */
  createAccount(input: {
    name: string;
    tier: AccountTier;
    initialCreditMicroUsd?: bigint;
    platformFeeBps?: number;
    requestId?: string;
  }): Promise<AccountSummary>;
  getAccount(accountId: string): Promise<AccountSummary | undefined>;
  /** Idempotent by reference. */
  creditAccount(accountId: string, amountMicroUsd: bigint, reference: string): Promise<AccountSummary>;
  issueApiKey(input: {
    accountId: string;
    name?: string;
    spendCapMicroUsd?: bigint;
    value?: string;
  }): Promise<{ keyId: string; apiKey: string }>;
  revokeApiKey(keyId: string): Promise<void>;
  issueProviderToken(input: { accountId: string; name?: string }): Promise<{ tokenId: string; token: string }>;
  /** Revokes a provider token; resolves to its owner account, or undefined if there is no live token by that id. */
  revokeProviderToken(tokenId: string): Promise<{ accountId: string } | undefined>;
  /** The ids among `tokenIds` that are revoked or gone (live sessions holding them must end). */
  revokedProviderTokens(tokenIds: readonly string[]): Promise<Set<string>>;
  setModelPrice(model: string, inputMicroUsdPerMtok: bigint, outputMicroUsdPerMtok: bigint): Promise<void>;
  getUsage(accountId: string, sinceMs?: number): Promise<UsageSummary>;
}
