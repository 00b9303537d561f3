/**
 * A reservation holds credit in memory and writes its `ledger_requests` row only once the request reaches a
 * provider (`recordDispatch`) or settles, so a refusal before dispatch costs nothing durable (issue 13, item 4).
 * A crash with such reservations in flight loses nothing: their credit sat inside a lease, which recovery closes.
 */
import assert from "node:assert/strict";
import { sql } from "kysely";
import { verifyLedger } from "../../../src/ledger/verify-ledger.js";
import { ledgerFixture, reserveInput, settleInput, type LedgerFixture } from "./ledger-fixture.js";

async function rows(fx: LedgerFixture, accountId: string): Promise<Record<string, string>> {
  const { rows } = await sql<{ request_id: string; state: string; release_reason: string | null }>`
    SELECT request_id, state, release_reason FROM ledger_requests WHERE account_id = ${accountId}`.execute(
    fx.opened.db,
  );
  return Object.fromEntries(
    rows.map((r) => [r.request_id, r.release_reason ? `${r.state}:${r.release_reason}` : r.state]),
  );
}

describe("PostgresLedger reservation rows", () => {
  let fx: LedgerFixture;
  beforeEach(async () => {
    fx = await ledgerFixture();
  });
  afterEach(async () => {
    await fx.closeAll();
  });

  it("holds credit in memory and writes a row only for requests that reached a provider or settled", async () => {
    const pl = await fx.open();
    const provider = (await pl.accounts.createAccount({ name: "p", tier: "service" })).id;
    // 300 µUSD per reservation (1,000 prompt + 500 output tokens at the fixture's prices): room for three.
    const acct = await pl.accounts.createAccount({ name: "c", tier: "service", initialCreditMicroUsd: 900n });
    const { keyId } = await pl.accounts.issueApiKey({ accountId: acct.id });
    const [dispatched, refused, settled] = [
      reserveInput(acct.id, keyId),
      reserveInput(acct.id, keyId),
      reserveInput(acct.id, keyId),
    ];
    for (const r of [dispatched, refused, settled]) assert.equal((await pl.ledger.reserve(r)).ok, true);
    const fourth = await pl.ledger.reserve(reserveInput(acct.id, keyId));
    assert.equal(fourth.ok, false, "unwritten reservations still hold their credit");
    await pl.flush();
    assert.deepEqual(await rows(fx, acct.id), {}, "nothing is written at reserve time");

    pl.ledger.recordDispatch(dispatched.requestId);
    pl.ledger.recordDispatch(dispatched.requestId);
    await pl.ledger.release(refused.requestId, "capacity_exhausted");
    pl.ledger.recordDispatch(refused.requestId); // after its release: nothing to record
    await pl.ledger.settle(settleInput(settled.requestId, provider, 1000, 250));
    await pl.flush();
    assert.deepEqual(await rows(fx, acct.id), { [dispatched.requestId]: "reserved", [settled.requestId]: "settled" });

    await pl.ledger.release(dispatched.requestId, "provider_failed");
    await pl.flush();
    assert.deepEqual(await rows(fx, acct.id), {
      [dispatched.requestId]: "released:provider_failed",
      [settled.requestId]: "settled",
    });
    assert.equal((await pl.accounts.getAccount(acct.id))?.balanceMicroUsd, 900n - 200n);
    assert.deepEqual(await verifyLedger(fx.opened.db), { ok: true, violations: [], quarantined: [] });
  });

  it("after a crash, recovery returns the credit of reservations that never wrote a row with their lease", async () => {
    // No housekeeping tick during the test: the process looks dead as soon as its heartbeat ages.
    const dying = await fx.open({ tickMs: 600_000 });
    const provider = (await dying.accounts.createAccount({ name: "p", tier: "service" })).id;
    const acct = await dying.accounts.createAccount({ name: "c", tier: "service", initialCreditMicroUsd: 1_000_000n });
    const { keyId } = await dying.accounts.issueApiKey({ accountId: acct.id });
    const [queued, inFlight, done] = [
      reserveInput(acct.id, keyId),
      reserveInput(acct.id, keyId),
      reserveInput(acct.id, keyId),
    ];
    for (const r of [queued, inFlight, done]) assert.equal((await dying.ledger.reserve(r)).ok, true);
    dying.ledger.recordDispatch(inFlight.requestId);
    await dying.ledger.settle(settleInput(done.requestId, provider, 1000, 250));
    await dying.flush();
    assert.deepEqual(await rows(fx, acct.id), { [inFlight.requestId]: "reserved", [done.requestId]: "settled" });

    // `dying` is never closed from here: another process finds it silent and recovers it, as after kill -9.
    await new Promise((r) => setTimeout(r, 20));
    const survivor = await fx.open();
    const report = await survivor.recover({ holderStaleMs: 0 });
    assert.equal(report.reservationsReleased, 1, "only the dispatched request had a row to release");
    assert.equal(report.leasesClosed, 1);
    assert.deepEqual(await rows(fx, acct.id), {
      [inFlight.requestId]: "released:recovered",
      [done.requestId]: "settled",
    });
    assert.equal(
      (await survivor.accounts.getAccount(acct.id))?.balanceMicroUsd,
      1_000_000n - 200n,
      "only the settled request is paid",
    );
    assert.deepEqual(await verifyLedger(fx.opened.db, { holderStaleMs: 0 }), {
      ok: true,
      violations: [],
      quarantined: [],
    });
    // The whole balance can be leased again: nothing is parked by the dead process.
    const all = reserveInput(acct.id, keyId, { promptTokensUpperBound: 1_000_000, maxOutputTokens: 2_000_000 }); // 900,000 µUSD
    assert.equal((await survivor.ledger.reserve(all)).ok, true);
    await survivor.ledger.release(all.requestId, "done");
  });
});
