/**
 * Accounts, API keys, provider tokens and prices on Postgres. Secrets are returned once at issue time and
 * stored only as sha256 hex. Key lookups go through an {@link ApiKeyCache} (bounded LRU, negative entries,
 * coalesced misses, stale-if-error); revoking through this process drops the cached entry at once, other
 * processes see the revocation within its TTL.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { sql, type Kysely } from "kysely";
import type { Clock } from "../util/clock.js";
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { AccountStore, AccountSummary, AccountTier, Principal, UsageSummary } from "../accounts/types.js";
import type { Database } from "./schema.js";
import { balanceExpression } from "./lease-sql.js";
import { principalLimitColumns, principalLimits } from "./limit-overrides.js";
import { checkCreditAmount, creditInTransaction, creditWithinBounds } from "./credit.js";
import type { PriceBook } from "./price-book.js";
import { ApiKeyCache, type ApiKeyCacheLimits } from "./api-key-cache.js";
import { apiKeyFormatProblem } from "./api-key-format.js";
import { count } from "../telemetry/metrics.js";

/** sha256 hex of a secret. */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

function secret(prefix: string): string {
  return `${prefix}${randomBytes(24).toString("base64url")}`;
}

export async function getAccountSummary(db: Kysely<Database>, accountId: string): Promise<AccountSummary | undefined> {
  const row = await db.selectFrom("accounts").selectAll().where("id", "=", accountId).executeTakeFirst();
  if (!row) return undefined;
  const { rows } = await sql<{ balance: bigint; reserved: bigint }>`
    SELECT ${balanceExpression(accountId)} AS balance,
      (SELECT coalesce(sum(reserved_micro_usd), 0)::int8 FROM ledger_requests WHERE account_id = ${accountId} AND state = 'reserved') AS reserved
  `.execute(db);
  return {
    id: row.id,
    name: row.name,
    tier: row.tier,
    platformFeeBps: row.platform_fee_bps,
    balanceMicroUsd: rows[0]!.balance,
    reservedMicroUsd: rows[0]!.reserved,
  };
}

/** Usage of an account as consumer (settled requests) and as provider (earnings), optionally since `sinceMs`. */
export async function getUsage(db: Kysely<Database>, accountId: string, sinceMs?: number): Promise<UsageSummary> {
  const since = new Date(sinceMs ?? 0);
  const { rows } = await sql<{ requests: bigint; pt: bigint; ct: bigint; spent: bigint; earned: bigint }>`
    SELECT count(*)::int8 AS requests, coalesce(sum(prompt_tokens), 0)::int8 AS pt, coalesce(sum(completion_tokens), 0)::int8 AS ct,
      coalesce(sum(consumer_debit_micro_usd), 0)::int8 AS spent,
      (SELECT coalesce(sum(amount_micro_usd), 0)::int8 FROM ledger_entries WHERE account_id = ${accountId} AND kind = 'earning' AND created_at >= ${since}) AS earned
    FROM ledger_requests WHERE account_id = ${accountId} AND state = 'settled' AND created_at >= ${since}`.execute(db);
  const r = rows[0]!;
  return {
    requests: Number(r.requests),
    promptTokens: Number(r.pt),
    completionTokens: Number(r.ct),
    spentMicroUsd: r.spent,
    earnedMicroUsd: r.earned,
  };
}

