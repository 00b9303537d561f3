import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { sql } from "kysely";
import { verifyLedger } from "../../../src/ledger/verify-ledger.js";
import { ledgerFixture, type LedgerFixture } from "./ledger-fixture.js";

const childScript = fileURLToPath(new URL("./crash-child.ts", import.meta.url));

describe("PostgresLedger crash safety", () => {
  let fx: LedgerFixture;
  before(async () => {
    fx = await ledgerFixture();
  });
  after(async () => {
    await fx.closeAll();
  });

  it("recovers every open reservation and lease after kill -9 mid-load, charging nothing twice", async () => {
    const pl = await fx.open();
    const provider = (await pl.accounts.createAccount({ name: "p", tier: "service" })).id;
    const acct = await pl.accounts.createAccount({ name: "c", tier: "service", initialCreditMicroUsd: 5_000_000n });
    const { keyId } = await pl.accounts.issueApiKey({ accountId: acct.id });

    const child = spawn(process.execPath, ["--import", "tsx", childScript, fx.opened.url, acct.id, keyId, provider], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
      child.once("exit", (code) => reject(new Error(`child exited early with ${code}`)));
    });
    await new Promise((r) => setTimeout(r, 200));
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));

    const db = fx.opened.db;
    const before = await verifyLedger(db, { holderStaleMs: 0 });
    assert.equal(before.ok, false, "the killed process must leave open reservations or leases behind");

    const report = await pl.recover({ holderStaleMs: 0 });
    assert.ok(report.holdersRecovered >= 1);
    assert.ok(report.leasesClosed >= 1);
    const again = await pl.recover({ holderStaleMs: 0 });
    assert.equal(again.reservationsReleased + again.leasesClosed, 0, "recovery runs exactly once");

    assert.deepEqual(await verifyLedger(db, { holderStaleMs: 0 }), { ok: true, violations: [], quarantined: [] });
    const { rows } = await sql<{ settled: bigint; debits: bigint; debit_entries: bigint; total: bigint }>`
      SELECT (SELECT count(*) FROM ledger_requests WHERE account_id = ${acct.id} AND state = 'settled' AND consumer_debit_micro_usd > 0)::int8 AS settled,
             (SELECT coalesce(sum(consumer_debit_micro_usd), 0) FROM ledger_requests WHERE account_id = ${acct.id} AND state = 'settled')::int8 AS debits,
             (SELECT count(*) FROM ledger_entries WHERE account_id = ${acct.id} AND kind = 'debit')::int8 AS debit_entries,
             (SELECT count(*) FROM ledger_requests WHERE account_id = ${acct.id} AND state = 'reserved')::int8 AS total`.execute(
      db,
    );
    const r = rows[0]!;
    assert.ok(r.settled > 100n);
    assert.equal(r.debit_entries, r.settled, "exactly one debit entry per settled request");
    assert.equal(r.total, 0n, "no open reservation after recovery");
    assert.equal((await pl.accounts.getAccount(acct.id))?.balanceMicroUsd, 5_000_000n - r.debits);
  });
});
