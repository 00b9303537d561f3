import assert from "node:assert/strict";
import type { RequestShape } from "../../../src/inference/types.js";
import { ShapeCooldowns } from "../../../src/health/shape-cooldowns.js";

const T0 = 1_700_000_000_000;
const S = 1_000;
const MIN = 60_000;

type Step =
  | { at: number; sick: RequestShape }
  | { at: number; ok: RequestShape }
  | { at: number; expect: Partial<Record<RequestShape, boolean>> };

/** Runs a script of strikes, successes and expectations against one (provider, model). */
function run(steps: Step[], c = new ShapeCooldowns()): void {
  for (const step of steps) {
    const now = T0 + step.at;
    if ("sick" in step) c.recordSickness("p1", "m", step.sick, now);
    else if ("ok" in step) c.recordSuccess("p1", "m", step.ok, now);
    else {
      for (const [shape, cooled] of Object.entries(step.expect)) {
        assert.equal(c.isCooledDown("p1", "m", shape as RequestShape, now), cooled, `${shape} at +${step.at} ms`);
      }
    }
  }
}

describe("ShapeCooldowns", () => {
  const cases: Array<{ name: string; steps: Step[] }> = [
    {
      name: "two tools strikes within 60 s cool tools but not base or vision",
      steps: [
        { at: 0, sick: "tools" },
        { at: 30 * S, sick: "tools" },
        { at: 31 * S, expect: { tools: true, base: false, vision: false } },
      ],
    },
    {
      name: "one strike, then 61 s, then another does not cool",
      steps: [
        { at: 0, sick: "tools" },
        { at: 61 * S, sick: "tools" },
        { at: 62 * S, expect: { tools: false } },
      ],
    },
    {
      name: "a base success does not clear the tools cooldown",
      steps: [
        { at: 0, sick: "tools" },
        { at: S, sick: "tools" },
        { at: 2 * S, ok: "base" },
        { at: 3 * S, expect: { tools: true } },
      ],
    },
    {
      name: "a tools success clears the tools cooldown",
      steps: [
        { at: 0, sick: "tools" },
        { at: S, sick: "tools" },
        { at: 2 * S, ok: "tools" },
        { at: 3 * S, expect: { tools: false } },
      ],
    },
    {
      name: "a success between strikes resets the count",
      steps: [
        { at: 0, sick: "vision" },
        { at: S, ok: "vision" },
        { at: 2 * S, sick: "vision" },
        { at: 3 * S, expect: { vision: false } },
      ],
    },
    {
      name: "the cooldown expires after 5 minutes",
      steps: [
        { at: 0, sick: "base" },
        { at: S, sick: "base" },
        { at: S + 5 * MIN - 1, expect: { base: true } },
        { at: S + 5 * MIN, expect: { base: false } },
      ],
    },
    {
      name: "a strike while cooled restarts the cooldown",
      steps: [
        { at: 0, sick: "tools" },
        { at: S, sick: "tools" },
        { at: 4 * MIN, sick: "tools" },
        { at: S + 5 * MIN, expect: { tools: true } },
        { at: 9 * MIN - 1, expect: { tools: true } },
        { at: 9 * MIN, expect: { tools: false } },
      ],
    },
    {
      name: "after expiry a single strike does not cool again",
      steps: [
        { at: 0, sick: "tools" },
        { at: S, sick: "tools" },
        { at: 6 * MIN, sick: "tools" },
        { at: 6 * MIN + S, expect: { tools: false } },
      ],
    },
  ];
  for (const c of cases) it(c.name, () => run(c.steps));

  it("reports entered, extended and cleared transitions as data", () => {
    const c = new ShapeCooldowns();
    assert.deepEqual(c.recordSickness("p1", "m", "tools", T0), { kind: "struck", strikesInWindow: 1 });
    assert.deepEqual(c.recordSickness("p1", "m", "tools", T0 + S), { kind: "entered", untilMs: T0 + S + 5 * MIN });
    assert.deepEqual(c.recordSickness("p1", "m", "tools", T0 + 2 * S), {
      kind: "extended",
      untilMs: T0 + 2 * S + 5 * MIN,
    });
    assert.equal(c.cooledUntilMs("p1", "m", "tools", T0 + 3 * S), T0 + 2 * S + 5 * MIN);
    assert.deepEqual(c.recordSuccess("p1", "m", "tools", T0 + 3 * S), { kind: "cleared" });
    assert.deepEqual(c.recordSuccess("p1", "m", "tools", T0 + 4 * S), { kind: "none" });
  });

  it("keeps providers and models apart", () => {
    const c = new ShapeCooldowns();
    c.recordSickness("p1", "m", "tools", T0);
    c.recordSickness("p1", "m", "tools", T0 + S);
    assert.equal(c.isCooledDown("p2", "m", "tools", T0 + 2 * S), false);
    assert.equal(c.isCooledDown("p1", "other", "tools", T0 + 2 * S), false);
  });

  it("honours configured strikes, window and cooldown", () => {
    const c = new ShapeCooldowns({ strikesToCool: 3, strikeWindowMs: 10 * S, cooldownMs: 20 * S });
    c.recordSickness("p1", "m", "base", T0);
    c.recordSickness("p1", "m", "base", T0 + S);
    assert.equal(c.isCooledDown("p1", "m", "base", T0 + 2 * S), false);
    c.recordSickness("p1", "m", "base", T0 + 2 * S);
    assert.equal(c.isCooledDown("p1", "m", "base", T0 + 3 * S), true);
    assert.equal(c.isCooledDown("p1", "m", "base", T0 + 22 * S), false);
  });

  it("reports a lapsed cooldown once, whether seen on a read or by a sweep", () => {
    const expired: string[] = [];
    const c = new ShapeCooldowns({ onExpired: (p, m, s) => expired.push(`${p}/${m}/${s}`) });
    for (const p of ["p1", "p2"]) {
      c.recordSickness(p, "m", "tools", T0);
      c.recordSickness(p, "m", "tools", T0 + S);
    }
    assert.equal(c.isCooledDown("p1", "m", "tools", T0 + 10 * MIN), false);
    assert.equal(c.isCooledDown("p1", "m", "tools", T0 + 11 * MIN), false);
    c.sweep(T0 + 12 * MIN);
    assert.deepEqual(expired, ["p1/m/tools", "p2/m/tools"]);
    assert.equal(c.size, 0);
  });

  it("forget drops a provider's entries and names the cooled shapes", () => {
    const c = new ShapeCooldowns();
    c.recordSickness("p1", "m", "tools", T0);
    c.recordSickness("p1", "m", "tools", T0 + S);
    c.recordSickness("p1", "m", "base", T0 + S);
    assert.deepEqual(c.forget("p1"), ["tools"]);
    assert.equal(c.isCooledDown("p1", "m", "tools", T0 + 2 * S), false);
    assert.equal(c.size, 0);
  });

  it("stays bounded when 100k distinct keys strike over time", () => {
    const c = new ShapeCooldowns();
    let maxSize = 0;
    // One new (provider, model) strike every 10 ms: over 1000 s each key lives 60 s (one strike, never cooled),
    // so about 6000 are alive at any moment; a key that cools lives 5 min.
    for (let i = 0; i < 100_000; i++) {
      const now = T0 + i * 10;
      c.recordSickness(`prov-${i}`, "m", "base", now);
      if (i % 50 === 0) c.recordSickness(`prov-${i}`, "m", "base", now); // every 50th key cools
      maxSize = Math.max(maxSize, c.size);
    }
    // Live at the end: ~6000 struck keys + ~600 cooled keys; the amortized sweep allows at most 2x that.
    assert.ok(maxSize < 20_000, `max size ${maxSize}`);
    c.sweep(T0 + 100_000 * 10 + 5 * MIN);
    assert.equal(c.size, 0);
  });
});
