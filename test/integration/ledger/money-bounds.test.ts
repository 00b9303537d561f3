/**
 * Money bounds and an isolated roll-up (issue 13): crediting INT64_MAX twice used to make that account unreadable
 * and fail the balance roll-up of every account every minute, and `ledger verify` did not notice. Credits are now
 * bounded so no sum can leave int8; a ledger that already holds such an account (written before the bounds, or by
 * hand) has it reported by `verifyLedger` while every other account keeps rolling up.
 */
import assert from "node:assert/strict";
import { sql } from "kysely";
import { CoordinatorError } from "../../../src/errors/coordinator-error.js";
import { MAX_TOTAL_CREDIT_MICRO_USD } from "../../../src/ledger/money-bounds.js";
import type { PostgresLedger } from "../../../src/ledger/postgres-ledger.js";
import { rollupBalances } from "../../../src/ledger/rollup.js";
import { verifyLedger } from "../../../src/ledger/verify-ledger.js";
import { ledgerFixture, type LedgerFixture } from "./ledger-fixture.js";

const INT64_MAX = 2n ** 63n - 1n;

describe("ledger money bounds and roll-up isolation", function () {
  this.timeout(60_000);
  let fx: LedgerFixture;
  let pl: PostgresLedger;
  before(async () => {
    fx = await ledgerFixture();
    pl = await fx.open();
  });
  after(async () => fx?.closeAll());

  const code = (c: string, text?: RegExp) => (e: unknown) =>
    e instanceof CoordinatorError && e.code === c && (text === undefined || text.test(e.message));
  const backdate = () => sql`UPDATE ledger_entries SET created_at = now() - interval '1 hour'`.execute(fx.opened.db);

  it("never lets two concurrent credits pass the balance ceiling together: one of them is refused", async () => {
    const a = await pl.accounts.createAccount({ name: "racing credits", tier: "service" });
    await fx.opened.db
      .insertInto("ledger_entries")
      .values({
        account_id: a.id,
        kind: "credit",
        amount_micro_usd: 10n ** 17n - 10n ** 15n,
        request_id: null,
        reference: "seed-race",
      })
      .execute();
    const results = await Promise.allSettled([
      pl.accounts.creditAccount(a.id, 10n ** 15n, "race-1"),
      pl.accounts.creditAccount(a.id, 10n ** 15n, "race-2"),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
    const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    assert.ok(code("invalid_request", /ceiling/)(refused.reason), String(refused.reason));
    assert.equal((await pl.accounts.getAccount(a.id))?.balanceMicroUsd, 10n ** 17n);
  });

  it("refuses a credit at the store itself when it is out of range or its reference is taken", async () => {
    const a = await pl.accounts.createAccount({ name: "store checks", tier: "consumer" });
    await assert.rejects(pl.accounts.creditAccount(a.id, INT64_MAX, "store-max"), code("invalid_request"));
    await assert.rejects(pl.accounts.creditAccount(a.id, -5n, "store-negative"), code("invalid_request"));
    await assert.rejects(pl.accounts.creditAccount("acct_missing", 5n, "store-missing"), code("not_found"));
    await pl.accounts.creditAccount(a.id, 5n, "store-ref");
    await assert.rejects(pl.accounts.creditAccount(a.id, 6n, "store-ref"), code("already_exists"));
  });

  it("rolls every other account up when one account's sum leaves the int8 range, and reports that account", async () => {
    const good = await pl.accounts.createAccount({ name: "good", tier: "consumer", initialCreditMicroUsd: 1_000n });
    const bad = await pl.accounts.createAccount({ name: "overflowed", tier: "consumer" });
    // What two INT64_MAX credits did before the bounds (written by hand: the API refuses them now).
    for (const ref of ["legacy-1", "legacy-2"]) {
      await fx.opened.db
        .insertInto("ledger_entries")
        .values({ account_id: bad.id, kind: "credit", amount_micro_usd: INT64_MAX, request_id: null, reference: ref })
        .execute();
    }
    await backdate();
    const failed: string[] = [];
    const moved = await rollupBalances(fx.opened.db, { lagMs: 0, onAccountFailed: (id) => failed.push(id) });
    assert.ok(moved >= 1, `moved ${moved}`);
    assert.deepEqual(failed, [bad.id]);
    assert.equal(
      (await pl.accounts.getAccount(good.id))?.balanceMicroUsd,
      1_000n,
      "the good account reads from its new snapshot",
    );
    const snap = await fx.opened.db
      .selectFrom("balance_snapshots")
      .selectAll()
      .where("account_id", "=", good.id)
      .executeTakeFirst();
    assert.equal(snap?.balance_micro_usd, 1_000n);
    assert.equal(
      await fx.opened.db
        .selectFrom("balance_snapshots")
        .select("account_id")
        .where("account_id", "=", bad.id)
        .executeTakeFirst(),
      undefined,
    );

    // verify names the account, as a balance out of range and (once a ledger process has run long enough) as a
    // roll-up that has fallen behind.
    await sql`UPDATE ledger_holders SET started_at = now() - interval '1 hour' WHERE id = ${pl.holderId}`.execute(
      fx.opened.db,
    );
    const v = await verifyLedger(fx.opened.db, { rollupBehindMs: 60_000 });
    assert.equal(v.ok, false);
    assert.ok(
      v.violations.some((x) => x.startsWith(`balance_range: ${bad.id} balance 18446744073709551614`)),
      v.violations.join("\n"),
    );
    assert.ok(
      v.violations.some((x) => x.startsWith(`rollup_behind: ${bad.id}: 2 entries`)),
      v.violations.join("\n"),
    );
    assert.ok(!v.violations.some((x) => x.includes(good.id)), v.violations.join("\n"));

    // Once an operator removes the bad entries, the roll-up and verify are clean again.
    await fx.opened.db.deleteFrom("ledger_entries").where("account_id", "=", bad.id).execute();
    failed.length = 0;
    await rollupBalances(fx.opened.db, { lagMs: 0, onAccountFailed: (id) => failed.push(id) });
    assert.deepEqual(failed, []);
    const clean = await verifyLedger(fx.opened.db, { rollupBehindMs: 60_000 });
    assert.deepEqual(clean.violations, []);
  });

  it("creates an account once per request_id: a retry returns it credited once, a different account is refused", async () => {
    const input = {
      name: "retried",
      tier: "service" as const,
      initialCreditMicroUsd: 7_000n,
      requestId: "op-create-1",
    };
    const first = await pl.accounts.createAccount(input);
    const again = await pl.accounts.createAccount(input);
    assert.equal(again.id, first.id);
    assert.equal(again.balanceMicroUsd, 7_000n);
    // Concurrent retries race on the unique key: one account, one credit.
    const racing = { ...input, requestId: "op-create-2" };
    const ids = await Promise.all([1, 2, 3].map(() => pl.accounts.createAccount(racing)));
    assert.equal(new Set(ids.map((a) => a.id)).size, 1);
    assert.equal(ids[0]!.balanceMicroUsd, 7_000n);
    for (const other of [{ name: "renamed" }, { initialCreditMicroUsd: 8_000n }, { tier: "consumer" as const }])
      await assert.rejects(
        pl.accounts.createAccount({ ...input, ...other }),
        code("already_exists", /request_id/),
        Object.keys(other).join(),
      );
    assert.equal((await pl.accounts.getAccount(first.id))?.balanceMicroUsd, 7_000n);
  });

  it("refuses a credit that would take all credits ever made past 10^18 µUSD", async () => {
    const a = await pl.accounts.createAccount({ name: "total ceiling", tier: "service" });
    const b = await pl.accounts.createAccount({ name: "total ceiling 2", tier: "service" });
    const row = await fx.opened.db
      .selectFrom("ledger_entries")
      .select((eb) => eb.fn.sum<string>("amount_micro_usd").as("total"))
      .where("kind", "=", "credit")
      .executeTakeFirst();
    const total = BigInt(row?.total ?? 0);
    // Fill the ledger to 10^15 below the ceiling, spread so no balance passes its own ceiling.
    let left = MAX_TOTAL_CREDIT_MICRO_USD - total - 10n ** 15n;
    for (let i = 0; left > 0n; i++) {
      const filler = await pl.accounts.createAccount({ name: `filler ${i}`, tier: "service" });
      const amount = left < 10n ** 17n ? left : 10n ** 17n;
      await fx.opened.db
        .insertInto("ledger_entries")
        .values({
          account_id: filler.id,
          kind: "credit",
          amount_micro_usd: amount,
          request_id: null,
          reference: `filler-${i}`,
        })
        .execute();
      left -= amount;
    }
    await pl.accounts.creditAccount(a.id, 10n ** 15n, "last-allowed");
    await assert.rejects(
      pl.accounts.creditAccount(b.id, 1n, "one-too-many"),
      code("invalid_request", /all credits ever made/),
    );
    // CreateAccount funds in the same transaction: a refused opening credit leaves no unfunded account behind.
    const accounts = async () =>
      Number((await sql<{ n: string }>`SELECT count(*)::text AS n FROM accounts`.execute(fx.opened.db)).rows[0]!.n);
    const before = await accounts();
    for (const requestId of [undefined, "ceiling-create"])
      await assert.rejects(
        pl.accounts.createAccount({
          name: "too late",
          tier: "consumer",
          initialCreditMicroUsd: 1n,
          ...(requestId ? { requestId } : {}),
        }),
        code("invalid_request", /all credits ever made/),
      );
    assert.equal(await accounts(), before);
  });
});
