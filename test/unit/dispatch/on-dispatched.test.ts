/**
 * `DispatchJob.onDispatched` marks the moment a request's money must become traceable: the first attempt sent
 * to a provider. It fires exactly once however many attempts follow, and never for a request that no provider
 * received (the HTTP layer writes the request's ledger row from it; issue 13, item 4).
 */
import assert from "node:assert/strict";
import { complete, flush, harness } from "../../support/dispatch-harness.js";

describe("DispatchJob.onDispatched", () => {
  it("fires once, when the first attempt is sent, however many failovers follow", async () => {
    const h = harness(["a", "b"]);
    let calls = 0;
    const { result } = h.run({ onDispatched: () => void calls++ });
    await flush();
    assert.equal(h.channels.get("a")!.sent.length, 1);
    assert.equal(calls, 1);
    h.clock.advance(1_001); // first-token deadline: fail over to b
    await flush();
    assert.equal(h.channels.get("b")!.sent.length, 1);
    h.channels.get("b")!.emit(complete);
    assert.equal((await result).kind, "completed");
    assert.equal(calls, 1);
  });

  it("does not fire when no provider can take the request", async () => {
    const h = harness([]);
    let calls = 0;
    const r = await h.run({ onDispatched: () => void calls++ }).result;
    assert.equal(r.kind, "failed");
    assert.equal(r.attempts, 0);
    assert.equal(calls, 0);
  });

  it("does not fire when the provider session is already closed and nobody else is left", async () => {
    const h = harness(["a"]);
    h.channels.get("a")!.dispatch = () => false;
    let calls = 0;
    const r = await h.run({ onDispatched: () => void calls++ }).result;
    assert.equal(r.kind, "failed");
    assert.equal(calls, 0);
  });
});
