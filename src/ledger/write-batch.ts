/**
 * The SQL of group commit: {@link writeBatch} writes one batch of queued operations atomically, with one
 * statement per kind (`unnest` arrays, so the statement text and parameter count are constant however large the
 * batch). Kept apart from the queue that decides *when* to write (`entry-writer.ts`) so the statements that move
 * money can be read, and reviewed, on their own.
 *
 * Idempotency lives here: a request row moves off `reserved` at most once (`WHERE state = 'reserved'`), and
 * entries are only inserted for rows that moved, under unique (account, kind, request) indexes. Every statement
 * can therefore be re-run after a commit whose reply was lost without changing anything.
 */
import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";
import { PLATFORM_ACCOUNT_ID } from "./schema.js";
import type { WriteOp } from "./write-op.js";

const str = (v: bigint) => v.toString();

type Executor = Kysely<Database>;
type Statement = (db: Executor) => Promise<unknown>;

/**
 * Writes one batch atomically, in dependency order: reservations, settlements, releases, lease closes. A batch
 * of one kind is one statement, which PostgreSQL runs as its own transaction: one round trip instead of three
 * (BEGIN, statement, COMMIT), which is most of a lone settlement's durable wait at low concurrency. Under load
 * a batch typically holds reservations and settlements: they are one statement too (see
 * {@link reserveAndSettleStatement}), so the common batch is one round trip instead of four.
 */
export async function writeBatch(db: Kysely<Database>, ops: WriteOp[]): Promise<void> {
  const reserves: Extract<WriteOp, { kind: "reserve" }>[] = [];
  const settles: Extract<WriteOp, { kind: "settle" }>[] = [];
  const releases: Extract<WriteOp, { kind: "release" }>[] = [];
  const closes: Extract<WriteOp, { kind: "close_lease" }>[] = [];
  for (const o of ops) {
    if (o.kind === "reserve") reserves.push(o);
    else if (o.kind === "settle") settles.push(o);
    else if (o.kind === "release") releases.push(o);
    else closes.push(o);
  }
  const statements: Statement[] = [];
  if (reserves.length > 0 && settles.length > 0)
    statements.push((x) => reserveAndSettleStatement(reserves, settles).execute(x));
  else if (reserves.length > 0) statements.push((x) => reserveStatement(reserves).execute(x));
  else if (settles.length > 0) statements.push((x) => settleStatement(settles).execute(x));
  if (releases.length > 0) statements.push((x) => releaseStatement(releases).execute(x));
  if (closes.length > 0)
    statements.push((x) =>
      sql`UPDATE credit_leases SET closed_at = now() WHERE id = ANY(${closes.map((c) => c.leaseId)}::text[]) AND closed_at IS NULL`.execute(
        x,
      ),
    );
  if (statements.length === 1) {
    await statements[0]!(db);
    return;
  }
  await db.transaction().execute(async (trx) => {
    for (const s of statements) await s(trx);
  });
}

function reserveStatement(reserves: Extract<WriteOp, { kind: "reserve" }>[]) {
  return sql`
    INSERT INTO ledger_requests (request_id, account_id, key_id, lease_id, holder_id, model, reserved_micro_usd, state)
    SELECT v.*, 'reserved' FROM unnest(
      ${reserves.map((r) => r.requestId)}::text[], ${reserves.map((r) => r.accountId)}::text[],
      ${reserves.map((r) => r.keyId)}::text[], ${reserves.map((r) => r.leaseId)}::text[],
      ${reserves.map((r) => r.holderId)}::text[], ${reserves.map((r) => r.model)}::text[],
      ${reserves.map((r) => str(r.reservedMicroUsd))}::int8[]) AS v
    ON CONFLICT (request_id) DO NOTHING`;
}

/** The settlements as rows `v(request_id, debit, credit, fee, provider_account_id, provider_id, pt, ct, rt)`. */
function settleValues(settles: Extract<WriteOp, { kind: "settle" }>[]) {
  return sql`
      SELECT * FROM unnest(
        ${settles.map((s) => s.requestId)}::text[], ${settles.map((s) => str(s.debitMicroUsd))}::int8[],
        ${settles.map((s) => str(s.providerCreditMicroUsd))}::int8[], ${settles.map((s) => str(s.platformFeeMicroUsd))}::int8[],
        ${settles.map((s) => s.providerAccountId)}::text[], ${settles.map((s) => s.providerId)}::text[],
        ${settles.map((s) => s.promptTokens)}::int8[], ${settles.map((s) => s.completionTokens)}::int8[],
        ${settles.map((s) => s.reasoningTokens)}::int8[]
      ) AS v(request_id, debit, credit, fee, provider_account_id, provider_id, pt, ct, rt)`;
}

/** Moves each still-reserved request of `v` to settled, once (the `state = 'reserved'` guard), returning it. */
const settleReserved = sql`
      UPDATE ledger_requests r SET state = 'settled', consumer_debit_micro_usd = v.debit,
        provider_credit_micro_usd = v.credit, platform_fee_micro_usd = v.fee,
        provider_account_id = v.provider_account_id, provider_id = v.provider_id,
        prompt_tokens = v.pt, completion_tokens = v.ct, reasoning_tokens = v.rt, resolved_at = now()
      FROM v WHERE r.request_id = v.request_id AND r.state = 'reserved'
      RETURNING r.request_id, r.account_id, v.debit, v.credit, v.fee, v.provider_account_id`;

