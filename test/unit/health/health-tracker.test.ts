import assert from "node:assert/strict";
import type { RequestShape } from "../../../src/inference/types.js";
import { HealthTracker, type OutcomeKind } from "../../../src/health/health-tracker.js";
import type { Tags } from "../../../src/telemetry/metrics.js";

const T0 = 1_700_000_000_000;
const S = 1_000;
const MIN = 60_000;

function tracker() {
  const metrics: string[] = [];
  const count = (name: string, tags?: Tags) => metrics.push(`${name} ${JSON.stringify(tags ?? {})}`);
  return { h: new HealthTracker({ count }), metrics };
}

function rec(h: HealthTracker, providerId: string, shape: RequestShape, kind: OutcomeKind, nowMs: number) {
  return h.recordOutcome({ providerId, model: "m", shape, kind, nowMs });
}

describe("HealthTracker", () => {
  it("cools (p, m, tools) after two 500s while base traffic still routes there", () => {
    const { h, metrics } = tracker();
    rec(h, "p1", "tools", "sickness", T0);
    rec(h, "p1", "tools", "sickness", T0 + 10 * S);
    assert.equal(h.isCooledDown("p1", "m", "tools", T0 + 11 * S), true);
    assert.equal(h.isCooledDown("p1", "m", "base", T0 + 11 * S), false);
    assert.equal(h.verdict("p1", "m", "tools", T0 + 11 * S), "shape_cooldown");
    assert.deepEqual(metrics, [
      'routing.cooldown_entered {"shape":"tools","provider_id":"p1","model":"m","reason":"sickness"}',
    ]);
  });

  it("a base success does not clear the tools cooldown; a tools success does", () => {
    const { h, metrics } = tracker();
    rec(h, "p1", "tools", "sickness", T0);
    rec(h, "p1", "tools", "sickness", T0 + S);
    rec(h, "p1", "base", "success", T0 + 2 * S);
    assert.equal(h.isCooledDown("p1", "m", "tools", T0 + 3 * S), true);
    const effect = rec(h, "p1", "tools", "success", T0 + 4 * S);
    assert.deepEqual(effect.cooldown, { kind: "cleared" });
    assert.equal(h.isCooledDown("p1", "m", "tools", T0 + 5 * S), false);
    assert.ok(metrics.includes('routing.cooldown_cleared {"shape":"tools","reason":"success","provider_id":"p1"}'));
  });

  const neverCount: OutcomeKind[] = ["capacity", "client_error", "incomplete"];
  for (const kind of neverCount) {
    it(`${kind} outcomes neither strike nor clear`, () => {
      const { h } = tracker();
      for (let i = 0; i < 10; i++) rec(h, "p1", "tools", kind, T0 + i * S);
      assert.equal(h.isCooledDown("p1", "m", "tools", T0 + 10 * S), false);
      assert.equal(h.isBreakerOpen("p1", T0 + 10 * S), false);

      rec(h, "p2", "tools", "sickness", T0);
      rec(h, "p2", "tools", "sickness", T0 + S);
      rec(h, "p2", "tools", kind, T0 + 2 * S);
      assert.equal(h.isCooledDown("p2", "m", "tools", T0 + 3 * S), true);
    });
  }

  it("an incomplete stream between two strikes does not reset them", () => {
    const { h } = tracker();
    rec(h, "p1", "vision", "sickness", T0);
    rec(h, "p1", "vision", "incomplete", T0 + S);
    rec(h, "p1", "vision", "sickness", T0 + 2 * S);
    assert.equal(h.isCooledDown("p1", "m", "vision", T0 + 3 * S), true);
  });

  it("the shape cooldown expires after 5 minutes and is counted cleared", () => {
    const { h, metrics } = tracker();
    rec(h, "p1", "base", "sickness", T0);
    rec(h, "p1", "base", "sickness", T0 + S);
    assert.equal(h.isCooledDown("p1", "m", "base", T0 + S + 5 * MIN - 1), true);
    assert.equal(h.isCooledDown("p1", "m", "base", T0 + S + 5 * MIN), false);
    assert.ok(metrics.includes('routing.cooldown_cleared {"shape":"base","reason":"expired","provider_id":"p1"}'));
  });

  it("forgetProvider clears cooldowns, breaker and load cooldowns of that provider id only", () => {
    const { h, metrics } = tracker();
    for (let i = 0; i < 5; i++) rec(h, "p1", "tools", "sickness", T0 + i * S);
    rec(h, "p2", "tools", "sickness", T0);
    rec(h, "p2", "tools", "sickness", T0 + S);
    h.recordLoadRefusal("p1", "m", T0);
    assert.equal(h.isBreakerOpen("p1", T0 + 5 * S), true);

    h.forgetProvider("p1");
    assert.equal(h.isCooledDown("p1", "m", "tools", T0 + 6 * S), false);
    assert.equal(h.isBreakerOpen("p1", T0 + 6 * S), false);
    assert.equal(h.isLoadCooledDown("p1", "m", T0 + 6 * S), false);
    assert.equal(h.isCooledDown("p2", "m", "tools", T0 + 6 * S), true);
    assert.ok(metrics.includes('routing.cooldown_cleared {"shape":"tools","reason":"forgotten","provider_id":"p1"}'));
    assert.ok(metrics.includes('routing.provider_breaker {"state":"closed","provider_id":"p1"}'));
  });

  it("opens the provider breaker across models after 5 consecutive faults and counts it", () => {
    const { h, metrics } = tracker();
    const shapes: RequestShape[] = ["base", "tools", "vision", "base", "tools"];
    for (const [i, shape] of shapes.entries())
      h.recordOutcome({ providerId: "p1", model: `m${i}`, shape, kind: "sickness", nowMs: T0 + i * 20 * S });
    assert.equal(h.isBreakerOpen("p1", T0 + 81 * S), true);
    assert.equal(h.isCooledDown("p1", "other-model", "base", T0 + 81 * S), true);
    assert.equal(h.verdict("p1", "other-model", "base", T0 + 81 * S), "breaker_open");
    assert.ok(metrics.includes('routing.provider_breaker {"state":"open","provider_id":"p1"}'));
    // Half-open after 60 s: admitted; a success closes it.
    assert.equal(h.isCooledDown("p1", "other-model", "base", T0 + 140 * S), false);
    rec(h, "p1", "base", "success", T0 + 141 * S);
    assert.equal(metrics.at(-1), 'routing.provider_breaker {"state":"closed","provider_id":"p1"}');
  });

  describe("fail-open", () => {
    function openBreaker(h: HealthTracker, p: string) {
      for (let i = 0; i < 5; i++)
        h.recordOutcome({ providerId: p, model: `x${i}`, shape: "base", kind: "sickness", nowMs: T0 });
    }
    const idOf = (c: { id: string }) => c.id;
    const now = T0 + S;

    it("admits only healthy candidates while any exist", () => {
      const { h } = tracker();
      openBreaker(h, "a");
      assert.deepEqual(h.filterFailOpen([{ id: "a" }, { id: "b" }], idOf, "m", "base", now), {
        admitted: [{ id: "b" }],
        failOpen: false,
      });
    });

    it("admits breaker-open candidates when nothing else is left", () => {
      const { h } = tracker();
      openBreaker(h, "a");
      openBreaker(h, "b");
      assert.deepEqual(h.filterFailOpen([{ id: "a" }, { id: "b" }], idOf, "m", "base", now), {
        admitted: [{ id: "a" }, { id: "b" }],
        failOpen: true,
      });
    });

    it("never admits a shape-cooled candidate, even when fail-open", () => {
      const { h } = tracker();
      openBreaker(h, "a");
      rec(h, "b", "tools", "sickness", T0);
      rec(h, "b", "tools", "sickness", T0);
      assert.deepEqual(h.filterFailOpen([{ id: "a" }, { id: "b" }], idOf, "m", "tools", now), {
        admitted: [{ id: "a" }],
        failOpen: true,
      });
      assert.deepEqual(h.filterFailOpen([{ id: "b" }], idOf, "m", "tools", now), { admitted: [], failOpen: false });
    });

    it("withoutBreaker() ignores the breaker but keeps shape and load cooldowns", () => {
      const { h } = tracker();
      openBreaker(h, "a");
      rec(h, "b", "tools", "sickness", T0);
      rec(h, "b", "tools", "sickness", T0);
      h.recordLoadRefusal("c", "m", T0);
      const relaxed = h.withoutBreaker();
      assert.equal(h.isCooledDown("a", "m", "base", now), true);
      assert.equal(relaxed.isCooledDown("a", "m", "base", now), false);
      assert.equal(relaxed.isCooledDown("b", "m", "tools", now), true);
      assert.equal(relaxed.isLoadCooledDown("c", "m", now), true);
    });
  });

  it("load refusals cool (provider, model) for 2 minutes", () => {
    const { h } = tracker();
    h.recordLoadRefusal("p1", "m", T0);
    assert.equal(h.isLoadCooledDown("p1", "m", T0 + 2 * MIN - 1), true);
    assert.equal(h.isLoadCooledDown("p1", "other", T0 + S), false);
    assert.equal(h.isLoadCooledDown("p2", "m", T0 + S), false);
    assert.equal(h.isLoadCooledDown("p1", "m", T0 + 2 * MIN), false);
    // Load cooldowns gate cold routing only; they are not a shape cooldown.
    assert.equal(h.isCooledDown("p1", "m", "base", T0 + S), false);
  });

  it("keeps every map bounded when 100k sessions come and go over time", () => {
    const { h } = tracker();
    let max = 0;
    const shapes: RequestShape[] = ["base", "tools", "vision"];
    for (let i = 0; i < 100_000; i++) {
      const now = T0 + i * 20;
      const p = `session-${i}`;
      h.recordOutcome({ providerId: p, model: "m", shape: shapes[i % 3]!, kind: "sickness", nowMs: now });
      h.recordOutcome({
        providerId: p,
        model: "m",
        shape: shapes[i % 3]!,
        kind: i % 7 === 0 ? "sickness" : "success",
        nowMs: now,
      });
      if (i % 11 === 0) h.recordLoadRefusal(p, "m", now);
      const s = h.stats();
      max = Math.max(max, s.shapeEntries + s.breakerEntries + s.loadEntries);
    }
    // Alive at any moment: ~2 min of breaker entries (6000), ~5 min of cooled shapes (~2100), ~2 min of load
    // cooldowns (~550); the amortized sweep allows about twice that.
    assert.ok(max < 25_000, `max entries ${max}`);
    h.sweep(T0 + 100_000 * 20 + 10 * MIN);
    assert.deepEqual(h.stats(), { shapeEntries: 0, breakerEntries: 0, loadEntries: 0 });
  });
});
