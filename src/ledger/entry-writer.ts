/**
 * Group commit for ledger writes. Every reserve/settle/release/lease-close is queued here and written by one
 * flush loop: while a transaction is in flight new operations pile up, and the next transaction writes them all
 * with one statement per kind (`unnest` arrays, so the statement text and parameter count are constant). 256
 * concurrent requests therefore cost a handful of transactions, each touching only its own requests' rows.
 *
 * Idempotency lives in SQL: a request row moves off `reserved` at most once (`WHERE state = 'reserved'`), and
 * entries are only inserted for rows that moved, under unique (account, kind, request) indexes.
 *
 * When Postgres fails, the batch stays queued (bounded by `maxQueued`) and is retried with backoff; callers'
 * promises resolve when their operation is durable, whenever that is. A failure that retrying cannot fix (a data
 * or constraint error: {@link isDeterministicWriteError}) would otherwise block every write behind it forever,
 * so the batch is bisected until the failing operation stands alone; the others are written and that one goes
 * to `ledger_quarantine` with its error (a quarantined settlement releases its reservation, so the books still
 * balance), and the writer carries on. Every statement is idempotent, so re-writing a half that had already
 * committed before a transient failure changes nothing.
 */
import { sql, type Kysely } from "kysely";
import { count, gauge, observe } from "../telemetry/metrics.js";
import type { Clock } from "../util/clock.js";
import type { Database } from "./schema.js";
import { PLATFORM_ACCOUNT_ID } from "./schema.js";

export type WriteOp =
  | {
      kind: "reserve";
      requestId: string;
      accountId: string;
      keyId: string;
      leaseId: string;
      holderId: string;
      model: string;
      reservedMicroUsd: bigint;
    }
  | {
      kind: "settle";
      requestId: string;
      debitMicroUsd: bigint;
      providerCreditMicroUsd: bigint;
      platformFeeMicroUsd: bigint;
      providerAccountId: string;
      providerId: string;
      promptTokens: number;
      completionTokens: number;
      reasoningTokens: number;
    }
  | { kind: "release"; requestId: string; reason: string }
  | { kind: "close_lease"; leaseId: string };

interface Pending {
  op: WriteOp;
  resolve: () => void;
}

export interface EntryWriterOptions {
  db: Kysely<Database>;
  clock: Clock;
  /** Max operations per transaction. Default 2000. */
  maxBatch?: number;
  /** Max queued operations before `isFull()` (the ledger then sheds new reservations). Default 100_000. */
  maxQueued?: number;
  /** First retry delay after a failed flush, doubling up to 5 s. Default 100 ms. */
  retryMs?: number;
  /** Called with each flush error (logging, metrics). */
  onError?: (error: unknown) => void;
  /** Called once per operation moved to `ledger_quarantine`, with the error PostgreSQL gave for it. */
  onQuarantine?: (op: WriteOp, error: unknown) => void;
}

/** The single writer of request rows and entries for one ledger process. */
export class EntryWriter {
  readonly #o: Required<Omit<EntryWriterOptions, "onError" | "onQuarantine">> & Pick<EntryWriterOptions, "onError" | "onQuarantine">;
  #queue: Pending[] = [];
  #flushing = false;
  #scheduled = false;
  #failures = 0;
  #idleWaiters: Array<() => void> = [];
  #closed = false;

  constructor(options: EntryWriterOptions) {
    this.#o = { maxBatch: 2000, maxQueued: 100_000, retryMs: 100, ...options };
  }

  /** Queues an operation; resolves once it is committed. */
  write(op: WriteOp): Promise<void> {
    return new Promise((resolve) => {
      this.#queue.push({ op, resolve });
      this.#schedule(0);
    });
  }

  /** True while the last flush failed (Postgres slow or down). */
  get degraded(): boolean {
    return this.#failures > 0;
  }

  get queued(): number {
    return this.#queue.length;
  }

  isFull(): boolean {
    return this.#queue.length >= this.#o.maxQueued;
  }