function settleStatement(settles: Extract<WriteOp, { kind: "settle" }>[]) {
  return sql`
    WITH v AS (
      ${settleValues(settles)}
    ), moved AS (
      ${settleReserved}
    )
    INSERT INTO ledger_entries (account_id, kind, amount_micro_usd, request_id)
    SELECT account_id, 'debit', -debit, request_id FROM moved WHERE debit <> 0
    UNION ALL SELECT provider_account_id, 'earning', credit, request_id FROM moved WHERE credit <> 0
    UNION ALL SELECT ${PLATFORM_ACCOUNT_ID}, 'platform_fee', fee, request_id FROM moved WHERE fee <> 0
    ON CONFLICT DO NOTHING`;
}

/**
 * Reservations and settlements as one statement. Sibling CTEs share one snapshot, so the settle UPDATE cannot
 * see rows inserted by the same statement: a request reserved *and* settled in this batch is inserted directly
 * in its settled state. Every settlement also stays in the UPDATE, which moves the row only if it already
 * existed as `reserved` (e.g. a batch retried after a commit whose reply was lost: the insert then conflicts
 * and does nothing). Exactly one of the two paths moves each request, and entries are written for both.
 */
function reserveAndSettleStatement(
  reserves: Extract<WriteOp, { kind: "reserve" }>[],
  settles: Extract<WriteOp, { kind: "settle" }>[],
) {
  const settledHere = new Map(settles.map((s) => [s.requestId, s]));
  const merged = reserves.map((r) => settledHere.get(r.requestId));
  const pick = <T>(f: (s: Extract<WriteOp, { kind: "settle" }>) => T, none: T) => merged.map((s) => (s ? f(s) : none));
  return sql`
    WITH rv AS (
      SELECT * FROM unnest(
        ${reserves.map((r) => r.requestId)}::text[], ${reserves.map((r) => r.accountId)}::text[],
        ${reserves.map((r) => r.keyId)}::text[], ${reserves.map((r) => r.leaseId)}::text[],
        ${reserves.map((r) => r.holderId)}::text[], ${reserves.map((r) => r.model)}::text[],
        ${reserves.map((r) => str(r.reservedMicroUsd))}::int8[], ${merged.map((s) => s !== undefined)}::bool[],
        ${pick((s) => str(s.debitMicroUsd), "0")}::int8[], ${pick((s) => str(s.providerCreditMicroUsd), "0")}::int8[],
        ${pick((s) => str(s.platformFeeMicroUsd), "0")}::int8[], ${pick<string | null>((s) => s.providerAccountId, null)}::text[],
        ${pick<string | null>((s) => s.providerId, null)}::text[], ${pick((s) => s.promptTokens, 0)}::int8[],
        ${pick((s) => s.completionTokens, 0)}::int8[], ${pick((s) => s.reasoningTokens, 0)}::int8[]
      ) AS v(request_id, account_id, key_id, lease_id, holder_id, model, reserved, settled, debit, credit, fee, provider_account_id, provider_id, pt, ct, rt)
    ), ins AS (
      INSERT INTO ledger_requests (request_id, account_id, key_id, lease_id, holder_id, model, reserved_micro_usd, state,
        consumer_debit_micro_usd, provider_credit_micro_usd, platform_fee_micro_usd, provider_account_id, provider_id,
        prompt_tokens, completion_tokens, reasoning_tokens, resolved_at)
      SELECT request_id, account_id, key_id, lease_id, holder_id, model, reserved, CASE WHEN settled THEN 'settled' ELSE 'reserved' END,
        debit, credit, fee, provider_account_id, provider_id, pt, ct, rt, CASE WHEN settled THEN now() END
      FROM rv
      ON CONFLICT (request_id) DO NOTHING
      RETURNING request_id, account_id, state, consumer_debit_micro_usd AS debit, provider_credit_micro_usd AS credit,
        platform_fee_micro_usd AS fee, provider_account_id
    ), v AS (
      ${settleValues(settles)}
    ), moved AS (
      ${settleReserved}
    ), done AS (
      SELECT request_id, account_id, debit, credit, fee, provider_account_id FROM moved
      UNION ALL SELECT request_id, account_id, debit, credit, fee, provider_account_id FROM ins WHERE state = 'settled'
    )
    INSERT INTO ledger_entries (account_id, kind, amount_micro_usd, request_id)
    SELECT account_id, 'debit', -debit, request_id FROM done WHERE debit <> 0
    UNION ALL SELECT provider_account_id, 'earning', credit, request_id FROM done WHERE credit <> 0
    UNION ALL SELECT ${PLATFORM_ACCOUNT_ID}, 'platform_fee', fee, request_id FROM done WHERE fee <> 0
    ON CONFLICT DO NOTHING`;
}

function releaseStatement(releases: Extract<WriteOp, { kind: "release" }>[]) {
  return sql`
    UPDATE ledger_requests r SET state = 'released', release_reason = v.reason, resolved_at = now()
    FROM unnest(${releases.map((r) => r.requestId)}::text[], ${releases.map((r) => r.reason)}::text[]) AS v(request_id, reason)
    WHERE r.request_id = v.request_id AND r.state = 'reserved'`;
}
