import assert from "node:assert/strict";
import { CoordinatorError } from "../../../src/errors/coordinator-error.js";
import { UsageQueryGate, USAGE_QUERY_RETRY_AFTER_S } from "../../../src/http/usage-query-gate.js";

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("UsageQueryGate", () => {
  it("shares an identical query in flight, refuses another for the same account, lets other accounts through", async () => {
    const gate = new UsageQueryGate<number>();
    const d = deferred<number>();
    let queries = 0;
    const q = () => {
      queries++;
      return d.promise;
    };
    const a = gate.run("acct_a", 0, q);
    const b = gate.run("acct_a", 0, q);
    assert.throws(
      () => gate.run("acct_a", 5, q),
      (e: unknown) =>
        e instanceof CoordinatorError &&
        e.status === 429 &&
        e.wireCode === "usage_query_in_flight" &&
        e.retryAfterS === USAGE_QUERY_RETRY_AFTER_S,
    );
    assert.throws(() => gate.run("acct_a", 9, q), CoordinatorError);
    const other = gate.run("acct_b", 5, async () => 7);
    assert.equal(queries, 1);
    d.resolve(42);
    assert.deepEqual(await Promise.all([a, b, other]), [42, 42, 7]);
    assert.equal(gate.size, 0);
  });

  it("a failed query frees the account's slot", async () => {
    const gate = new UsageQueryGate<number>();
    await assert.rejects(
      gate.run("acct", 0, async () => {
        throw new Error("database down");
      }),
      /database down/,
    );
    assert.equal(gate.size, 0);
    assert.equal(await gate.run("acct", 1, async () => 3), 3);
  });
});