  /** Resolves when everything queued so far is committed (or, after close(), when no flush is running). */
  drained(): Promise<void> {
    if (this.#queue.length === 0 && !this.#flushing) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops retrying; anything still queued is dropped (recovery treats it as never written). */
  close(): void {
    this.#closed = true;
    if (!this.#flushing) this.#notifyIdle(true);
  }

  #schedule(delayMs: number): void {
    if (this.#scheduled || this.#flushing || this.#closed) return;
    this.#scheduled = true;
    const run = () => {
      this.#scheduled = false;
      void this.#flush();
    };
    // setImmediate lets every request of the current tick join the batch; retries wait on the clock.
    if (delayMs === 0) setImmediate(run);
    else this.#o.clock.setTimeout(run, delayMs);
  }

  async #flush(): Promise<void> {
    if (this.#flushing || this.#closed || this.#queue.length === 0) {
      this.#notifyIdle();
      return;
    }
    this.#flushing = true;
    const batch = this.#queue.slice(0, this.#o.maxBatch);
    const started = performance.now();
    try {
      await this.#writeIsolating(batch.map((p) => p.op));
      this.#queue.splice(0, batch.length);
      this.#failures = 0;
      // Per batch, not per request: how long money takes to become durable, and how much rides on one commit.
      observe("ledger.write_ms", performance.now() - started);
      observe("ledger.batch_size", batch.length);
      for (const p of batch) p.resolve();
    } catch (e) {
      this.#failures++;
      count("ledger.write_failures");
      this.#o.onError?.(e);
    } finally {
      this.#flushing = false;
      // Writes waiting for PostgreSQL: grows while it is slow or down (served from leases meanwhile).
      gauge("ledger.queued", this.#queue.length);
    }
    if (this.#closed) return this.#notifyIdle(true);
    if (this.#queue.length > 0) this.#schedule(this.#failures === 0 ? 0 : Math.min(5000, this.#o.retryMs * 2 ** (this.#failures - 1)));
    else this.#notifyIdle();
  }

  /**
   * Writes `ops`; on a deterministic failure splits them in two (in queue order, so a settlement never runs
   * before its reservation) until the culprit is alone, then quarantines it. A transient failure propagates and
   * the whole batch is retried later.
   */
  async #writeIsolating(ops: WriteOp[]): Promise<void> {
    try {
      await writeBatch(this.#o.db, ops);
    } catch (e) {
      if (!isDeterministicWriteError(e)) throw e;
      if (ops.length === 1) {
        await quarantine(this.#o.db, ops[0]!, e);
        count("ledger.quarantined", { op: ops[0]!.kind });
        this.#o.onQuarantine?.(ops[0]!, e);
        return;
      }
      const half = Math.ceil(ops.length / 2);
      await this.#writeIsolating(ops.slice(0, half));
      await this.#writeIsolating(ops.slice(half));
    }
  }

  #notifyIdle(force = false): void {
    if (!force && (this.#queue.length > 0 || this.#flushing)) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}

const str = (v: bigint) => v.toString();

/**
 * True for PostgreSQL errors that the same statement would hit again however often it is retried: cardinality
 * (21), data exceptions such as a NUL byte or a number out of range (22), integrity constraints (23), syntax or
 * undefined objects (42), WITH CHECK OPTION (44) and errors raised by triggers (P0). Connection loss, shutdown,
 * resource exhaustion, timeouts and serialization failures are transient.
 */
export function isDeterministicWriteError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.length === 5 && ["21", "22", "23", "42", "44", "P0"].includes(code.slice(0, 2));
}

/**
 * Moves one operation aside: a row in `ledger_quarantine` with its payload and error, and, for a settlement, the
 * release of its reservation (reason `quarantined`), so the reservation does not stay open and the account's
 * money is not held; an operator can re-apply the payload after fixing its cause.
 */
async function quarantine(db: Kysely<Database>, op: WriteOp, error: unknown): Promise<void> {
  // JSON text escapes a NUL as the six ASCII characters \u0000, which a text column accepts.
  const payload = JSON.stringify(op, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
  const message = String((error as Error)?.message ?? error).replace(/\u0000/g, "\\u0000").slice(0, 2_000);
  const sqlstate = String((error as { code?: unknown }).code ?? "").slice(0, 5) || null;
  const requestId = "requestId" in op ? op.requestId.replace(/\u0000/g, "") : null;
  await db.transaction().execute(async (trx) => {
    await trx.insertInto("ledger_quarantine").values({ op_kind: op.kind, request_id: requestId, payload, error: message, sqlstate }).execute();
    if (op.kind === "settle" && requestId !== null) {
      await trx
        .updateTable("ledger_requests")
        .set({ state: "released", release_reason: "quarantined", resolved_at: new Date() })
        .where("request_id", "=", requestId)
        .where("state", "=", "reserved")
        .execute();
    }
  });
}

type Executor = Kysely<Database>;
type Statement = (db: Executor) => Promise<unknown>;

/**
 * Writes one batch atomically, in dependency order: reservations, settlements, releases, lease closes. A batch
 * of one kind is one statement, which PostgreSQL runs as its own transaction: one round trip instead of three
 * (BEGIN, statement, COMMIT), which is most of a lone settlement's durable wait at low concurrency. Under load
 * a batch typically holds reservations and settlements: they are one statement too (see
 * {@link reserveAndSettleStatement}), so the common batch is one round trip instead of four.
 */
async function writeBatch(db: Kysely<Database>, ops: WriteOp[]): Promise<void> {
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
  if (reserves.length > 0 && settles.length > 0) statements.push((x) => reserveAndSettleStatement(reserves, settles).execute(x));
  else if (reserves.length > 0) statements.push((x) => reserveStatement(reserves).execute(x));
  else if (settles.length > 0) statements.push((x) => settleStatement(settles).execute(x));
  if (releases.length > 0) statements.push((x) => releaseStatement(releases).execute(x));
  if (closes.length > 0) statements.push((x) => sql`UPDATE credit_leases SET closed_at = now() WHERE id = ANY(${closes.map((c) => c.leaseId)}::text[]) AND closed_at IS NULL`.execute(x));
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

function settleStatement(settles: Extract<WriteOp, { kind: "settle" }>[]) {
  return sql`
    WITH v AS (
      SELECT * FROM unnest(
        ${settles.map((s) => s.requestId)}::text[], ${settles.map((s) => str(s.debitMicroUsd))}::int8[],
        ${settles.map((s) => str(s.providerCreditMicroUsd))}::int8[], ${settles.map((s) => str(s.platformFeeMicroUsd))}::int8[],
        ${settles.map((s) => s.providerAccountId)}::text[], ${settles.map((s) => s.providerId)}::text[],
        ${settles.map((s) => s.promptTokens)}::int8[], ${settles.map((s) => s.completionTokens)}::int8[],
        ${settles.map((s) => s.reasoningTokens)}::int8[]
      ) AS v(request_id, debit, credit, fee, provider_account_id, provider_id, pt, ct, rt)
    ), moved AS (
      UPDATE ledger_requests r SET state = 'settled', consumer_debit_micro_usd = v.debit,
        provider_credit_micro_usd = v.credit, platform_fee_micro_usd = v.fee,
        provider_account_id = v.provider_account_id, provider_id = v.provider_id,
        prompt_tokens = v.pt, completion_tokens = v.ct, reasoning_tokens = v.rt, resolved_at = now()
      FROM v WHERE r.request_id = v.request_id AND r.state = 'reserved'
      RETURNING r.request_id, r.account_id, v.debit, v.credit, v.fee, v.provider_account_id
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
function reserveAndSettleStatement(reserves: Extract<WriteOp, { kind: "reserve" }>[], settles: Extract<WriteOp, { kind: "settle" }>[]) {
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
      SELECT * FROM unnest(
        ${settles.map((s) => s.requestId)}::text[], ${settles.map((s) => str(s.debitMicroUsd))}::int8[],
        ${settles.map((s) => str(s.providerCreditMicroUsd))}::int8[], ${settles.map((s) => str(s.platformFeeMicroUsd))}::int8[],
        ${settles.map((s) => s.providerAccountId)}::text[], ${settles.map((s) => s.providerId)}::text[],
        ${settles.map((s) => s.promptTokens)}::int8[], ${settles.map((s) => s.completionTokens)}::int8[],
        ${settles.map((s) => s.reasoningTokens)}::int8[]
      ) AS v(request_id, debit, credit, fee, provider_account_id, provider_id, pt, ct, rt)
    ), moved AS (
      UPDATE ledger_requests r SET state = 'settled', consumer_debit_micro_usd = v.debit,
        provider_credit_micro_usd = v.credit, platform_fee_micro_usd = v.fee,
        provider_account_id = v.provider_account_id, provider_id = v.provider_id,
        prompt_tokens = v.pt, completion_tokens = v.ct, reasoning_tokens = v.rt, resolved_at = now()
      FROM v WHERE r.request_id = v.request_id AND r.state = 'reserved'
      RETURNING r.request_id, r.account_id, v.debit, v.credit, v.fee, v.provider_account_id
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
