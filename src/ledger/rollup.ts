/**
 * Rolls the balance projection forward off the request path: per account, `balance_snapshots` absorbs the
 * entries up to a safe id, so balance reads and lease draws sum only a short tail of entries.
 *
 * "Safe": ids come from a sequence and can commit out of order, so only entries older than `lagMs` are absorbed
 * (every ledger transaction is far shorter: statement and idle-in-transaction timeouts). `verifyLedger` checks
 * snapshot + tail = sum of all entries, which would expose a missed entry. One process rolls up at a time
 * (transaction-scoped advisory lock).
 *
 * One bad account never stops the others (issue 13: two credits of INT64_MAX made one account's sum overflow,
 * and the single roll-up statement then failed for every account, every minute). Sums are taken in `numeric`;
 * an account whose new balance would not fit int8 is left as it is and reported, and should the statement fail
 * for any other reason about the data, each account is rolled up on its own, in its own savepoint.
 */
import { sql, type Kysely, type Transaction } from "kysely";
import type { Database } from "./schema.js";

const ROLLUP_LOCK_KEY = 727_001;

export interface RollupOptions {
  /** Only entries at least this old are absorbed, ms. Default 30_000. */
  lagMs?: number;
  /** An account the roll-up had to leave behind, and why (its balance cannot be read until an operator acts). */
  onAccountFailed?: (accountId: string, reason: string) => void;
}

/** Returns the number of accounts whose snapshot moved (0 when another process holds the roll-up lock). */
export async function rollupBalances(db: Kysely<Database>, options: RollupOptions = {}): Promise<number> {
  const lagMs = options.lagMs ?? 30_000;
  const onFailed = options.onAccountFailed ?? (() => {});
  return db.transaction().execute(async (trx) => {
    const lock = await sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(${ROLLUP_LOCK_KEY}) AS ok`.execute(trx);
    if (!lock.rows[0]!.ok) return 0;
    const { rows } = await sql<{ id: bigint }>`
      SELECT coalesce(max(id), 0)::int8 AS id FROM ledger_entries WHERE created_at <= now() - make_interval(secs => ${lagMs / 1000})`.execute(
      trx,
    );
    const upto = rows[0]!.id;
    const report = (skipped: readonly Skipped[]) => {
      for (const r of skipped) onFailed(r.account_id, `balance ${r.balance} µUSD is outside the int8 range`);
    };
    try {
      const all = await inSavepoint(trx, "rollup_all", () => rollupStatement(trx, upto, undefined));
      report(all.skipped);
      return all.moved;
    } catch (e) {
      if (!isDataError(e)) throw e;
    }
    let moved = 0;
    for (const accountId of await pendingAccounts(trx, upto)) {
      try {
        const one = await inSavepoint(trx, "rollup_one", () => rollupStatement(trx, upto, accountId));
        report(one.skipped);
        moved += one.moved;
      } catch (e) {
        if (!isDataError(e)) throw e;
        onFailed(accountId, String((e as Error).message ?? e));
      }
    }
    return moved;
  });
}

type Trx = Transaction<Database>;

interface Skipped {
  account_id: string;
  balance: string;
}

/**
 * The roll-up for every account (or one), in one pass: sums in numeric, writes the snapshots that fit int8 and
 * returns the accounts that do not (left as they are).
 */
async function rollupStatement(
  trx: Trx,
  upto: bigint,
  accountId: string | undefined,
): Promise<{ moved: number; skipped: Skipped[] }> {
  const only = accountId === undefined ? sql`` : sql`AND e.account_id = ${accountId}`;
  const { rows } = await sql<{ moved: bigint; skipped: Skipped[] | null }>`
    WITH x AS (
      SELECT e.account_id, coalesce(max(s.balance_micro_usd), 0)::numeric + sum(e.amount_micro_usd) AS balance
      FROM ledger_entries e LEFT JOIN balance_snapshots s ON s.account_id = e.account_id
      WHERE e.id > coalesce(s.upto_entry_id, 0) AND e.id <= ${upto.toString()}::int8 ${only}
      GROUP BY e.account_id
    ), fits AS (
      SELECT * FROM x WHERE balance BETWEEN -9223372036854775808 AND 9223372036854775807
    ), written AS (
      INSERT INTO balance_snapshots (account_id, balance_micro_usd, upto_entry_id, updated_at)
      SELECT account_id, balance::int8, ${upto.toString()}::int8, now() FROM fits
      ON CONFLICT (account_id) DO UPDATE SET balance_micro_usd = excluded.balance_micro_usd,
        upto_entry_id = excluded.upto_entry_id, updated_at = excluded.updated_at
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM written)::int8 AS moved,
      (SELECT json_agg(json_build_object('account_id', account_id, 'balance', balance::text)) FROM x
        WHERE balance NOT BETWEEN -9223372036854775808 AND 9223372036854775807) AS skipped`.execute(trx);
  return { moved: Number(rows[0]!.moved), skipped: rows[0]!.skipped ?? [] };
}

async function pendingAccounts(trx: Trx, upto: bigint): Promise<string[]> {
  const { rows } = await sql<{ account_id: string }>`
    SELECT DISTINCT e.account_id FROM ledger_entries e LEFT JOIN balance_snapshots s ON s.account_id = e.account_id
    WHERE e.id > coalesce(s.upto_entry_id, 0) AND e.id <= ${upto.toString()}::int8`.execute(trx);
  return rows.map((r) => r.account_id);
}

async function inSavepoint<T>(trx: Trx, name: string, fn: () => Promise<T>): Promise<T> {
  await sql.raw(`SAVEPOINT ${name}`).execute(trx);
  try {
    const v = await fn();
    await sql.raw(`RELEASE SAVEPOINT ${name}`).execute(trx);
    return v;
  } catch (e) {
    await sql.raw(`ROLLBACK TO SAVEPOINT ${name}`).execute(trx);
    throw e;
  }
}

/** A PostgreSQL data exception (class 22) or integrity violation (class 23): about the rows, not the database. */
function isDataError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" && (code.startsWith("22") || code.startsWith("23"));
}
