/**
 * `coordinator ledger verify` as an operator runs it: exit 0 when the invariants hold, 1 with the violation
 * listed when they do not, 3 when the database cannot be read (so a monitor can tell "broken" from "unreachable").
 */
import assert from "node:assert/strict";
import { runCoordinatorCli } from "../../support/coordinator-process.js";
import { ledgerFixture, type LedgerFixture } from "./ledger-fixture.js";

describe("coordinator ledger verify (CLI)", function () {
  this.timeout(60_000);
  let fx: LedgerFixture;
  before(async () => {
    fx = await ledgerFixture();
  });
  after(async () => fx?.closeAll());

  it("exits 0 on a consistent ledger, 1 naming the violation once an entry has no request, 3 when unreachable", async () => {
    const ledger = await fx.open();
    const account = await ledger.accounts.createAccount({
      name: "verify-cli",
      tier: "consumer",
      initialCreditMicroUsd: 1_000_000n,
    });
    await ledger.flush();

    const ok = await runCoordinatorCli(["ledger", "verify", "--database-url", fx.testDb.url]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /ledger verify: ok/);

    await fx.opened.db
      .insertInto("ledger_entries")
      .values({
        account_id: account.id,
        kind: "debit",
        amount_micro_usd: -5n,
        request_id: "req_ghost",
        reference: null,
      })
      .execute();
    const broken = await runCoordinatorCli(["ledger", "verify", "--database-url", fx.testDb.url]);
    assert.equal(broken.code, 1, broken.stdout + broken.stderr);
    assert.match(broken.stdout, /entries_match_request: req_ghost state missing/);

    const unreachable = await runCoordinatorCli([
      "ledger",
      "verify",
      "--database-url",
      "postgres://postgres@127.0.0.1:1/nothing",
    ]);
    assert.equal(unreachable.code, 3, unreachable.stdout + unreachable.stderr);
    assert.match(unreachable.stderr, /could not read the ledger/);
  });
});
