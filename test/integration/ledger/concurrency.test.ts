import assert from "node:assert/strict";
import { verifyLedger } from "../../../src/ledger/verify-ledger.js";
import { rollupBalances } from "../../../src/ledger/rollup.js";
import { ledgerFixture, reserveInput, settleInput, type LedgerFixture } from "./ledger-fixture.js";

describe("PostgresLedger under concurrency", () => {
  let fx: LedgerFixture;
  before(async () => {
    fx = await ledgerFixture();
  });
  after(async () => {
    await fx.closeAll();
  });

  it("serves 256 concurrent reserve+settle cycles on one account with zero errors and an exact balance", async () => {
    const pl = await fx.open({ leaseMicroUsd: 20_000n });
    const provider = (await pl.accounts.createAccount({ name: "p", tier: "service" })).id;
    const acct = await pl.accounts.createAccount({
      name: "aggregator",
      tier: "service",
      initialCreditMicroUsd: 10_000_000n,
      platformFeeBps: 500,
    });
    const { keyId } = await pl.accounts.issueApiKey({ accountId: acct.id });
    let debited = 0n;
    const errors: string[] = [];
    await Promise.all(
      Array.from({ length: 256 }, async (_, i) => {
        for (let round = 0; round < 4; round++) {
          const r = reserveInput(acct.id, keyId);
          const res = await pl.ledger.reserve(r);
          if (!res.ok) {
            errors.push(res.reason);
            continue;
          }
          const s = await pl.ledger.settle(settleInput(r.requestId, provider, 200 + i, 10 + round));
          debited += s.consumerDebitMicroUsd;
        }
      }),
    );
    assert.deepEqual(errors, []);
    await pl.flush();
    await rollupBalances(fx.opened.db, { lagMs: 0 });
    const after = await pl.accounts.getAccount(acct.id);
    assert.equal(after?.balanceMicroUsd, 10_000_000n - debited);
    assert.equal((await pl.usage(acct.id)).requests, 1024);
    assert.deepEqual(await verifyLedger(fx.opened.db), { ok: true, violations: [], quarantined: [] });
  });

  it("keeps two ledger processes on one account within the balance", async () => {
    const a = await fx.open({ leaseMicroUsd: 3_000n });
    const b = await fx.open({ leaseMicroUsd: 3_000n });
    const provider = (await a.accounts.createAccount({ name: "p", tier: "service" })).id;
    const acct = await a.accounts.createAccount({ name: "small", tier: "service", initialCreditMicroUsd: 10_000n });
    const { keyId } = await a.accounts.issueApiKey({ accountId: acct.id });
    let ok = 0;
    await Promise.all(
      Array.from({ length: 64 }, async (_, i) => {
        const pl = i % 2 ? a : b;
        const r = reserveInput(acct.id, keyId, { promptTokensUpperBound: 1000, maxOutputTokens: 1000 });
        const res = await pl.ledger.reserve(r);
        if (!res.ok) return;
        ok++;
        await pl.ledger.settle(settleInput(r.requestId, provider, 1000, 1000));
      }),
    );
    await a.flush();
    await b.flush();
    // 500 µUSD per request at these prices: at most 20 fit in 10,000 µUSD across both processes.
    assert.ok(ok > 0 && ok <= 20, `ok=${ok}`);
    const after = await a.accounts.getAccount(acct.id);
    assert.ok(after!.balanceMicroUsd >= 0n);
    assert.equal(after!.balanceMicroUsd, 10_000n - BigInt(ok) * 500n);
    assert.equal((await verifyLedger(fx.opened.db)).ok, true);
  });
});
