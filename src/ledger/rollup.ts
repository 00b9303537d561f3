/**
 * Rolls the balance projection forward off the request path: per account, `balance_snapshots` absorbs the
 * entries up to a safe id, so balance reads and lease draws sum only a short tail of entries.
 *
 * "Safe": ids come from a sequence and can commit out of order, so only entries older than `lagMs` are absorbed
 * (every ledger transaction is far shorter: statement and idle-in-transaction timeouts). `verifyLedger` checks
 * snapshot + tail = sum of all entries, which would expose a missed entry. One process rolls up at a time
 * (transaction-scoped advisory lock).
 */
import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

const ROLLUP_LOCK_KEY = 727_001;

/** Returns the number of accounts whose snapshot moved (0 when another process holds the roll-up lock). */
export async function rollupBalances(db: Kysely<Database>, options: { lagMs?: number } = {}): Promise<number> {
  const lagMs = options.lagMs ?? 30_000;
  return db.transaction().execute(async (trx) => {
    const lock = await sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(${ROLLUP_LOCK_KEY}) AS ok`.execute(trx);
    if (!lock.rows[0]!.ok) return 0;
    const r = await sql`
      WITH upto AS (
        SELECT coalesce(max(id), 0) AS id FROM ledger_entries WHERE created_at <= now() - make_interval(secs => ${lagMs / 1000})
      )
      INSERT INTO balance_snapshots (account_id, balance_micro_usd, upto_entry_id, updated_at)
      SELECT e.account_id, coalesce(max(s.balance_micro_usd), 0) + sum(e.amount_micro_usd), (SELECT id FROM upto), now()
      FROM ledger_entries e LEFT JOIN balance_snapshots s ON s.account_id = e.account_id
      WHERE e.id > coalesce(s.upto_entry_id, 0) AND e.id <= (SELECT id FROM upto)
      GROUP BY e.account_id
      ON CONFLICT (account_id) DO UPDATE SET balance_micro_usd = excluded.balance_micro_usd,
        upto_entry_id = excluded.upto_entry_id, updated_at = excluded.updated_at`.execute(trx);
    return Number(r.numAffectedRows ?? 0n);
  });
}
