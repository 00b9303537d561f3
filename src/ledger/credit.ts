/**
 * Crediting an account: the only way money enters the ledger, so the place where the money bounds
 * (`money-bounds.ts`) are enforced. Idempotent by reference.
 */
import { sql, type Kysely, type Transaction } from "kysely";
import { CoordinatorError } from "../errors/coordinator-error.js";
import { MAX_BALANCE_MICRO_USD, MAX_CREDIT_MICRO_USD, MAX_TOTAL_CREDIT_MICRO_USD } from "./money-bounds.js";
import type { Database } from "./schema.js";

/** Advisory lock serialising credits (distinct from the roll-up's 727_001). */
const CREDIT_LOCK_KEY = 727_002;

/**
 * Writes a `credit` entry of `amountMicroUsd` (1 to {@link MAX_CREDIT_MICRO_USD}) to the account, unless the
 * reference was used before: the same account and amount is a replay and credits nothing (success), anything else
 * is `already_exists`. Refused with `invalid_request` when the account's balance would pass
 * {@link MAX_BALANCE_MICRO_USD} or all credits ever made would pass {@link MAX_TOTAL_CREDIT_MICRO_USD};
 * `not_found` for an unknown account.
 *
 * Credits are operator actions (rare), so they run one at a time under an advisory lock: two concurrent credits
 * can then never pass a ceiling together.
 */
export async function creditWithinBounds(
  db: Kysely<Database>,
  accountId: string,
  amountMicroUsd: bigint,
  reference: string,
): Promise<void> {
  checkCreditAmount(amountMicroUsd);
  await db.transaction().execute((trx) => creditInTransaction(trx, accountId, amountMicroUsd, reference));
}

/**
 * {@link creditWithinBounds}'s checks and entry inside the caller's transaction (CreateAccount creates and funds an
 * account in one). The amount is validated by the caller.
 */
export async function creditInTransaction(
  trx: Transaction<Database>,
  accountId: string,
  amountMicroUsd: bigint,
  reference: string,
): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${CREDIT_LOCK_KEY})`.execute(trx);
  const exists = await trx.selectFrom("accounts").select("id").where("id", "=", accountId).executeTakeFirst();
  if (!exists) throw new CoordinatorError("not_found", `unknown account ${accountId}`, { param: "account_id" });
  const prior = await trx
    .selectFrom("ledger_entries")
    .select(["account_id", "amount_micro_usd"])
    .where("kind", "=", "credit")
    .where("reference", "=", reference)
    .executeTakeFirst();
  if (prior) {
    if (prior.account_id === accountId && prior.amount_micro_usd === amountMicroUsd) return;
    throw new CoordinatorError("already_exists", `reference '${reference}' was already used for a different credit`, {
      param: "reference",
    });
  }
  // numeric, not int8: a ledger that already holds an out-of-range sum (written before these bounds) is refused
  // with a message instead of failing on the cast.
  const { rows } = await sql<{ balance: string; total: string }>`
    SELECT (coalesce((SELECT balance_micro_usd FROM balance_snapshots WHERE account_id = ${accountId}), 0)::numeric
        + coalesce((SELECT sum(amount_micro_usd) FROM ledger_entries WHERE account_id = ${accountId}
            AND id > coalesce((SELECT upto_entry_id FROM balance_snapshots WHERE account_id = ${accountId}), 0)), 0))::text AS balance,
      (SELECT coalesce(sum(amount_micro_usd), 0) FROM ledger_entries WHERE kind = 'credit')::text AS total`.execute(
    trx,
  );
  const balance = BigInt(rows[0]!.balance);
  const total = BigInt(rows[0]!.total);
  if (balance + amountMicroUsd > MAX_BALANCE_MICRO_USD) {
    throw new CoordinatorError(
      "invalid_request",
      `this credit would take the balance to ${balance + amountMicroUsd} µUSD, above the ceiling of ${MAX_BALANCE_MICRO_USD}`,
      {
        param: "amount_micro_usd",
      },
    );
  }
  if (total + amountMicroUsd > MAX_TOTAL_CREDIT_MICRO_USD) {
    throw new CoordinatorError(
      "invalid_request",
      `this credit would take all credits ever made past ${MAX_TOTAL_CREDIT_MICRO_USD} µUSD`,
      { param: "amount_micro_usd" },
    );
  }
  await trx
    .insertInto("ledger_entries")
    .values({ account_id: accountId, kind: "credit", amount_micro_usd: amountMicroUsd, request_id: null, reference })
    .execute();
}

/** Refuses a credit outside 1 to {@link MAX_CREDIT_MICRO_USD} µUSD. */
export function checkCreditAmount(amountMicroUsd: bigint): void {
  if (amountMicroUsd <= 0n || amountMicroUsd > MAX_CREDIT_MICRO_USD) {
    throw new CoordinatorError(
      "invalid_request",
      `a credit must be from 1 to ${MAX_CREDIT_MICRO_USD} µUSD, got ${amountMicroUsd}`,
      { param: "amount_micro_usd" },
    );
  }
}
