import assert from "node:assert/strict";
import { verifyLedger } from "../../../src/ledger/verify-ledger.js";
import { costMicroUsd } from "../../../src/ledger/pricing.js";
import type { PostgresLedger } from "../../../src/ledger/postgres-ledger.js";
import { ledgerFixture, prices, reserveInput, settleInput, type LedgerFixture } from "./ledger-fixture.js";

const price = {
  inputMicroUsdPerMtok: BigInt(prices["test-model"].inputMicroUsdPerMtok),
  outputMicroUsdPerMtok: BigInt(prices["test-model"].outputMicroUsdPerMtok),
};

describe("PostgresLedger on real Postgres", () => {
  let fx: LedgerFixture;
  let pl: PostgresLedger;
  let provider: string;
  before(async () => {
    fx = await ledgerFixture();
    pl = await fx.open({ leaseMicroUsd: 50_000n });
    provider = (await pl.accounts.createAccount({ name: "mac owner", tier: "consumer" })).id;
  });
  after(async () => {
    await fx.closeAll();
  });

  async function consumer(creditMicroUsd: bigint, feeBps = 0, spendCapMicroUsd?: bigint) {
    const acct = await pl.accounts.createAccount({
      name: "c",
      tier: "consumer",
      initialCreditMicroUsd: creditMicroUsd,
      platformFeeBps: feeBps,
    });
    const key = await pl.accounts.issueApiKey({
      accountId: acct.id,
      ...(spendCapMicroUsd !== undefined ? { spendCapMicroUsd } : {}),
    });
    return { accountId: acct.id, keyId: key.keyId, apiKey: key.apiKey };
  }

  it("debits exactly the sum of priced usage over N settled requests and credits provider plus fee", async () => {
    const c = await consumer(1_000_000n, 1000);
    let expected = 0n;
    for (let i = 0; i < 25; i++) {
      const r = reserveInput(c.accountId, c.keyId);
      const res = await pl.ledger.reserve(r);
      assert.equal(res.ok, true);
      const s = await pl.ledger.settle(settleInput(r.requestId, provider, 100 + i, 20 * i));
      const cost = costMicroUsd(price, 100 + i, 20 * i, "consumer");
      assert.equal(s.consumerDebitMicroUsd, cost);
      assert.equal(s.providerCreditMicroUsd + s.platformFeeMicroUsd, cost);
      expected += cost;
    }
    await pl.flush();
    const acct = await pl.accounts.getAccount(c.accountId);
    assert.equal(acct?.balanceMicroUsd, 1_000_000n - expected);
    const usage = await pl.usage(c.accountId);
    assert.equal(usage.requests, 25);
    assert.equal(usage.spentMicroUsd, expected);
    const earned = await pl.accounts.getUsage(provider);
    assert.ok(earned.earnedMicroUsd > 0n);
    assert.deepEqual(await verifyLedger(fx.opened.db), { ok: true, violations: [], quarantined: [] });
  });

  it("leaves the balance unchanged when a request is released", async () => {
    const c = await consumer(300_000n);
    const r = reserveInput(c.accountId, c.keyId);
    assert.equal((await pl.ledger.reserve(r)).ok, true);
    await pl.ledger.release(r.requestId, "provider_failed");
    await pl.flush();
    assert.equal((await pl.accounts.getAccount(c.accountId))?.balanceMicroUsd, 300_000n);
  });

  it("is idempotent: settle twice, release after settle, settle after release, duplicate reserve", async () => {
    const c = await consumer(500_000n);
    const a = reserveInput(c.accountId, c.keyId);
    const first = await pl.ledger.reserve(a);
    const again = await pl.ledger.reserve(a);
    assert.deepEqual(again, first);
    const s1 = await pl.ledger.settle(settleInput(a.requestId, provider, 500, 100));
    const s2 = await pl.ledger.settle(settleInput(a.requestId, provider, 900, 900));
    assert.deepEqual(s2, s1);
    await pl.ledger.release(a.requestId, "late");
    const b = reserveInput(c.accountId, c.keyId);
    await pl.ledger.reserve(b);
    await pl.ledger.release(b.requestId, "failed");
    const sb = await pl.ledger.settle(settleInput(b.requestId, provider, 500, 100));
    assert.equal(sb.consumerDebitMicroUsd, 0n);
    await pl.flush();
    assert.equal((await pl.accounts.getAccount(c.accountId))?.balanceMicroUsd, 500_000n - s1.consumerDebitMicroUsd);
    assert.equal((await verifyLedger(fx.opened.db)).ok, true);
  });

  it("answers 402 insufficient_balance when the balance cannot cover the reservation", async () => {
    const c = await consumer(100n);
    const res = await pl.ledger.reserve(reserveInput(c.accountId, c.keyId));
    assert.equal(res.ok, false);
    assert.equal(!res.ok && res.reason, "insufficient_balance");
  });

  it("enforces a per-key spend cap with reason spend_cap", async () => {
    const perRequest = costMicroUsd(price, 1000, 500, "consumer");
    const c = await consumer(1_000_000n, 0, perRequest * 2n);
    const r1 = reserveInput(c.accountId, c.keyId);
    const r2 = reserveInput(c.accountId, c.keyId);
    assert.equal((await pl.ledger.reserve(r1)).ok, true);
    assert.equal((await pl.ledger.reserve(r2)).ok, true);
    const third = await pl.ledger.reserve(reserveInput(c.accountId, c.keyId));
    assert.equal(!third.ok && third.reason, "spend_cap");
    await pl.ledger.release(r1.requestId, "x");
    assert.equal((await pl.ledger.reserve(reserveInput(c.accountId, c.keyId))).ok, true);
  });

  it("authenticates keys by hash, caches them, and forgets a revoked key at once", async () => {
    const c = await consumer(1000n);
    const p = await pl.accounts.authenticate(c.apiKey);
    assert.equal(p?.accountId, c.accountId);
    const stored = await fx.opened.db
      .selectFrom("api_keys")
      .select("key_hash")
      .where("id", "=", c.keyId)
      .executeTakeFirstOrThrow();
    assert.notEqual(stored.key_hash, c.apiKey);
    await pl.accounts.revokeApiKey(c.keyId);
    assert.equal(await pl.accounts.authenticate(c.apiKey), undefined);
    assert.equal(await pl.accounts.authenticate("sk-nope"), undefined);
    const t = await pl.accounts.issueProviderToken({ accountId: provider });
    assert.equal((await pl.accounts.authenticateProvider(t.token))?.accountId, provider);
  });

  it("uses a stored model price over the default", async () => {
    await pl.accounts.setModelPrice("test-model-2", 1_000_000n, 2_000_000n);
    const c = await consumer(1_000_000n);
    const r = reserveInput(c.accountId, c.keyId, { model: "test-model-2" });
    await pl.ledger.reserve(r);
    const s = await pl.ledger.settle({ ...settleInput(r.requestId, provider, 500, 250), model: "test-model-2" });
    assert.equal(s.consumerDebitMicroUsd, 1000n);
  });
});
