import assert from "node:assert/strict";
import { OutputEstimator } from "../../../src/util/output-estimator.js";

describe("OutputEstimator", () => {
  describe("cold-start prior (no samples)", () => {
    const cases: Array<{ maxTokens: number; want: number }> = [
      { maxTokens: 32_768, want: 8192 }, // 25 % = 8192, at the prior cap
      { maxTokens: 100_000, want: 8192 }, // capped at 8192
      { maxTokens: 4096, want: 1024 }, // 25 %
      { maxTokens: 1000, want: 512 }, // raised to the 512 prior minimum
      { maxTokens: 300, want: 300 }, // never above max_tokens
      { maxTokens: 1, want: 1 },
      { maxTokens: 0, want: 0 },
      { maxTokens: -5, want: 0 },
    ];
    for (const c of cases) {
      it(`charges ${c.want} for max_tokens ${c.maxTokens}`, () => {
        assert.equal(new OutputEstimator().expected("a|m", c.maxTokens), c.want);
      });
    }
  });

  it("keeps at least the prior during warm-up, then follows the EWMA times the safety factor", () => {
    const e = new OutputEstimator({ alpha: 0.5, safetyFactor: 1.5, minSamples: 3, floorTokens: 0 });
    e.observe("k", 400, 32_768);
    assert.equal(e.expected("k", 32_768), 8192);
    e.observe("k", 400, 32_768);
    assert.equal(e.expected("k", 32_768), 8192);
    e.observe("k", 400, 32_768);
    assert.equal(e.expected("k", 32_768), 600); // 400 × 1.5
    e.observe("k", 800, 32_768); // mean 400 + 0.5 × 400 = 600
    assert.equal(e.expected("k", 32_768), 900);
  });

  it("uses absolute tokens so a key mixing budgets is not charged its largest budget", () => {
    const e = new OutputEstimator({ minSamples: 1 });
    for (let i = 0; i < 10; i++) e.observe("k", 256, 256); // truncated small-budget requests
    assert.equal(e.expected("k", 32_768), 384); // 256 × 1.5, not 32768
    assert.equal(e.expected("k", 200), 200); // still clamped to this request's budget
  });

  it("clamps to the floor but never above max_tokens", () => {
    const e = new OutputEstimator({ minSamples: 1, floorTokens: 256 });
    e.observe("k", 3, 32_768);
    assert.equal(e.expected("k", 32_768), 256);
    assert.equal(e.expected("k", 100), 100);
  });

  it("keeps keys apart", () => {
    const e = new OutputEstimator({ minSamples: 1, floorTokens: 0, safetyFactor: 1 });
    e.observe("a", 1000, 32_768);
    e.observe("b", 10, 32_768);
    assert.equal(e.expected("a", 32_768), 1000);
    assert.equal(e.expected("b", 32_768), 10);
  });

  it("caps an observation at max_tokens and ignores invalid counts", () => {
    const e = new OutputEstimator({ minSamples: 1, floorTokens: 0, safetyFactor: 1 });
    e.observe("k", 1_000_000, 2000);
    e.observe("k", -1, 2000);
    e.observe("k", Number.NaN, 2000);
    assert.deepEqual(e.peek("k"), { meanTokens: 2000, samples: 1 });
  });

  it("forgets the least recently used key beyond maxKeys", () => {
    const e = new OutputEstimator({ maxKeys: 2 });
    e.observe("a", 1, 10);
    e.observe("b", 1, 10);
    e.expected("a", 10); // touch a: b is now the oldest
    e.observe("c", 1, 10);
    assert.equal(e.size, 2);
    assert.equal(e.peek("b"), undefined);
    assert.notEqual(e.peek("a"), undefined);
  });

  it("rejects invalid options", () => {
    assert.throws(() => new OutputEstimator({ alpha: 0 }), RangeError);
    assert.throws(() => new OutputEstimator({ safetyFactor: 0.5 }), RangeError);
  });
});
