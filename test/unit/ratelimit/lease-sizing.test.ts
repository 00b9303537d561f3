import assert from "node:assert/strict";
import {
  addUsage,
  defaultLeaseTuning,
  grantSize,
  newUsage,
  runningLow,
  usageRate,
} from "../../../src/ratelimit/lease-sizing.js";

const T = defaultLeaseTuning;

describe("lease sizing", () => {
  it("measures steady usage in units per ms (the decayed counter converges to the rate)", () => {
    let u = newUsage(0);
    for (let t = 0; t <= 60_000; t += 100) u = addUsage(u, 10, t, T.usageWindowMs); // 100 units/s
    assert.ok(Math.abs(usageRate(u, 60_000, T.usageWindowMs) - 0.1) < 0.01, String(usageRate(u, 60_000, 5_000)));
    // Idle for five time constants: under 1 % of it is left.
    assert.ok(usageRate(u, 85_000, T.usageWindowMs) < 0.001);
  });

  it("never counts time going backwards as decay or negative units as usage", () => {
    const u = addUsage({ units: 50, atMs: 1_000, sinceMs: 0 }, -5, 500, 5_000);
    assert.deepEqual(u, { units: 50, atMs: 1_000, sinceMs: 0 });
  });

  it("sees a key that just became busy at its real rate, not diluted over the whole window", () => {
    let u = newUsage(0);
    for (let t = 0; t < 500; t += 10) u = addUsage(u, 1, t, T.usageWindowMs); // 100 units/s for 0.5 s
    // Counted over at least minAgeMs (1 s): 50 units in 1 s; the plain τ average would say 10/s.
    const r = usageRate(u, 500, T.usageWindowMs);
    assert.ok(Math.abs(r - 0.05) < 0.005, String(r));
    for (let t = 500; t < 2_000; t += 10) u = addUsage(u, 1, t, T.usageWindowMs);
    assert.ok(Math.abs(usageRate(u, 2_000, T.usageWindowMs) - 0.1) < 0.005);
  });

  it("asks for grantTargetMs of recent usage, at least the request at hand, less what is held", () => {
    // 100 units/s, burst 1,000: 3 s of usage = 300; 40 held.
    assert.deepEqual(grantSize(1_000, 40, 10, 0.1, T), { minUnits: 0, wantUnits: 260 });
    // Nothing held, a cold key: the request at hand is the minimum and the want.
    assert.deepEqual(grantSize(1_000, 0, 7, 0, T), { minUnits: 7, wantUnits: 7 });
    // Debt held counts as nothing held (the debt itself moves into the shared bucket).
    assert.deepEqual(grantSize(1_000, -50, 7, 0, T), { minUnits: 7, wantUnits: 7 });
  });

  it("caps a grant at maxGrantOfBurst of the burst, except for what the request at hand needs", () => {
    assert.equal(grantSize(100, 0, 1, 1, T).wantUnits, 100 * T.maxGrantOfBurst);
    assert.deepEqual(grantSize(100, 0, 100, 1, T), { minUnits: 100, wantUnits: 100 });
  });

  it("runs low below refreshBelowMs of recent usage, never for an unused key", () => {
    assert.equal(runningLow(99, 0.1, T), true); // 1 s at 0.1/ms = 100
    assert.equal(runningLow(100, 0.1, T), false);
    assert.equal(runningLow(0, 0, T), false);
  });
});
