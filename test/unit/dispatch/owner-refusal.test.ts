/**
 * Cluster mode: the coordinator that owns a Mac refuses a request picked from a stale mirror. The refusal is not
 * a failed attempt (the Mac did nothing): the same Mac stays eligible, nothing is billed or counted against the
 * failover bounds, and the request is picked again, up to MAX_OWNER_REFUSALS times; one more refusal counts as
 * a capacity failure, so a view that keeps disagreeing with the owner cannot loop.
 */
import assert from "node:assert/strict";
import { MAX_OWNER_REFUSALS } from "../../../src/dispatch/request-run.js";
import { complete, flush, harness } from "../../support/dispatch-harness.js";

const refused = { kind: "refused", message: "owner n1 refused: all_busy" } as const;

describe("owner refusals (cluster mode)", () => {
  it("picks again without excluding the refused Mac, and it may then serve the request", async () => {
    const h = harness(["a"]);
    const { sink, result } = h.run();
    await flush();
    const a = h.channels.get("a")!;
    a.emit(refused);
    await flush();
    assert.equal(a.sent.length, 2, "picked again: the same Mac, since it is not excluded");
    assert.equal(h.picks[1]!.exclude.has(a.providerId), false);
    assert.deepEqual(a.cancels, [], "a refused attempt is not cancelled (it never started)");
    a.emit({ kind: "chunk", deltas: [{ kind: "content", text: "hi" }] });
    a.emit(complete);
    const r = await result;
    assert.equal(r.kind, "completed");
    assert.equal(r.kind === "completed" ? r.attempts : -1, 1, "only the attempt that ran counts");
    assert.equal(sink.committedTo, a.providerId);
  });

  it(`takes ${MAX_OWNER_REFUSALS} refusals; one more is a capacity failure that excludes the Mac`, async () => {
    const h = harness(["a", "b"]);
    const { result } = h.run();
    await flush();
    const a = h.channels.get("a")!;
    for (let i = 0; i < MAX_OWNER_REFUSALS; i++) {
      a.emit(refused);
      await flush();
    }
    assert.equal(a.sent.length, MAX_OWNER_REFUSALS + 1, "each refusal up to the bound is picked again");
    assert.equal(h.channels.get("b")!.sent.length, 0);
    a.emit(refused);
    await flush();
    assert.equal(a.sent.length, MAX_OWNER_REFUSALS + 1, "past the bound the Mac is not asked again");
    const b = h.channels.get("b")!;
    assert.equal(b.sent.length, 1, "the next candidate is tried");
    b.emit({ kind: "chunk", deltas: [{ kind: "content", text: "x" }] });
    b.emit(complete);
    assert.equal((await result).kind, "completed");
  });
});
