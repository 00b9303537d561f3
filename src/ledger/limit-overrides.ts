/**
 * Limit overrides on PostgreSQL: `limit_overrides` (one row per account or key with an override) and, for a key's
 * spend cap, `api_keys.spend_cap_micro_usd` (where `IssueApiKey` puts it, so a key has one cap, not two).
 *
 * How they reach the request path: the API-key lookup reads the account's and the key's rate overrides along
 * with the key ({@link principalLimitColumns}), so they ride on the cached principal at no extra query; spend caps
 * are read by the ledger with the account's and key's metadata (`loadAccountMeta`, `loadKeyMeta`).
 */
import { sql, type Kysely, type Transaction } from "kysely";
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { Database, LimitOverridesTable } from "./schema.js";
import type {
  AccountTier,
  LimitOverride,
  LimitStore,
  LimitSubject,
  RateLimitOverride,
  StoredLimits,
} from "../accounts/types.js";

type Db = Kysely<Database> | Transaction<Database>;

/** The rate columns of `limit_overrides` and their domain fields. */
const rateColumns = {
  requests_per_min: "requestsPerMin",
  requests_burst: "requestsBurst",
  input_tokens_per_min: "inputTokensPerMin",
  input_tokens_burst: "inputTokensBurst",
  output_tokens_per_min: "outputTokensPerMin",
  output_tokens_burst: "outputTokensBurst",
  max_concurrent_requests: "maxConcurrentRequests",
} as const satisfies Partial<Record<keyof LimitOverridesTable, keyof RateLimitOverride>>;

type RateColumn = keyof typeof rateColumns;

/** A `limit_overrides` row as JSON (`to_jsonb`): int8 columns arrive as JSON numbers. */
type OverrideJson = Partial<Record<RateColumn, number | null>>;

/**
 * Two select expressions for the API-key lookup (`keyAlias` = the `api_keys` alias): the account's and the key's
 * rate overrides as JSON, null when there is none. Two primary-key probes per key-cache miss.
 */
export function principalLimitColumns(keyAlias: string) {
  return [
    sql<OverrideJson | null>`(SELECT to_jsonb(o) FROM limit_overrides o WHERE o.account_id = ${sql.ref(`${keyAlias}.account_id`)})`.as(
      "accountLimits",
    ),
    sql<OverrideJson | null>`(SELECT to_jsonb(o) FROM limit_overrides o WHERE o.key_id = ${sql.ref(`${keyAlias}.id`)})`.as(
      "keyLimits",
    ),
  ] as const;
}

/** The principal fields for what {@link principalLimitColumns} read (absent when not overridden). */
export function principalLimits(row: { accountLimits: OverrideJson | null; keyLimits: OverrideJson | null }): {
  accountLimits?: RateLimitOverride;
  keyLimits?: RateLimitOverride;
} {
  const accountLimits = rateOverrideFrom(row.accountLimits);
  const keyLimits = rateOverrideFrom(row.keyLimits);
  return { ...(accountLimits ? { accountLimits } : {}), ...(keyLimits ? { keyLimits } : {}) };
}

