/**
 * `coordinator ledger verify`: checks the ledger's invariants against the database and lists every violation.
 * Read-only; safe to run against production at any time (each check is one aggregate query).
 */
import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

export interface VerifyLedgerOptions {
  /** Overdraft bound the ledger runs with, µUSD. Default 0. */
  overdraftMicroUsd?: bigint;
  /** A reservation is "stale" when its holder has not heartbeated for this long (or is closed), ms. Default 60_000. */
  holderStaleMs?: number;
  /** Max violations listed per check. Default 20. */
  limitPerCheck?: number;
  /**
   * Entries older than this that are not rolled up, while a ledger process has been running longer than this,
   * mean the balance roll-up is failing, ms. Default 600_000 (the roll-up runs every minute for entries older
   * than 30 s).
   */
  rollupBehindMs?: number;
}

export interface VerifyLedgerResult {
  /** Every invariant holds. */
  ok: boolean;
  violations: string[];
  /**
   * Writes the entry writer moved to `ledger_quarantine` and no operator has resolved yet (`resolved_at`), one
   * line each. Not a violation (a quarantined settlement released its reservation, so the books balance), but
   * each is a request whose money needs an operator: it was neither billed nor paid.
   */
  quarantined: string[];
}

export async function verifyLedger(
  db: Kysely<Database>,
  options: VerifyLedgerOptions = {},
): Promise<VerifyLedgerResult> {
  const limit = options.limitPerCheck ?? 20;
  const staleSecs = (options.holderStaleMs ?? 60_000) / 1000;
  const overdraft = (options.overdraftMicroUsd ?? 0n).toString();
  const behindSecs = (options.rollupBehindMs ?? 600_000) / 1000;
  const violations: string[] = [];
  const check = async (name: string, q: ReturnType<typeof sql<{ v: string }>>) => {
    const { rows } = await q.execute(db);
    for (const r of rows) violations.push(`${name}: ${r.v}`);
  };

  await check(
    "conservation",
    sql<{ v: string }>`
    SELECT request_id || ' debit ' || consumer_debit_micro_usd || ' <> provider ' || provider_credit_micro_usd || ' + fee ' || platform_fee_micro_usd AS v
    FROM ledger_requests WHERE state = 'settled' AND consumer_debit_micro_usd <> provider_credit_micro_usd + platform_fee_micro_usd
    LIMIT ${limit}`,
  );
  await check(
    "over_reservation",
    sql<{ v: string }>`
    SELECT request_id || ' debit ' || consumer_debit_micro_usd || ' > reserved ' || reserved_micro_usd AS v
    FROM ledger_requests WHERE consumer_debit_micro_usd > reserved_micro_usd OR consumer_debit_micro_usd < 0 LIMIT ${limit}`,
  );
  await check(
    "entries_match_request",
    sql<{ v: string }>`
    WITH x AS (
      SELECT request_id,
        sum(CASE WHEN kind = 'debit' THEN -amount_micro_usd ELSE 0 END) AS d,
        sum(CASE WHEN kind = 'earning' THEN amount_micro_usd ELSE 0 END) AS e,
        sum(CASE WHEN kind = 'platform_fee' THEN amount_micro_usd ELSE 0 END) AS f,
        count(*) FILTER (WHERE kind = 'debit') AS debits
      FROM ledger_entries WHERE request_id IS NOT NULL GROUP BY request_id
    )
    SELECT coalesce(r.request_id, x.request_id) || ' state ' || coalesce(r.state, 'missing') || ' entries d/e/f '
      || coalesce(x.d, 0) || '/' || coalesce(x.e, 0) || '/' || coalesce(x.f, 0) AS v
    FROM ledger_requests r FULL JOIN x ON x.request_id = r.request_id
    WHERE (r.state = 'settled' AND (coalesce(x.d, 0) <> r.consumer_debit_micro_usd OR coalesce(x.e, 0) <> r.provider_credit_micro_usd
                                    OR coalesce(x.f, 0) <> r.platform_fee_micro_usd))
       OR (x.request_id IS NOT NULL AND (r.request_id IS NULL OR r.state <> 'settled'))
       OR coalesce(x.debits, 0) > 1
    LIMIT ${limit}`,
  );
  await check(
    "stale_open_reservation",
    sql<{ v: string }>`
    SELECT r.request_id || ' reserved by ' || r.holder_id AS v
    FROM ledger_requests r LEFT JOIN ledger_holders h ON h.id = r.holder_id
    WHERE r.state = 'reserved' AND (h.id IS NULL OR h.closed_at IS NOT NULL OR h.heartbeat_at < now() - make_interval(secs => ${staleSecs}))
    LIMIT ${limit}`,
  );
  await check(
    "stale_open_lease",
    sql<{ v: string }>`
    SELECT l.id || ' of ' || l.account_id || ' held by dead ' || l.holder_id AS v
    FROM credit_leases l JOIN ledger_holders h ON h.id = l.holder_id
    WHERE l.closed_at IS NULL AND (h.closed_at IS NOT NULL OR h.heartbeat_at < now() - make_interval(secs => ${staleSecs}))
    LIMIT ${limit}`,
  );
  await check(
    "lease_overspent",
    sql<{ v: string }>`
    SELECT l.id || ' amount ' || l.amount_micro_usd || ' < settled ' || s.spent AS v
    FROM credit_leases l JOIN (SELECT lease_id, sum(consumer_debit_micro_usd) AS spent FROM ledger_requests WHERE state = 'settled' GROUP BY lease_id) s
      ON s.lease_id = l.id
    WHERE s.spent > l.amount_micro_usd LIMIT ${limit}`,
  );
  await check(
    "projection",
    sql<{ v: string }>`
    WITH total AS (SELECT account_id, sum(amount_micro_usd) AS t FROM ledger_entries GROUP BY account_id),
    proj AS (
      SELECT s.account_id, s.balance_micro_usd + coalesce((SELECT sum(amount_micro_usd) FROM ledger_entries e
        WHERE e.account_id = s.account_id AND e.id > s.upto_entry_id), 0) AS p
      FROM balance_snapshots s
    )
    SELECT proj.account_id || ' snapshot+tail ' || proj.p || ' <> sum ' || coalesce(total.t, 0) AS v
    FROM proj LEFT JOIN total ON total.account_id = proj.account_id WHERE proj.p <> coalesce(total.t, 0) LIMIT ${limit}`,
  );
  await check(
    "negative_balance",
    sql<{ v: string }>`
    SELECT account_id || ' balance ' || sum(amount_micro_usd) AS v FROM ledger_entries
    GROUP BY account_id HAVING sum(amount_micro_usd) < -${overdraft}::int8 LIMIT ${limit}`,
  );
  // A balance outside int8 cannot be read (every balance query casts to int8) and the roll-up must leave the
  // account behind: two INT64_MAX credits did this before the money bounds (issue 13).
  await check(
    "balance_range",
    sql<{ v: string }>`
    SELECT account_id || ' balance ' || sum(amount_micro_usd) || ' is outside the int8 range' AS v FROM ledger_entries
    GROUP BY account_id HAVING sum(amount_micro_usd) NOT BETWEEN -9223372036854775808 AND 9223372036854775807 LIMIT ${limit}`,
  );
  // The roll-up keeps up while any ledger process runs: old entries past an account's snapshot mean it is failing.
  await check(
    "rollup_behind",
    sql<{ v: string }>`
    SELECT e.account_id || ': ' || count(*) || ' entries older than ' || ${behindSecs}::text || ' s not rolled up (oldest id ' || min(e.id) || ')' AS v
    FROM ledger_entries e LEFT JOIN balance_snapshots s ON s.account_id = e.account_id
    WHERE e.id > coalesce(s.upto_entry_id, 0) AND e.created_at < now() - make_interval(secs => ${behindSecs})
      AND EXISTS (SELECT 1 FROM ledger_holders h WHERE h.closed_at IS NULL
        AND h.heartbeat_at >= now() - make_interval(secs => ${staleSecs}) AND h.started_at < now() - make_interval(secs => ${behindSecs}))
    GROUP BY e.account_id LIMIT ${limit}`,
  );
  const { rows: q } = await sql<{ v: string }>`
    SELECT id || ' ' || op_kind || coalesce(' ' || request_id, '') || ' at ' || to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SS') || ': '
      || coalesce(sqlstate || ' ', '') || left(error, 200) AS v
    FROM ledger_quarantine WHERE resolved_at IS NULL ORDER BY id LIMIT ${limit}`.execute(db);
  return { ok: violations.length === 0, violations, quarantined: q.map((r) => r.v) };
}
