import assert from "node:assert/strict";
import { sql } from "kysely";
import { EntryWriter, type WriteOp } from "../../../src/ledger/entry-writer.js";
import { PLATFORM_ACCOUNT_ID } from "../../../src/ledger/schema.js";
import { setStatsd } from "../../../src/telemetry/metrics.js";
import { systemClock } from "../../../src/util/clock.js";
import { eventually } from "../../support/http.js";
import { ledgerFixture, type LedgerFixture } from "./ledger-fixture.js";

/**
 * The group-commit writer's batch shapes on real Postgres. Operations written in the same tick share one batch;
 * a batch holding both reservations and settlements is one statement whose CTEs cannot see each other's rows,
 * so these cases pin down that every request still moves exactly once.
 */
describe("EntryWriter batches on real Postgres", () => {
  let fx: LedgerFixture;
  let writer: EntryWriter;
  before(async () => {
    fx = await ledgerFixture();
    writer = new EntryWriter({ db: fx.opened.db, clock: systemClock });
  });
  after(async () => {
    writer.close();
    await fx.closeAll();
  });

  const reserve = (requestId: string): WriteOp => ({
    kind: "reserve",
    requestId,
    accountId: "acct-c",
    keyId: "key-c",
    leaseId: "lease-1",
    holderId: "holder-1",
    model: "m",
    reservedMicroUsd: 1_000n,
  });
  const settle = (requestId: string, debit: bigint): WriteOp => ({
    kind: "settle",
    requestId,
    debitMicroUsd: debit,
    providerCreditMicroUsd: debit - debit / 10n,
    platformFeeMicroUsd: debit / 10n,
    providerAccountId: "acct-p",
    providerId: "prov-1",
    promptTokens: 10,
    completionTokens: 5,
    reasoningTokens: 1,
  });
  const row = async (id: string) =>
    (
      await sql<{
        state: string;
        debit: bigint;
        credit: bigint;
        fee: bigint;
        provider_account_id: string | null;
        prompt_tokens: bigint;
        reasoning_tokens: bigint;
        resolved: boolean;
      }>`
      SELECT state, consumer_debit_micro_usd AS debit, provider_credit_micro_usd AS credit, platform_fee_micro_usd AS fee,
        provider_account_id, prompt_tokens, reasoning_tokens, resolved_at IS NOT NULL AS resolved
      FROM ledger_requests WHERE request_id = ${id}`.execute(fx.opened.db)
    ).rows;
  const entries = async (id: string) =>
    (
      await sql<{ account_id: string; kind: string; amount: bigint }>`
      SELECT account_id, kind, amount_micro_usd AS amount FROM ledger_entries WHERE request_id = ${id} ORDER BY kind`.execute(
        fx.opened.db,
      )
    ).rows;
  const settledEntries = (debit: bigint) => [
    { account_id: "acct-c", kind: "debit", amount: -debit },
    { account_id: "acct-p", kind: "earning", amount: debit - debit / 10n },
    { account_id: PLATFORM_ACCOUNT_ID, kind: "platform_fee", amount: debit / 10n },
  ];

  it("reports each batch to the metrics: its size, how long the commit took, and what is still queued", async () => {
    const seen: { kind: string; stat: string; value: number }[] = [];
    setStatsd({
      increment: (stat, value) => seen.push({ kind: "c", stat, value }),
      distribution: (stat, value) => seen.push({ kind: "d", stat, value }),
      gauge: (stat, value) => seen.push({ kind: "g", stat, value }),
    });
    try {
      await Promise.all([
        writer.write(reserve("metrics-a")),
        writer.write(reserve("metrics-b")),
        writer.write(settle("metrics-a", 100n)),
      ]);
    } finally {
      setStatsd(undefined);
    }
    assert.deepEqual(
      seen.filter((m) => m.stat === "ledger.batch_size").map((m) => m.value),
      [3],
    );
    const write = seen.find((m) => m.stat === "ledger.write_ms");
    assert.ok(write && write.kind === "d" && write.value > 0);
    assert.deepEqual(
      seen.filter((m) => m.stat === "ledger.queued").map((m) => m.value),
      [0],
    );
  });

  it("settles a request reserved in the same batch: the row is written settled, with its three entries", async () => {
    await Promise.all([writer.write(reserve("same-batch")), writer.write(settle("same-batch", 700n))]);
    assert.deepEqual(await row("same-batch"), [
      {
        state: "settled",
        debit: 700n,
        credit: 630n,
        fee: 70n,
        provider_account_id: "acct-p",
        prompt_tokens: 10n,
        reasoning_tokens: 1n,
        resolved: true,
      },
    ]);
    assert.deepEqual(await entries("same-batch"), settledEntries(700n));
  });

  it("moves a row that already exists as reserved when the reservation is written again with its settlement (a retried batch), once", async () => {
    await writer.write(reserve("retried"));
    assert.equal((await row("retried"))[0]?.state, "reserved");
    await Promise.all([writer.write(reserve("retried")), writer.write(settle("retried", 500n))]);
    assert.deepEqual(await entries("retried"), settledEntries(500n));
    // The same batch replayed again changes nothing: the insert conflicts and the row is no longer reserved.
    await Promise.all([writer.write(reserve("retried")), writer.write(settle("retried", 900n))]);
    assert.equal((await row("retried"))[0]?.debit, 500n);
    assert.deepEqual(await entries("retried"), settledEntries(500n));
  });

  it("settles an earlier reservation and leaves a new one reserved in a mixed batch", async () => {
    await writer.write(reserve("earlier"));
    await Promise.all([writer.write(reserve("new-open")), writer.write(settle("earlier", 300n))]);
    assert.deepEqual(await entries("earlier"), settledEntries(300n));
    assert.deepEqual(await row("new-open"), [
      {
        state: "reserved",
        debit: 0n,
        credit: 0n,
        fee: 0n,
        provider_account_id: null,
        prompt_tokens: 0n,
        reasoning_tokens: 0n,
        resolved: false,
      },
    ]);
    assert.deepEqual(await entries("new-open"), []);
  });

  it("releases a request reserved in the same batch, and writes no entries for it", async () => {
    await Promise.all([
      writer.write(reserve("released")),
      writer.write(settle("paid", 200n)),
      writer.write({ kind: "release", requestId: "released", reason: "cancelled" }),
    ]);
    assert.equal((await row("released"))[0]?.state, "released");
    assert.deepEqual(await entries("released"), []);
    assert.equal((await row("paid")).length, 0, "a settle without a reservation moves nothing");
    assert.deepEqual(await entries("paid"), []);
  });

  it("stores token counts beyond the int4 range (a provider's 3,000,000,000 cannot overflow a column)", async () => {
    await writer.write(reserve("huge-count"));
    await writer.write({
      ...settle("huge-count", 100n),
      promptTokens: 3_000_000_000,
      completionTokens: 4_294_967_295,
    } as WriteOp);
    const [r] = await row("huge-count");
    assert.equal(r?.state, "settled");
    assert.equal(r?.prompt_tokens, 3_000_000_000n);
  });

  it("quarantines the one write PostgreSQL refuses (a NUL byte), writes the rest of its batch, and releases that reservation", async () => {
    const quarantined: { op: WriteOp; code: unknown }[] = [];
    const w = new EntryWriter({
      db: fx.opened.db,
      clock: systemClock,
      onQuarantine: (op, e) => quarantined.push({ op, code: (e as { code?: unknown }).code }),
    });
    try {
      await Promise.all(["q-a", "q-b", "q-c", "q-d"].map((id) => w.write(reserve(id))));
      // One batch: three good settlements around a poisoned one.
      await Promise.all([
        w.write(settle("q-a", 100n)),
        w.write({ ...settle("q-b", 100n), providerId: "prov\u0000evil" } as WriteOp),
        w.write(settle("q-c", 100n)),
        w.write(settle("q-d", 100n)),
      ]);
      for (const id of ["q-a", "q-c", "q-d"]) assert.equal((await row(id))[0]?.state, "settled", id);
      assert.deepEqual(await entries("q-a"), settledEntries(100n));
      const [b] = (
        await sql<{
          state: string;
          release_reason: string;
        }>`SELECT state, release_reason FROM ledger_requests WHERE request_id = 'q-b'`.execute(fx.opened.db)
      ).rows;
      assert.deepEqual(b, { state: "released", release_reason: "quarantined" });
      assert.deepEqual(await entries("q-b"), []);
      const q = (
        await sql<{ op_kind: string; request_id: string; sqlstate: string; payload: string }>`
        SELECT op_kind, request_id, sqlstate, payload FROM ledger_quarantine WHERE request_id = 'q-b'`.execute(
          fx.opened.db,
        )
      ).rows;
      assert.equal(q.length, 1);
      assert.equal(q[0]!.op_kind, "settle");
      assert.equal(q[0]!.sqlstate, "22021", "invalid byte sequence (the NUL)");
      assert.equal(
        JSON.parse(q[0]!.payload).providerId,
        "prov\u0000evil",
        "the payload keeps the bad value for the operator",
      );
      assert.equal(quarantined.length, 1);
      assert.equal(quarantined[0]!.op.kind, "settle");
      // The writer is not wedged: the next write goes through at once.
      await w.write(reserve("q-after"));
      assert.equal((await row("q-after"))[0]?.state, "reserved");
      assert.equal(w.degraded, false);
    } finally {
      w.close();
    }
  });

  it("retries a transient failure as a whole instead of quarantining anything", async () => {
    const db = fx.opened.db;
    // A trigger that fails with a connection-class error (08006) for one request: transient, so retried.
    await sql`CREATE OR REPLACE FUNCTION flaky_once() RETURNS trigger AS $$
      BEGIN
        IF NEW.request_id = 'flaky' AND NOT EXISTS (SELECT 1 FROM pg_class WHERE relname = 'flaky_seen') THEN
          RAISE EXCEPTION 'simulated connection failure' USING ERRCODE = '08006';
        END IF;
        RETURN NEW;
      END $$ LANGUAGE plpgsql`.execute(db);
    await sql`CREATE TRIGGER flaky_once BEFORE INSERT ON ledger_requests FOR EACH ROW EXECUTE FUNCTION flaky_once()`.execute(
      db,
    );
    const errors: unknown[] = [];
    const w = new EntryWriter({ db, clock: systemClock, retryMs: 20, onError: (e) => errors.push(e) });
    try {
      const written = w.write(reserve("flaky"));
      await eventually(() => errors.length > 0, 5_000, "a failed flush");
      assert.equal(w.degraded, true);
      await sql`CREATE TABLE flaky_seen (x int)`.execute(db);
      await written;
      assert.equal((await row("flaky"))[0]?.state, "reserved");
      const q = await sql<{
        n: bigint;
      }>`SELECT count(*)::int8 AS n FROM ledger_quarantine WHERE request_id = 'flaky'`.execute(db);
      assert.equal(q.rows[0]!.n, 0n);
    } finally {
      w.close();
      await sql`DROP TRIGGER flaky_once ON ledger_requests`.execute(db);
      await sql`DROP TABLE IF EXISTS flaky_seen`.execute(db);
    }
  });
});