export function createAccountStore(options: {
  db: Kysely<Database>;
  clock: Clock;
  prices: PriceBook;
  keyCache?: Partial<ApiKeyCacheLimits>;
}): AccountStore {
  const { db, clock, prices } = options;
  const cache = new ApiKeyCache({
    clock,
    ...options.keyCache,
    onLookup: (outcome) => count("auth.key_lookups", { outcome }),
  });

  const store: AccountStore = {
    authenticate(apiKey) {
      const hash = hashSecret(apiKey);
      return cache.resolve(hash, async (): Promise<Principal | undefined> => {
        const row = await db
          .selectFrom("api_keys as k")
          .innerJoin("accounts as a", "a.id", "k.account_id")
          .select(["k.id as keyId", "k.account_id as accountId", "a.tier as tier", ...principalLimitColumns("k")])
          .where("k.key_hash", "=", hash)
          .where("k.revoked_at", "is", null)
          .executeTakeFirst();
        return row
          ? { accountId: row.accountId, keyId: row.keyId, tier: row.tier, ...principalLimits(row) }
          : undefined;
      });
    },

    authenticateCached: (apiKey) => cache.fresh(hashSecret(apiKey)),

    async authenticateProvider(token) {
      const row = await db
        .selectFrom("provider_tokens")
        .select(["id", "account_id"])
        .where("token_hash", "=", hashSecret(token))
        .where("revoked_at", "is", null)
        .executeTakeFirst();
      return row ? { accountId: row.account_id, tokenId: row.id } : undefined;
    },

    async createAccount(input) {
      const credit = input.initialCreditMicroUsd ?? 0n;
      if (credit > 0n) checkCreditAmount(credit);
      // One transaction: a refused opening credit leaves no unfunded account behind.
      const create = () =>
        db.transaction().execute(async (trx) => {
          const id = `acct_${randomUUID()}`;
          await trx
            .insertInto("accounts")
            .values({
              id,
              name: input.name,
              tier: input.tier,
              platform_fee_bps: input.platformFeeBps ?? 0,
              create_request_id: input.requestId ?? null,
            })
            .execute();
          if (credit > 0n) await creditInTransaction(trx, id, credit, `initial:${id}`);
          return id;
        });
      let id: string;
      try {
        id = await create();
      } catch (e) {
        // A retry of a CreateAccount that landed (its answer was lost): the account it made, credited once.
        if (input.requestId === undefined || !isUniqueViolation(e)) throw e;
        id = await replayedAccount(db, input.requestId, input, credit);
      }
      return (await getAccountSummary(db, id))!;
    },

    getAccount: (accountId) => getAccountSummary(db, accountId),

    async creditAccount(accountId, amountMicroUsd, reference) {
      // Bounded (money-bounds.ts) and idempotent by reference: a replay of the same credit credits once.
      await creditWithinBounds(db, accountId, amountMicroUsd, reference);
      return (await getAccountSummary(db, accountId))!;
    },

    async issueApiKey(input) {
      const problem = input.value === undefined ? undefined : apiKeyFormatProblem(input.value);
      if (problem) throw new CoordinatorError("invalid_request", `value: ${problem}`, { param: "value" });
      const apiKey = input.value ?? secret("sk-");
      const keyId = `key_${randomUUID()}`;
      await db
        .insertInto("api_keys")
        .values({
          id: keyId,
          account_id: input.accountId,
          key_hash: hashSecret(apiKey),
          name: input.name ?? null,
          spend_cap_micro_usd: input.spendCapMicroUsd ?? null,
        })
        .execute();
      cache.forgetHash(hashSecret(apiKey));
      return { keyId, apiKey };
    },

    async revokeApiKey(keyId) {
      await db
        .updateTable("api_keys")
        .set({ revoked_at: new Date() })
        .where("id", "=", keyId)
        .where("revoked_at", "is", null)
        .execute();
      cache.forgetKey(keyId);
    },

    async issueProviderToken(input) {
      const token = secret("pt-");
      const tokenId = `ptok_${randomUUID()}`;
      await db
        .insertInto("provider_tokens")
        .values({ id: tokenId, account_id: input.accountId, token_hash: hashSecret(token), name: input.name ?? null })
        .execute();
      return { tokenId, token };
    },

    async revokeProviderToken(tokenId) {
      const row = await db
        .updateTable("provider_tokens")
        .set({ revoked_at: new Date() })
        .where("id", "=", tokenId)
        .where("revoked_at", "is", null)
        .returning("account_id")
        .executeTakeFirst();
      return row ? { accountId: row.account_id } : undefined;
    },

    async revokedProviderTokens(tokenIds) {
      if (tokenIds.length === 0) return new Set();
      const live = await db
        .selectFrom("provider_tokens")
        .select("id")
        .where("id", "in", [...tokenIds])
        .where("revoked_at", "is", null)
        .execute();
      const liveIds = new Set(live.map((r) => r.id));
      return new Set(tokenIds.filter((id) => !liveIds.has(id)));
    },

    async setModelPrice(model, inputMicroUsdPerMtok, outputMicroUsdPerMtok) {
      await db
        .insertInto("model_prices")
        .values({
          model,
          input_micro_usd_per_mtok: inputMicroUsdPerMtok,
          output_micro_usd_per_mtok: outputMicroUsdPerMtok,
        })
        .onConflict((oc) =>
          oc.column("model").doUpdateSet({
            input_micro_usd_per_mtok: inputMicroUsdPerMtok,
            output_micro_usd_per_mtok: outputMicroUsdPerMtok,
            updated_at: new Date(),
          }),
        )
        .execute();
      prices.remember(model, { inputMicroUsdPerMtok, outputMicroUsdPerMtok });
    },

    getUsage: (accountId, sinceMs) => getUsage(db, accountId, sinceMs),
  };
  return store;
}

/** PostgreSQL's unique_violation. */
function isUniqueViolation(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === "23505";
}

/**
 * The account an earlier CreateAccount with `requestId` made, when this one asks for the same account (name, tier,
 * fee, opening credit); `already_exists` when the key was used for a different one.
 */
async function replayedAccount(
  db: Kysely<Database>,
  requestId: string,
  input: { name: string; tier: AccountTier; platformFeeBps?: number },
  credit: bigint,
): Promise<string> {
  const prior = await db
    .selectFrom("accounts")
    .select(["id", "name", "tier", "platform_fee_bps"])
    .where("create_request_id", "=", requestId)
    .executeTakeFirst();
  if (!prior) throw new CoordinatorError("internal", `CreateAccount ${requestId}: a duplicate with no account`);
  const entry = await db
    .selectFrom("ledger_entries")
    .select("amount_micro_usd")
    .where("kind", "=", "credit")
    .where("reference", "=", `initial:${prior.id}`)
    .executeTakeFirst();
  const same =
    prior.name === input.name &&
    prior.tier === input.tier &&
    prior.platform_fee_bps === (input.platformFeeBps ?? 0) &&
    (entry?.amount_micro_usd ?? 0n) === credit;
  if (!same)
    throw new CoordinatorError("already_exists", `request_id '${requestId}' was already used for a different account`, {
      param: "request_id",
    });
  return prior.id;
}
