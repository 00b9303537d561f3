import assert from "node:assert/strict";
import { DivergenceTracker } from "../../../src/usage/divergence-tracker.js";

describe("DivergenceTracker", () => {
  it("has no penalty for unknown or consistently honest providers", () => {
    const t = new DivergenceTracker();
    assert.equal(t.penalty("p"), 1);
    for (let i = 0; i < 50; i++) assert.deepEqual(t.record("p", false), { routingPenalty: 1, fence: false });
    assert.equal(t.penalty("p"), 1);
  });

  it("raises the routing penalty with the over-claim fraction of the 20-request window and fences at the fifth", () => {
    const t = new DivergenceTracker();
    const verdicts = [1, 2, 3, 4, 5].map(() => t.record("p", true));
    assert.deepEqual(
      verdicts.map((v) => [v.routingPenalty, v.fence]),
      [
        [1.2, false],
        [1.4, false],
        [1.6, false],
        [1.8, false],
        [2, true],
      ],
    );
    assert.equal(t.penalty("p"), 2);
    for (let i = 0; i < 15; i++) t.record("p", true);
    assert.deepEqual(t.record("p", true), { routingPenalty: 5, fence: true }); // 20 of the last 20
  });

  it("forgets over-claims that slide out of the window", () => {
    const t = new DivergenceTracker();
    for (let i = 0; i < 5; i++) t.record("p", true);
    for (let i = 0; i < 15; i++)
      assert.equal(t.record("p", false).fence, true, `still 5 in the window after ${i + 1} clean`);
    assert.deepEqual(t.record("p", false), { routingPenalty: 1.8, fence: false }); // the oldest slid out: 4 left
    for (let i = 0; i < 4; i++) t.record("p", false);
    assert.equal(t.penalty("p"), 1);
  });

  it("judges each provider on its own window", () => {
    const t = new DivergenceTracker();
    for (let i = 0; i < 5; i++) t.record("liar", true);
    assert.equal(t.record("honest", false).fence, false);
    assert.equal(t.penalty("honest"), 1);
    assert.equal(t.penalty("liar"), 2);
  });

  it("forget() drops a provider's history", () => {
    const t = new DivergenceTracker();
    for (let i = 0; i < 5; i++) t.record("p", true);
    t.forget("p");
    assert.equal(t.penalty("p"), 1);
    assert.deepEqual(t.record("p", false), { routingPenalty: 1, fence: false });
  });

  it("bounds memory by dropping the least recently settled provider past maxProviders", () => {
    const t = new DivergenceTracker({ maxProviders: 3 });
    for (const id of ["a", "b", "c"]) t.record(id, true);
    t.record("a", true); // a is now the most recent; b the least
    t.record("d", true);
    assert.equal(t.snapshot().tracked, 3);
    assert.deepEqual([t.penalty("a"), t.penalty("b"), t.penalty("c"), t.penalty("d")], [1.4, 1, 1.2, 1.2]);
  });

  it("snapshots providers with over-claims in their window, worst first, for the ops view", () => {
    const t = new DivergenceTracker();
    t.record("clean", false);
    t.record("once", true);
    for (let i = 0; i < 6; i++) t.record("often", i % 2 === 0);
    assert.deepEqual(t.snapshot(), {
      tracked: 3,
      providers: [
        { providerId: "often", settled: 6, overClaims: 3, routingPenalty: 1.6, fence: false },
        { providerId: "once", settled: 1, overClaims: 1, routingPenalty: 1.2, fence: false },
      ],
    });
  });

  it("takes its window, fence threshold and penalty weight from options", () => {
    const t = new DivergenceTracker({ windowSize: 4, fenceOverClaims: 2, penaltyWeight: 2 });
    assert.deepEqual(t.record("p", true), { routingPenalty: 1.5, fence: false });
    assert.deepEqual(t.record("p", true), { routingPenalty: 2, fence: true });
    for (let i = 0; i < 3; i++) t.record("p", false);
    assert.deepEqual(t.record("p", false), { routingPenalty: 1, fence: false });
    assert.throws(() => new DivergenceTracker({ windowSize: 32 }), RangeError);
  });
});
