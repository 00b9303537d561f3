import assert from "node:assert/strict";
import fc from "fast-check";
import { verifyLedger } from "../../../src/ledger/verify-ledger.js";
import type { PostgresLedger } from "../../../src/ledger/postgres-ledger.js";
import { ledgerFixture, reserveInput, settleInput, type LedgerFixture } from "./ledger-fixture.js";

type Op = { kind: "reserve" | "settle" | "release"; req: number; completion: number };

describe("PostgresLedger properties", () => {
  let fx: LedgerFixture;
  let pl: PostgresLedger;
  let provider: string;
  before(async () => {
    fx = await ledgerFixture();
    pl = await fx.open({ leaseMicroUsd: 1_500n });
    provider = (await pl.accounts.createAccount({ name: "p", tier: "service" })).id;
  });
  after(async () => {
    await fx.closeAll();
  });

  it("keeps balance = credit - settled debits, one outcome per request, and every invariant, for any order of duplicated operations", async () => {
    const opArb = fc.record({
      kind: fc.constantFrom("reserve", "settle", "release"),
      req: fc.integer({ min: 0, max: 5 }),
      completion: fc.integer({ min: 0, max: 600 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 30 }), fc.boolean(), async (ops: Op[], concurrent) => {
        const acct = await pl.accounts.createAccount({ name: "prop", tier: "consumer", initialCreditMicroUsd: 2_000n });
        const { keyId } = await pl.accounts.issueApiKey({ accountId: acct.id });
        const ids = Array.from({ length: 6 }, () => reserveInput(acct.id, keyId));
        const outcome = new Map<string, bigint>(); // first resolution's debit, per request
        const run = async (op: Op) => {
          const r = ids[op.req]!;
          if (op.kind === "reserve") await pl.ledger.reserve(r);
          else if (op.kind === "release") await pl.ledger.release(r.requestId, "x");
          else {
            try {
              const s = await pl.ledger.settle(settleInput(r.requestId, provider, 300, op.completion));
              const first = outcome.get(r.requestId);
              if (first === undefined) outcome.set(r.requestId, s.consumerDebitMicroUsd);
              else assert.equal(s.consumerDebitMicroUsd, first, "a duplicate settle returns the first outcome");
            } catch {
              // settle before any reserve: unknown request, nothing recorded
            }
          }
        };
        if (concurrent) await Promise.all(ops.map(run));
        else for (const op of ops) await run(op);
        // Resolve leftovers so the account's balance is final.
        for (const r of ids) await pl.ledger.release(r.requestId, "end");
        await pl.flush();
        const { rows } = await fx.opened.db
          .selectFrom("ledger_requests")
          .select(["request_id", "state", "consumer_debit_micro_usd"])
          .where("account_id", "=", acct.id)
          .execute()
          .then((rows) => ({ rows }));
        const settledSum = rows
          .filter((r) => r.state === "settled")
          .reduce((s, r) => s + r.consumer_debit_micro_usd, 0n);
        const balance = (await pl.accounts.getAccount(acct.id))!.balanceMicroUsd;
        assert.equal(balance, 2_000n - settledSum);
        assert.ok(balance >= 0n);
        assert.equal(rows.filter((r) => r.state === "reserved").length, 0);
        const v = await verifyLedger(fx.opened.db);
        assert.deepEqual(v.violations, []);
      }),
      { numRuns: 40 },
    );
  });
});
