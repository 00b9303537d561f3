import assert from "node:assert/strict";
import { formatDurationMs, percentile } from "../../../../src/tools/loadtest/stats.js";

describe("loadtest percentile", () => {
  it("interpolates between closest ranks like numpy's default", () => {
    const v = [10, 1, 9, 2, 8, 3, 7, 4, 6, 5];
    assert.equal(percentile(v, 50), 5.5);
    assert.ok(Math.abs(percentile(v, 95)! - 9.55) < 1e-9);
    assert.equal(percentile(v, 0), 1);
    assert.equal(percentile(v, 100), 10);
    assert.equal(percentile([100, 200, 300, 400], 25), 175);
  });

  it("returns the only value for a single sample and null for none", () => {
    assert.equal(percentile([42], 95), 42);
    assert.equal(percentile([], 50), null);
  });

  it("does not reorder its input", () => {
    const v = [3, 1, 2];
    percentile(v, 50);
    assert.deepEqual(v, [3, 1, 2]);
  });

  it("rejects percentiles outside 0..100", () => {
    assert.throws(() => percentile([1], 101), RangeError);
    assert.throws(() => percentile([1], Number.NaN), RangeError);
  });

  it("formats durations for the table", () => {
    assert.equal(formatDurationMs(null), "—");
    assert.equal(formatDurationMs(42.4), "42ms");
    assert.equal(formatDurationMs(11_600), "11.6s");
    assert.equal(formatDurationMs(123_400), "123s");
  });
});
