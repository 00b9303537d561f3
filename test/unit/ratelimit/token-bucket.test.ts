import assert from "node:assert/strict";
import {
  adjust,
  fullBucket,
  msUntilFull,
  refill,
  take,
  withLimits,
  type Bucket,
} from "../../../src/ratelimit/token-bucket.js";

const T0 = 1_700_000_000_000;
// 10 units/s, burst 100.
const limits = { ratePerSec: 10, burst: 100 };
const at = (level: number, updatedMs = T0): Bucket => ({ ...limits, level, updatedMs });

describe("token bucket", () => {
  describe("refill", () => {
    const cases: Array<{ name: string; from: Bucket; nowMs: number; level: number }> = [
      { name: "adds rate × elapsed", from: at(0), nowMs: T0 + 2500, level: 25 },
      { name: "stops at the burst", from: at(90), nowMs: T0 + 60_000, level: 100 },
      { name: "repays debt before anything is available", from: at(-50), nowMs: T0 + 3000, level: -20 },
      { name: "mints nothing when time goes backwards", from: at(10), nowMs: T0 - 5000, level: 10 },
    ];
    for (const c of cases) {
      it(c.name, () => assert.equal(refill(c.from, c.nowMs).level, c.level));
    }
  });

  describe("take", () => {
    const cases: Array<{
      name: string;
      from: Bucket;
      units: number;
      nowMs: number;
      allowed: boolean;
      level: number;
      retryAfterMs: number;
    }> = [
      {
        name: "admits within the level",
        from: at(100),
        units: 30,
        nowMs: T0,
        allowed: true,
        level: 70,
        retryAfterMs: 0,
      },
      {
        name: "admits the whole burst at once",
        from: at(100),
        units: 100,
        nowMs: T0,
        allowed: true,
        level: 0,
        retryAfterMs: 0,
      },
      {
        name: "rejects beyond the level and says when it fits",
        from: at(5),
        units: 30,
        nowMs: T0,
        allowed: false,
        level: 5,
        retryAfterMs: 2500,
      },
      {
        name: "counts refill before deciding",
        from: at(5),
        units: 30,
        nowMs: T0 + 2500,
        allowed: true,
        level: 0,
        retryAfterMs: 0,
      },
      {
        name: "admits a request larger than the burst from a full bucket, into debt",
        from: at(100),
        units: 250,
        nowMs: T0,
        allowed: true,
        level: -150,
        retryAfterMs: 0,
      },
      {
        name: "makes an oversized request wait for a full bucket, not forever",
        from: at(40),
        units: 250,
        nowMs: T0,
        allowed: false,
        level: 40,
        retryAfterMs: 6000,
      },
      {
        name: "waits out debt before admitting",
        from: at(-150),
        units: 10,
        nowMs: T0,
        allowed: false,
        level: -150,
        retryAfterMs: 16_000,
      },
      {
        name: "always admits zero units",
        from: at(-150),
        units: 0,
        nowMs: T0,
        allowed: true,
        level: -150,
        retryAfterMs: 0,
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const r = take(c.from, c.units, c.nowMs);
        assert.equal(r.allowed, c.allowed);
        assert.equal(r.next.level, c.level);
        assert.equal(r.retryAfterMs, c.retryAfterMs);
      });
    }

    it("admits exactly at the hinted retry time and not 1 ms before, for non-integer rates", () => {
      // 5M/min and 500k/min are not whole units per ms: the boundary must still be exact.
      for (const ratePerSec of [5_000_000 / 60, 500_000 / 60, 50_000_000 / 60, 20, 7 / 3]) {
        const b: Bucket = { ratePerSec, burst: 64_000, level: 123.4, updatedMs: T0 };
        const r = take(b, 10_000, T0);
        assert.equal(r.allowed, false);
        assert.ok(r.retryAfterMs > 1);
        assert.equal(take(b, 10_000, T0 + r.retryAfterMs).allowed, true, `rate ${ratePerSec}`);
        assert.equal(take(b, 10_000, T0 + r.retryAfterMs - 1).allowed, false, `rate ${ratePerSec}`);
      }
    });

    it("treats a rate of 0 as unlimited", () => {
      const r = take({ ratePerSec: 0, burst: 0, level: 0, updatedMs: T0 }, 1e9, T0);
      assert.equal(r.allowed, true);
    });
  });

  describe("adjust (reconciliation)", () => {
    const cases: Array<{ name: string; from: Bucket; delta: number; level: number }> = [
      { name: "gives unused tokens back", from: at(20), delta: -30, level: 50 },
      { name: "never gives back above the burst", from: at(90), delta: -30, level: 100 },
      { name: "charges an over-run as debt", from: at(20), delta: 70, level: -50 },
      { name: "ignores a non-finite delta", from: at(20), delta: Number.NaN, level: 20 },
    ];
    for (const c of cases) {
      it(c.name, () => assert.equal(adjust(c.from, c.delta, T0).level, c.level));
    }
  });

  it("reports the time until full", () => {
    assert.equal(msUntilFull(at(40), T0), 6000);
    assert.equal(msUntilFull(at(100), T0), 0);
  });

  it("re-limits keeping debt and clamping to the new burst", () => {
    assert.equal(withLimits(at(100), { ratePerSec: 1, burst: 10 }, T0).level, 10);
    assert.equal(withLimits(at(-5), { ratePerSec: 1, burst: 10 }, T0).level, -5);
    assert.deepEqual(fullBucket(limits, T0), at(100));
  });
});
