import assert from "node:assert/strict";
import { verifyLedger } from "../../../src/ledger/verify-ledger.js";
import { ledgerFixture, reserveInput, settleInput, type LedgerFixture } from "./ledger-fixture.js";
import { setDatabaseReachable } from "../../support/database-reachability.js";

describe("PostgresLedger when Postgres is down", () => {
  let fx: LedgerFixture;
  before(async () => {
    fx = await ledgerFixture();
  });
  after(async () => {
    await setDatabaseReachable(fx.testDb.url, true);
    await fx.closeAll();
  });

  it("serves from leased credit, buffers writes, sheds with retryAfterMs only when the lease is spent, and catches up", async () => {
    const pl = await fx.open({ leaseMicroUsd: 3_000n, durableWaitMs: 200, leaseDrawTimeoutMs: 500, tickMs: 60_000 });
    const provider = (await pl.accounts.createAccount({ name: "p", tier: "service" })).id;
    const acct = await pl.accounts.createAccount({ name: "c", tier: "service", initialCreditMicroUsd: 1_000_000n });
    const { keyId } = await pl.accounts.issueApiKey({ accountId: acct.id });
    // 300 µUSD per reservation; the first reserve draws a 3,000 µUSD lease.
    const warm = reserveInput(acct.id, keyId);
    assert.equal((await pl.ledger.reserve(warm)).ok, true);
    await pl.ledger.settle(settleInput(warm.requestId, provider, 1000, 500));
    await pl.flush();

    await setDatabaseReachable(fx.testDb.url, false);
    const served: string[] = [];
    let shed: { reason: string; retryAfterMs?: number } | undefined;
    for (let i = 0; i < 20 && !shed; i++) {
      const r = reserveInput(acct.id, keyId);
      const res = await pl.ledger.reserve(r);
      if (!res.ok) {
        shed = res;
        break;
      }
      served.push(r.requestId);
      const s = await pl.ledger.settle(settleInput(r.requestId, provider, 1000, 500));
      assert.equal(s.consumerDebitMicroUsd, 300n);
    }
    assert.ok(served.length >= 5, `served ${served.length} from the lease while down`);
    assert.equal(shed?.reason, "unavailable");
    assert.ok((shed?.retryAfterMs ?? 0) > 0);
    assert.equal(pl.status().degraded, true);

    await setDatabaseReachable(fx.testDb.url, true);
    await pl.flush();
    const usage = await pl.usage(acct.id);
    assert.equal(usage.requests, served.length + 1);
    assert.equal(
      (await pl.accounts.getAccount(acct.id))?.balanceMicroUsd,
      1_000_000n - 300n * BigInt(served.length + 1),
    );
    assert.equal((await verifyLedger(fx.opened.db)).ok, true);
  });
});
