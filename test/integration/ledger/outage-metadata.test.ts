/**
 * Issue 13, item 2: an outage longer than the ledger's metadata and key-cache TTLs. Account tier/fee and key
 * caps are refreshed every `metaTtlMs`, API keys every `ttlMs`; a refresh that fails must keep what the process
 * knows, so the lease (not a cache expiring) decides how long an account is served while PostgreSQL is down.
 */
import assert from "node:assert/strict";
import { verifyLedger } from "../../../src/ledger/verify-ledger.js";
import { setDatabaseReachable } from "../../support/database-reachability.js";
import { ledgerFixture, reserveInput, settleInput, type LedgerFixture } from "./ledger-fixture.js";

describe("PostgresLedger when Postgres stays down past its cache TTLs", () => {
  let fx: LedgerFixture;
  let down = false;
  before(async () => {
    fx = await ledgerFixture();
  });
  after(async () => {
    if (down) await setDatabaseReachable(fx.testDb.url, true);
    await fx.closeAll();
  });

  it("keeps resolving known keys and serving their accounts from the lease; keys never verified and accounts without a lease are refused", async () => {
    const pl = await fx.open({
      leaseMicroUsd: 100_000n,
      metaTtlMs: 50,
      tickMs: 60_000,
      durableWaitMs: 200,
      leaseDrawTimeoutMs: 500,
      apiKeyCache: { ttlMs: 50 },
    });
    const provider = (await pl.accounts.createAccount({ name: "p", tier: "service" })).id;
    const acct = await pl.accounts.createAccount({
      name: "c",
      tier: "service",
      initialCreditMicroUsd: 1_000_000n,
      platformFeeBps: 1_000,
    });
    const { keyId, apiKey } = await pl.accounts.issueApiKey({ accountId: acct.id, spendCapMicroUsd: 500_000n });
    const other = await pl.accounts.createAccount({
      name: "other",
      tier: "service",
      initialCreditMicroUsd: 1_000_000n,
    });
    const otherKey = await pl.accounts.issueApiKey({ accountId: other.id });

    assert.equal((await pl.accounts.authenticate(apiKey))?.keyId, keyId);
    const warm = reserveInput(acct.id, keyId);
    assert.equal((await pl.ledger.reserve(warm)).ok, true);
    await pl.ledger.settle(settleInput(warm.requestId, provider, 1000, 500));
    await pl.flush();

    await setDatabaseReachable(fx.testDb.url, false);
    down = true;
    await new Promise((r) => setTimeout(r, 150)); // every TTL above has passed
    assert.equal((await pl.accounts.authenticate(apiKey))?.keyId, keyId, "a known key resolves from the cache");
    await assert.rejects(
      pl.accounts.authenticate(otherKey.apiKey),
      "a key this process never verified cannot be vouched for",
    );
    const served: string[] = [];
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 60)); // past metaTtlMs before every reservation
      const r = reserveInput(acct.id, keyId);
      const res = await pl.ledger.reserve(r);
      assert.equal(res.ok ? "ok" : res.reason, "ok", `reservation ${i} while down`);
      served.push(r.requestId);
      const s = await pl.ledger.settle(settleInput(r.requestId, provider, 1000, 500));
      assert.equal(s.platformFeeMicroUsd, 30n, "the account's fee is still known");
    }
    const never = await pl.ledger.reserve(reserveInput(other.id, otherKey.keyId));
    assert.equal(
      never.ok ? "ok" : never.reason,
      "unavailable",
      "an account with no lease here is shed, not served on credit it never leased",
    );

    await setDatabaseReachable(fx.testDb.url, true);
    down = false;
    await pl.flush();
    assert.equal((await pl.usage(acct.id)).requests, served.length + 1);
    assert.deepEqual(await verifyLedger(fx.opened.db), { ok: true, violations: [], quarantined: [] });
  });
});
