/**
 * The few statements that run per lease (not per request): drawing a credit lease, holder registration and
 * heartbeat, and the balance projection. Kept apart from the in-memory decision code so the SQL that touches
 * shared rows is all in one place.
 */
import { sql, type Kysely, type Transaction } from "kysely";
import type { AccountTier } from "../accounts/types.js";
import type { Database } from "./schema.js";

type Db = Kysely<Database> | Transaction<Database>;

/**
 * The balance projection for `accountId`: the rolled-up snapshot plus every entry after it. Equal to the sum of
 * all the account's entries (checked by `verifyLedger`).
 */
export function balanceExpression(accountId: string) {
  return sql<bigint>`(
    coalesce((SELECT balance_micro_usd FROM balance_snapshots WHERE account_id = ${accountId}), 0)
    + coalesce((SELECT sum(amount_micro_usd) FROM ledger_entries
        WHERE account_id = ${accountId}
          AND id > coalesce((SELECT upto_entry_id FROM balance_snapshots WHERE account_id = ${accountId}), 0)), 0)
  )::int8`;
}

/**
 * Money held by open leases: each lease holds its amount minus the debits already durably settled against it.
 * A debit therefore lowers the balance and the hold by the same amount, so concurrent settles by other holders
 * never change what is available to lease.
 */
function holdsExpression(accountId: string) {
  return sql<bigint>`(
    SELECT coalesce(sum(greatest(0, l.amount_micro_usd - coalesce(d.spent, 0))), 0)::int8
    FROM credit_leases l
    LEFT JOIN LATERAL (
      SELECT sum(consumer_debit_micro_usd) AS spent FROM ledger_requests r
      WHERE r.lease_id = l.id AND r.state = 'settled'
    ) d ON true
    WHERE l.account_id = ${accountId} AND l.closed_at IS NULL
  )`;
}

export type DrawLeaseResult =
  | { kind: "granted"; leaseId: string; amountMicroUsd: bigint }
  | { kind: "insufficient"; availableMicroUsd: bigint }
  | { kind: "no_account" };

/**
 * Draws a lease of up to `desiredMicroUsd` (at least `minimumMicroUsd`) from the account's unleased balance.
 * Lease draws for one account are serialised by a row lock on `accounts`, but there is one draw per lease
 * (thousands of requests), never one per request.
 */
export async function drawLease(
  db: Kysely<Database>,
  input: {
    leaseId: string;
    accountId: string;
    holderId: string;
    desiredMicroUsd: bigint;
    minimumMicroUsd: bigint;
    overdraftMicroUsd: bigint;
  },
): Promise<DrawLeaseResult> {
  return db.transaction().execute(async (trx) => {
    const locked = await sql`SELECT 1 FROM accounts WHERE id = ${input.accountId} FOR UPDATE`.execute(trx);
    if (locked.rows.length === 0) return { kind: "no_account" as const };
    // One statement, one snapshot, taken after the lock: sees every lease committed by earlier draws.
    const { rows } = await sql<{ available: bigint }>`
      SELECT (${balanceExpression(input.accountId)} - ${holdsExpression(input.accountId)} + ${input.overdraftMicroUsd.toString()}::int8)::int8 AS available
    `.execute(trx);
    const available = rows[0]!.available;
    if (available < input.minimumMicroUsd || available <= 0n)
      return { kind: "insufficient" as const, availableMicroUsd: available };
    const amount = input.desiredMicroUsd < available ? input.desiredMicroUsd : available;
    await trx
      .insertInto("credit_leases")
      .values({ id: input.leaseId, account_id: input.accountId, holder_id: input.holderId, amount_micro_usd: amount })
      .execute();
    return { kind: "granted" as const, leaseId: input.leaseId, amountMicroUsd: amount };
  });
}

export async function registerHolder(db: Db, holderId: string): Promise<void> {
  await db
    .insertInto("ledger_holders")
    .values({ id: holderId, heartbeat_at: sql<Date>`now()` as never })
    .execute();
}

/** Returns false when this holder was closed (by recovery elsewhere, after a long outage). */
export async function heartbeat(db: Db, holderId: string): Promise<boolean> {
  const r =
    await sql`UPDATE ledger_holders SET heartbeat_at = now() WHERE id = ${holderId} AND closed_at IS NULL`.execute(db);
  return Number(r.numAffectedRows ?? 0n) > 0;
}

export interface AccountMeta {
  tier: AccountTier;
  platformFeeBps: number;
  /** The account's spend cap (`SetLimits`), or null when it has none. */
  spendCapMicroUsd: bigint | null;
  /** Durably settled spend of the account (only computed when it has a cap). */
  spentMicroUsd: bigint;
}

export async function loadAccountMeta(db: Db, accountId: string): Promise<AccountMeta | undefined> {
  const row = await db
    .selectFrom("accounts as a")
    .leftJoin("limit_overrides as o", "o.account_id", "a.id")
    .select(["a.tier", "a.platform_fee_bps", "o.spend_cap_micro_usd"])
    .where("a.id", "=", accountId)
    .executeTakeFirst();
  if (!row) return undefined;
  const cap = row.spend_cap_micro_usd ?? null;
  const meta = { tier: row.tier, platformFeeBps: row.platform_fee_bps, spendCapMicroUsd: cap, spentMicroUsd: 0n };
  if (cap === null) return meta;
  const { rows } = await sql<{ spent: bigint }>`
    SELECT coalesce(sum(consumer_debit_micro_usd), 0)::int8 AS spent FROM ledger_requests WHERE account_id = ${accountId} AND state = 'settled'
  `.execute(db);
  return { ...meta, spentMicroUsd: rows[0]!.spent };
}

export interface KeyMeta {
  spendCapMicroUsd: bigint | null;
  /** Durably settled spend of this key (only computed when it has a cap). */
  spentMicroUsd: bigint;
}

export async function loadKeyMeta(db: Db, keyId: string): Promise<KeyMeta> {
  const row = await db.selectFrom("api_keys").select("spend_cap_micro_usd").where("id", "=", keyId).executeTakeFirst();
  const cap = row?.spend_cap_micro_usd ?? null;
  if (cap === null) return { spendCapMicroUsd: null, spentMicroUsd: 0n };
  const { rows } = await sql<{ spent: bigint }>`
    SELECT coalesce(sum(consumer_debit_micro_usd), 0)::int8 AS spent FROM ledger_requests WHERE key_id = ${keyId} AND state = 'settled'
  `.execute(db);
  return { spendCapMicroUsd: cap, spentMicroUsd: rows[0]!.spent };
}
