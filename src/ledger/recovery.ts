/**
 * Crash recovery. A ledger process that dies (kill -9) leaves open reservations and leases tagged with its
 * holder id. Any process (at start-up, or `coordinator ledger recover`) resolves them in one transaction:
 * every open reservation of a dead holder is released (its client connection died with the process, so nothing
 * was delivered that was not already settled durably), and its leases are closed, which returns their unspent
 * part to the account. The `WHERE state = 'reserved'` / `closed_at IS NULL` guards make it exactly once, and
 * `FOR UPDATE SKIP LOCKED` lets concurrent recoveries split the work instead of doing it twice.
 */
import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

export interface RecoveryReport {
  holdersRecovered: number;
  reservationsReleased: number;
  releasedMicroUsd: bigint;
  leasesClosed: number;
  /** Unspent lease money made available again. */
  returnedMicroUsd: bigint;
}

export async function recoverDeadHolders(
  db: Kysely<Database>,
  options: { holderStaleMs: number; excludeHolderId?: string },
): Promise<RecoveryReport> {
  return db.transaction().execute(async (trx) => {
    const dead = await sql<{ id: string }>`
      SELECT id FROM ledger_holders
      WHERE id <> ${options.excludeHolderId ?? ""}
        AND (closed_at IS NOT NULL OR heartbeat_at < now() - make_interval(secs => ${options.holderStaleMs / 1000}))
        AND (closed_at IS NULL
             OR EXISTS (SELECT 1 FROM credit_leases l WHERE l.holder_id = ledger_holders.id AND l.closed_at IS NULL)
             OR EXISTS (SELECT 1 FROM ledger_requests r WHERE r.holder_id = ledger_holders.id AND r.state = 'reserved'))
      FOR UPDATE SKIP LOCKED`.execute(trx);
    const ids = dead.rows.map((r) => r.id);
    if (ids.length === 0)
      return {
        holdersRecovered: 0,
        reservationsReleased: 0,
        releasedMicroUsd: 0n,
        leasesClosed: 0,
        returnedMicroUsd: 0n,
      };
    const released = await sql<{ n: bigint; amount: bigint }>`
      WITH moved AS (
        UPDATE ledger_requests SET state = 'released', release_reason = 'recovered', resolved_at = now()
        WHERE holder_id = ANY(${ids}::text[]) AND state = 'reserved'
        RETURNING reserved_micro_usd
      ) SELECT count(*)::int8 AS n, coalesce(sum(reserved_micro_usd), 0)::int8 AS amount FROM moved`.execute(trx);
    const closed = await sql<{ n: bigint; returned: bigint }>`
      WITH moved AS (
        UPDATE credit_leases SET closed_at = now()
        WHERE holder_id = ANY(${ids}::text[]) AND closed_at IS NULL
        RETURNING id, amount_micro_usd
      ) SELECT count(*)::int8 AS n, coalesce(sum(greatest(0, m.amount_micro_usd - coalesce(
          (SELECT sum(consumer_debit_micro_usd) FROM ledger_requests r WHERE r.lease_id = m.id AND r.state = 'settled'), 0))), 0)::int8 AS returned
        FROM moved m`.execute(trx);
    await sql`UPDATE ledger_holders SET closed_at = coalesce(closed_at, now()) WHERE id = ANY(${ids}::text[])`.execute(
      trx,
    );
    return {
      holdersRecovered: ids.length,
      reservationsReleased: Number(released.rows[0]!.n),
      releasedMicroUsd: released.rows[0]!.amount,
      leasesClosed: Number(closed.rows[0]!.n),
      returnedMicroUsd: closed.rows[0]!.returned,
    };
  });
}
