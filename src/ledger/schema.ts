/**
 * The only Kysely `Database` interface: one table type per table, written by hand to match
 * `migrations/`. int8 columns are `bigint` because `openDatabase` installs a BigInt parser for
 * OID 20. Table types stay inside `src/ledger/`; other code sees the domain types in `types.ts`.
 */
import type { ColumnType, Generated, Selectable } from "kysely";

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;

export interface AccountsTable {
  id: string;
  name: string;
  tier: "consumer" | "service";
  platform_fee_bps: Generated<number>;
  created_at: CreatedAt;
  /** The operator's CreateAccount idempotency key, when it sent one (unique). */
  create_request_id: ColumnType<string | null, string | null | undefined, never>;
}

export interface ApiKeysTable {
  id: string;
  account_id: string;
  /** sha256(secret) in hex; the secret itself is never stored. */
  key_hash: string;
  name: string | null;
  spend_cap_micro_usd: bigint | null;
  created_at: CreatedAt;
  revoked_at: Timestamp | null;
}

export interface ProviderTokensTable {
  id: string;
  account_id: string;
  /** sha256(token) in hex. */
  token_hash: string;
  name: string | null;
  created_at: CreatedAt;
  revoked_at: Timestamp | null;
}

export interface ModelPricesTable {
  model: string;
  input_micro_usd_per_mtok: bigint;
  output_micro_usd_per_mtok: bigint;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** One row per running ledger process; leases and reservations name their holder. */
export interface LedgerHoldersTable {
  id: string;
  started_at: CreatedAt;
  heartbeat_at: Timestamp;
  /** Set by a clean close or by recovery after the holder died. */
  closed_at: Timestamp | null;
}

/** A hold on part of an account's balance, spent from memory by one holder. */
export interface CreditLeasesTable {
  id: string;
  account_id: string;
  holder_id: string;
  amount_micro_usd: bigint;
  created_at: CreatedAt;
  closed_at: Timestamp | null;
}

export type RequestState = "reserved" | "settled" | "released";

/** One row per request: its reservation and how it was resolved (exactly once: `state` moves off `reserved` once). */
export interface LedgerRequestsTable {
  request_id: string;
  account_id: string;
  key_id: string;
  lease_id: string;
  holder_id: string;
  model: string;
  reserved_micro_usd: bigint;
  state: RequestState;
  consumer_debit_micro_usd: Generated<bigint>;
  provider_credit_micro_usd: Generated<bigint>;
  platform_fee_micro_usd: Generated<bigint>;
  provider_account_id: string | null;
  provider_id: string | null;
  /** int8 since migration 0002: no reported figure can overflow the column. */
  prompt_tokens: Generated<bigint>;
  completion_tokens: Generated<bigint>;
  reasoning_tokens: Generated<bigint>;
  release_reason: string | null;
  created_at: CreatedAt;
  resolved_at: Timestamp | null;
}

export type EntryKind = "credit" | "debit" | "earning" | "platform_fee";

/** The append-only money ledger: an account's balance is the sum of its entries' signed amounts. */
export interface LedgerEntriesTable {
  id: Generated<bigint>;
  account_id: string;
  kind: EntryKind;
  /** Signed effect on the account's balance. */
  amount_micro_usd: bigint;
  request_id: string | null;
  reference: string | null;
  created_at: CreatedAt;
}

/** Balance projection rolled up off the request path: balance = snapshot + entries with id > upto_entry_id. */
export interface BalanceSnapshotsTable {
  account_id: string;
  balance_micro_usd: bigint;
  upto_entry_id: bigint;
  updated_at: Timestamp;
}

/**
 * A write the entry writer could not apply because PostgreSQL refused it deterministically (a data or
 * constraint error), kept with its error for an operator instead of blocking every write behind it.
 */
export interface LedgerQuarantineTable {
  id: Generated<bigint>;
  op_kind: string;
  request_id: string | null;
  /** The operation as JSON text. */
  payload: string;
  error: string;
  sqlstate: string | null;
  created_at: CreatedAt;
  resolved_at: Timestamp | null;
}

/** A provider machine's identity: serial → owner account, Ed25519 key, and the opaque id consumers see. */
export interface ProviderIdentitiesTable {
  serial: string;
  provider_id: string;
  account_id: string;
  public_key: Uint8Array;
  token_id: string | null;
  registered_at: CreatedAt;
  last_seen_at: Timestamp | null;
  fenced_at: Timestamp | null;
  fence_reason: string | null;
}

/** An int8 token rate: read as bigint (the OID 20 parser), written from a number (every bound is far below 2^53). */
type TokenRate = ColumnType<bigint | null, number | null, number | null>;

/**
 * Limits an operator set on one account or one key (`SetLimits`), overriding the tier defaults; exactly one of
 * `account_id` and `key_id` is set, and a null limit is not overridden. A key's spend cap lives in `api_keys`.
 */
export interface LimitOverridesTable {
  account_id: string | null;
  key_id: string | null;
  requests_per_min: number | null;
  requests_burst: number | null;
  input_tokens_per_min: TokenRate;
  input_tokens_burst: TokenRate;
  output_tokens_per_min: TokenRate;
  output_tokens_burst: TokenRate;
  max_concurrent_requests: number | null;
  /** Accounts only: the account's lifetime settled spend may not exceed it. */
  spend_cap_micro_usd: bigint | null;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** A public model name → the build it routes to and, during a rollout, the previous build (`SetModelAlias`). */
export interface ModelAliasesTable {
  alias: string;
  build: string;
  /** Never equal to `build` (a CHECK constraint). */
  previous_build: string | null;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** A rate-limit bucket shared by every process (`RATE_LIMIT_STORE=postgres`); see migration 0005. */
export interface LimitBucketsTable {
  key: string;
  rate_per_sec: number;
  burst: number;
  level: number;
  outstanding: number;
  updated_ms: bigint;
}

/** Tokens one process holds from one shared bucket. */
export interface LimitLeasesTable {
  key: string;
  holder_id: string;
  held: number;
  updated_ms: bigint;
}

export interface Database {
  accounts: AccountsTable;
  api_keys: ApiKeysTable;
  provider_tokens: ProviderTokensTable;
  model_prices: ModelPricesTable;
  ledger_holders: LedgerHoldersTable;
  credit_leases: CreditLeasesTable;
  ledger_requests: LedgerRequestsTable;
  ledger_entries: LedgerEntriesTable;
  balance_snapshots: BalanceSnapshotsTable;
  ledger_quarantine: LedgerQuarantineTable;
  provider_identities: ProviderIdentitiesTable;
  limit_overrides: LimitOverridesTable;
  model_aliases: ModelAliasesTable;
  limit_buckets: LimitBucketsTable;
  limit_leases: LimitLeasesTable;
}

export type AccountRow = Selectable<AccountsTable>;
export type LedgerRequestRow = Selectable<LedgerRequestsTable>;

/** The account that receives platform fees. Created by the first migration. */
export const PLATFORM_ACCOUNT_ID = "platform";
