/**
 * Claiming a provider serial on a real PostgreSQL: a claim racing a forget (an operator's ForgetProvider while the
 * machine reconnects) returns an identity instead of failing the registration, and two first claims of one
 * serial agree on the winner. The fuzz suite found the first race (test/fuzz/admin-rpcs.test.ts). The account's
 * machine cap is checked in the same statement: at the cap nothing is stored.
 */
import assert from "node:assert/strict";
import { createProviderIdentityStore } from "../../../src/ledger/provider-identities.js";
import { ledgerFixture, type LedgerFixture } from "./ledger-fixture.js";

describe("provider identity claims", function () {
  this.timeout(30_000);
  let fx: LedgerFixture;
  before(async () => {
    fx = await ledgerFixture();
  });
  after(async () => fx?.closeAll());

  it("returns the stored identity when the serial is forgotten at the same moment, and one winner for two first claims", async () => {
    const ledger = await fx.open();
    const owner = await ledger.accounts.createAccount({ name: "owner", tier: "consumer" });
    const { tokenId } = await ledger.accounts.issueProviderToken({ accountId: owner.id });
    const store = createProviderIdentityStore(fx.opened.db);
    const claim = async (serial: string, key: number) => {
      const claimed = await store.claim({
        serial,
        accountId: owner.id,
        publicKey: new Uint8Array(32).fill(key),
        tokenId,
        maxPerAccount: 1_000,
      });
      assert.ok(claimed, "under the cap, a claim returns the stored identity");
      return claimed;
    };

    for (let i = 0; i < 200; i++) {
      const serial = `RACE-${i}`;
      await claim(serial, 1);
      const [claimed] = await Promise.all([claim(serial, 2), store.forget(serial)]);
      assert.equal(claimed.serial, serial);
    }

    const [a, b] = await Promise.all([claim("FIRST-1", 3), claim("FIRST-1", 4)]);
    assert.equal(a.providerId, b.providerId);
    assert.deepEqual(a.publicKey, b.publicKey);
    assert.deepEqual((await store.get("FIRST-1"))?.publicKey, a.publicKey);
  });

  it("stores a claim up to the account's cap and nothing at it", async () => {
    const ledger = await fx.open();
    const owner = await ledger.accounts.createAccount({ name: "capped", tier: "consumer" });
    const other = await ledger.accounts.createAccount({ name: "other", tier: "consumer" });
    const { tokenId } = await ledger.accounts.issueProviderToken({ accountId: owner.id });
    const store = createProviderIdentityStore(fx.opened.db);
    const claim = (serial: string, accountId = owner.id) =>
      store.claim({ serial, accountId, publicKey: new Uint8Array(32).fill(7), tokenId, maxPerAccount: 3 });

    for (const serial of ["CAP-1", "CAP-2", "CAP-3"]) assert.equal((await claim(serial))?.serial, serial);
    assert.equal(await claim("CAP-4"), undefined, "the fourth machine of a 3-machine cap");
    assert.equal(await store.get("CAP-4"), undefined, "nothing stored at the cap");
    assert.equal((await store.listByAccount(owner.id)).length, 3);
    assert.equal((await claim("OTHER-1", other.id))?.accountId, other.id, "the cap is per account");

    assert.ok(await store.forget("CAP-2", owner.id));
    assert.equal((await claim("CAP-4"))?.serial, "CAP-4", "forgetting a machine frees its place");
  });
});
