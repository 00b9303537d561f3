import assert from "node:assert/strict";
import { ProviderBreaker, type ProviderBreakerOptions } from "../../../src/health/provider-breaker.js";

const T0 = 1_700_000_000_000;
const S = 1_000;
const MIN = 60_000;

/** Feeds a pattern ("F" fault, "S" success) one outcome per `stepMs`; returns the index that opened it, or -1. */
function feed(b: ProviderBreaker, pattern: string, startMs = T0, stepMs = 100): number {
  for (let i = 0; i < pattern.length; i++) {
    const now = startMs + i * stepMs;
    const t = pattern[i] === "F" ? b.recordFault("p1", now) : b.recordSuccess("p1", now);
    if (t.kind === "opened") return i;
  }
  return -1;
}

describe("ProviderBreaker", () => {
  it("opens on 5 consecutive faults, not on 4", () => {
    const b = new ProviderBreaker();
    assert.equal(feed(b, "FFFFSFFFF"), -1);
    assert.equal(b.isOpen("p1", T0 + 1_000), false);
    assert.equal(feed(b, "F", T0 + 1_000), 0);
    assert.equal(b.isOpen("p1", T0 + 1_000), true);
  });

  // Gray failures: interleaved successes never give 5 in a row, so only the ratio rule can catch them.
  const noConsecutive: ProviderBreakerOptions = { consecutiveFaults: 1_000 };
  const gray: Array<{ name: string; pattern: string; opts?: ProviderBreakerOptions; opensAt: number }> = [
    { name: "a box failing 40 % does not trip", pattern: "FSFSS".repeat(20), opts: noConsecutive, opensAt: -1 },
    // 17 faults in every 20 (85 %): once 20 samples are in, 17 > 0.8 × 20.
    // The 20th outcome is a success (ratio is checked on faults); the 21st, a fault, makes it 18 of 21.
    {
      name: "a box failing 85 % trips once 20 outcomes are in",
      pattern: "FFFFFFSFFFFFFSFFFFFS".repeat(3),
      opts: noConsecutive,
      opensAt: 20,
    },
    // Every window of this pattern holds at most 80 % faults.
    {
      name: "exactly 80 % does not trip (strictly more is needed)",
      pattern: "SFFFF".repeat(100),
      opts: noConsecutive,
      opensAt: -1,
    },
    {
      name: "85 % over fewer than 20 outcomes does not trip",
      pattern: "FFFFFFSFFFFFFSFFFF",
      opts: noConsecutive,
      opensAt: -1,
    },
    // With defaults: runs of 4 never trip the consecutive rule, but 17 faults of 21 outcomes (81 %) trip the ratio rule.
    {
      name: "with defaults, runs of 4 faults at 81 % trip the ratio rule",
      pattern: `${"FFFFS".repeat(4)}FFFF`,
      opensAt: 20,
    },
  ];
  for (const g of gray) {
    it(g.name, () => {
      assert.equal(feed(new ProviderBreaker(g.opts), g.pattern), g.opensAt);
    });
  }

  it("forgets outcomes older than the 2-minute window", () => {
    const b = new ProviderBreaker(noConsecutive);
    // 19 faults, then 3 minutes later 19 more: never 20 inside one window.
    assert.equal(feed(b, "F".repeat(19)), -1);
    assert.equal(feed(b, "F".repeat(19), T0 + 3 * MIN), -1);
    assert.equal(feed(b, "F", T0 + 3 * MIN + 19 * 100), 0);
  });

  it("keeps at most maxSamples outcomes", () => {
    const b = new ProviderBreaker({ ...noConsecutive, maxSamples: 20 });
    // A fault, 100 successes, then 17 faults: with only the last 20 kept, 17 faults in 20 trip
    // (all 118 would be 18 faults, 15 %).
    assert.equal(feed(b, `F${"S".repeat(100)}${"F".repeat(17)}`), 117);
    assert.equal(feed(new ProviderBreaker(noConsecutive), `F${"S".repeat(100)}${"F".repeat(17)}`), -1);
  });

  it("doubles the cool-down on each re-open, up to 5 minutes", () => {
    const b = new ProviderBreaker();
    let now = T0;
    const cooldowns: number[] = [];
    feed(b, "FFFF", now);
    for (let i = 0; i < 5; i++) {
      const t = b.recordFault("p1", now);
      assert.equal(t.kind, "opened");
      if (t.kind !== "opened") return;
      cooldowns.push(t.untilMs - now);
      now = t.untilMs; // half-open: the next fault re-opens it
    }
    assert.deepEqual(cooldowns, [MIN, 2 * MIN, 4 * MIN, 5 * MIN, 5 * MIN]);
  });

  it("is half-open after the cool-down: admitted, closed by a success, re-opened by a fault", () => {
    const b = new ProviderBreaker();
    feed(b, "FFFFF");
    const opened = T0 + 400;
    assert.equal(b.phase("p1", opened + MIN - 1), "open");
    assert.equal(b.phase("p1", opened + MIN), "half_open");
    assert.equal(b.isOpen("p1", opened + MIN), false);
    assert.deepEqual(b.recordSuccess("p1", opened + MIN), { kind: "closed" });
    assert.equal(b.phase("p1", opened + MIN), "closed");

    const c = new ProviderBreaker();
    feed(c, "FFFFF");
    assert.deepEqual(c.recordFault("p1", opened + MIN), {
      kind: "opened",
      untilMs: opened + 3 * MIN,
      cause: "half_open_fault",
    });
  });

  it("ignores outcomes while open (requests already in flight when it tripped)", () => {
    const b = new ProviderBreaker();
    feed(b, "FFFFF");
    assert.deepEqual(b.recordSuccess("p1", T0 + S), { kind: "none" });
    assert.deepEqual(b.recordFault("p1", T0 + 2 * S), { kind: "none" });
    assert.equal(b.phase("p1", T0 + 2 * S), "open");
    assert.equal(b.phase("p1", T0 + 400 + MIN), "half_open");
  });

  it("remembers the open streak after a close, and forgives it after streakResetMs", () => {
    const b = new ProviderBreaker();
    feed(b, "FFFFF");
    const halfOpen = T0 + 400 + MIN;
    b.recordSuccess("p1", halfOpen);
    // Re-trips soon after: doubled.
    let t = b.recordFault("p1", halfOpen + S);
    for (let i = 2; i <= 5; i++) t = b.recordFault("p1", halfOpen + i * S);
    assert.equal(t.kind === "opened" && t.untilMs - (halfOpen + 5 * S), 2 * MIN);

    const c = new ProviderBreaker();
    feed(c, "FFFFF");
    c.recordSuccess("p1", halfOpen);
    const later = halfOpen + 10 * MIN;
    let u = c.recordFault("p1", later);
    for (let i = 1; i < 5; i++) u = c.recordFault("p1", later + i * S);
    assert.equal(u.kind === "opened" && u.untilMs - (later + 4 * S), MIN);
  });

  it("forget starts a provider clean", () => {
    const b = new ProviderBreaker();
    feed(b, "FFFFF");
    assert.equal(b.forget("p1"), true);
    assert.equal(b.isOpen("p1", T0 + S), false);
    assert.equal(feed(b, "FFFF", T0 + S), -1);
  });

  it("keeps providers apart, and drops idle healthy ones on a sweep", () => {
    const b = new ProviderBreaker();
    feed(b, "FFFFF");
    for (let i = 0; i < 100; i++) b.recordSuccess(`healthy-${i}`, T0);
    assert.equal(b.isOpen("p2", T0 + S), false);
    assert.equal(b.isOpen("healthy-1", T0 + S), false);
    assert.equal(b.size, 101);
    b.sweep(T0 + 2 * MIN + S);
    assert.equal(b.size, 1); // p1 is still open
  });

  it("stays bounded when 100k providers fault over time", () => {
    const b = new ProviderBreaker();
    let maxSize = 0;
    for (let i = 0; i < 100_000; i++) {
      b.recordFault(`prov-${i}`, T0 + i * 10);
      maxSize = Math.max(maxSize, b.size);
    }
    // A single fault lives for the 2-minute window (12_000 providers at one per 10 ms); the sweep allows 2x.
    assert.ok(maxSize <= 30_000, `max size ${maxSize}`);
    b.sweep(T0 + 100_000 * 10 + 2 * MIN);
    assert.equal(b.size, 0);
  });
});
