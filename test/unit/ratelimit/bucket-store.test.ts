import assert from "node:assert/strict";
import { MemoryBucketStore } from "../../../src/ratelimit/bucket-store.js";
import { processShareForReplicas } from "../../../src/ratelimit/limiter.js";

const T0 = 1_700_000_000_000;
const small = { ratePerSec: 10, burst: 10 };
const large = { ratePerSec: 1, burst: 100 };

describe("MemoryBucketStore", () => {
  it("commits every charge when all buckets fit", () => {
    const s = new MemoryBucketStore();
    const r = s.takeAll(
      [
        { key: "a", limits: small, units: 4 },
        { key: "b", limits: large, units: 60 },
      ],
      T0,
    );
    assert.equal(r.allowed, true);
    assert.equal(s.peek("a", small, T0).level, 6);
    assert.equal(s.peek("b", large, T0).level, 40);
  });

  it("commits nothing when one bucket rejects and reports the longest wait as binding", () => {
    const s = new MemoryBucketStore();
    s.takeAll(
      [
        { key: "a", limits: small, units: 10 },
        { key: "b", limits: large, units: 95 },
      ],
      T0,
    );
    const r = s.takeAll(
      [
        { key: "a", limits: small, units: 5 },
        { key: "b", limits: large, units: 10 },
        { key: "c", limits: small, units: 1 },
      ],
      T0,
    );
    assert.ok(!r.allowed);
    assert.equal(r.index, 1); // b needs 5 more at 1/s = 5000 ms; a needs 5 at 10/s = 500 ms
    assert.equal(r.retryAfterMs, 5000);
    assert.equal(s.peek("a", small, T0).level, 0);
    assert.equal(s.peek("b", large, T0).level, 5);
    assert.equal(s.size, 2); // c was never stored
  });

  it("reads a missing bucket as full", () => {
    assert.equal(new MemoryBucketStore().peek("x", large, T0).level, 100);
  });
});

describe("processShareForReplicas", () => {
  const cases: Array<[number, number]> = [
    [1, 1],
    [4, 0.25],
    [0, 1],
    [Number.NaN, 1],
    [2.7, 0.5],
  ];
  for (const [n, want] of cases)
    it(`maps ${n} replicas to a share of ${want}`, () => assert.equal(processShareForReplicas(n), want));
});
