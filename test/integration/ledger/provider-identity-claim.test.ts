/**
 * Claiming a provider serial on a real PostgreSQL: a claim racing a forget (an operator's ForgetProvider while the
 * machine reconnects) returns an identity instead of failing the registration, and two first claims of one
 * serial agree on the winner. The fuzz suite found the first race (test/fuzz/admin-rpcs.test.ts).
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
    const claim = (serial: string, key: number) =>
      store.claim({ serial, accountId: owner.id, publicKey: new Uint8Array(32).fill(key), tokenId });

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
});