function rateOverrideFrom(
  row: OverrideJson | Partial<Record<RateColumn, number | bigint | null>> | null | undefined,
): RateLimitOverride | undefined {
  if (!row) return undefined;
  const out: RateLimitOverride = {};
  for (const [column, field] of Object.entries(rateColumns) as [RateColumn, keyof RateLimitOverride][]) {
    const v = row[column];
    if (v !== null && v !== undefined) out[field] = Number(v);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function rateRow(o: LimitOverride): { [C in RateColumn]: number | null } {
  const row = {} as { [C in RateColumn]: number | null };
  for (const [column, field] of Object.entries(rateColumns) as [RateColumn, keyof RateLimitOverride][])
    row[column] = o[field] ?? null;
  return row;
}

function hasRateFields(o: LimitOverride): boolean {
  return Object.values(rateColumns).some((f) => o[f] !== undefined);
}

/** Creates the store. Bounds are the caller's (the admin API checks them); the table refuses only nonsense. */
export function createLimitStore(db: Kysely<Database>): LimitStore {
  return {
    set: (subject, limits) =>
      db.transaction().execute(async (trx) => {
        const owner = await ownerOf(trx, subject);
        if (!owner) throw notFound(subject);
        // An upsert, not delete + insert: two concurrent calls for one subject then serialise on its row.
        const now = new Date();
        if (subject.kind === "key") {
          await trx
            .updateTable("api_keys")
            .set({ spend_cap_micro_usd: limits.spendCapMicroUsd ?? null })
            .where("id", "=", subject.keyId)
            .execute();
          if (!hasRateFields(limits))
            await trx.deleteFrom("limit_overrides").where("key_id", "=", subject.keyId).execute();
          else {
            const row = { ...rateRow(limits), updated_at: now };
            await trx
              .insertInto("limit_overrides")
              .values({ key_id: subject.keyId, ...row })
              .onConflict((oc) => oc.column("key_id").where("key_id", "is not", null).doUpdateSet(row))
              .execute();
          }
        } else if (!hasRateFields(limits) && limits.spendCapMicroUsd === undefined) {
          await trx.deleteFrom("limit_overrides").where("account_id", "=", subject.accountId).execute();
        } else {
          const row = { ...rateRow(limits), spend_cap_micro_usd: limits.spendCapMicroUsd ?? null, updated_at: now };
          await trx
            .insertInto("limit_overrides")
            .values({ account_id: subject.accountId, ...row })
            .onConflict((oc) => oc.column("account_id").where("account_id", "is not", null).doUpdateSet(row))
            .execute();
        }
        return readLimits(trx, subject, owner);
      }),
    async get(subject) {
      const owner = await ownerOf(db, subject);
      return owner && readLimits(db, subject, owner);
    },
  };
}

function notFound(subject: LimitSubject): CoordinatorError {
  return subject.kind === "account"
    ? new CoordinatorError("not_found", `account ${subject.accountId} not found`, { param: "account_id" })
    : new CoordinatorError("not_found", `API key ${subject.keyId} not found`, { param: "key_id" });
}

interface Owner {
  accountId: string;
  tier: AccountTier;
}

/** The account a subject belongs to (accounts and keys are never deleted, only keys revoked). */
async function ownerOf(db: Db, subject: LimitSubject): Promise<Owner | undefined> {
  if (subject.kind === "account") {
    const a = await db
      .selectFrom("accounts")
      .select(["id", "tier"])
      .where("id", "=", subject.accountId)
      .executeTakeFirst();
    return a && { accountId: a.id, tier: a.tier };
  }
  return db
    .selectFrom("api_keys as k")
    .innerJoin("accounts as a", "a.id", "k.account_id")
    .select(["k.account_id as accountId", "a.tier as tier"])
    .where("k.id", "=", subject.keyId)
    .executeTakeFirst();
}

async function readLimits(db: Db, subject: LimitSubject, owner: Owner): Promise<StoredLimits> {
  const account = await db
    .selectFrom("limit_overrides")
    .selectAll()
    .where("account_id", "=", owner.accountId)
    .executeTakeFirst();
  const accountLimits: LimitOverride = { ...rateOverrideFrom(account) };
  if (account?.spend_cap_micro_usd != null) accountLimits.spendCapMicroUsd = account.spend_cap_micro_usd;
  if (subject.kind === "account") return { accountId: owner.accountId, tier: owner.tier, account: accountLimits };
  const keyRow = await db
    .selectFrom("limit_overrides")
    .selectAll()
    .where("key_id", "=", subject.keyId)
    .executeTakeFirst();
  const cap = (
    await db.selectFrom("api_keys").select("spend_cap_micro_usd").where("id", "=", subject.keyId).executeTakeFirst()
  )?.spend_cap_micro_usd;
  const key: LimitOverride = { ...rateOverrideFrom(keyRow) };
  if (cap != null) key.spendCapMicroUsd = cap;
  return { accountId: owner.accountId, tier: owner.tier, account: accountLimits, key };
}
