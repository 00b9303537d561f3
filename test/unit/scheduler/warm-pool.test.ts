import assert from "node:assert/strict";
import { DemandTracker } from "../../../src/scheduler/demand-tracker.js";
import { resolveSchedulerOptions } from "../../../src/scheduler/scheduler-options.js";
import { planWarmPool, type WarmPoolOptions } from "../../../src/scheduler/warm-pool.js";
import { capacitySnapshot } from "../../../src/scheduler/capacity.js";
import { catalog, healthy, inflight, provider, slot, view } from "./fixtures.js";

const options: WarmPoolOptions = { scheduler: resolveSchedulerOptions(), catalog, health: healthy() };
const demand = (arrivalRatePerS: number, meanServiceMs: number, queueDepth = 0, pressurePerS = 0) =>
  new Map([["gemma", { arrivalRatePerS, meanServiceMs, queueDepth, pressurePerS }]]);

describe("planWarmPool", () => {
  it("loads idle capable Macs under pressure, never busy or too-small ones", () => {
    const v = view(
      provider("busy", {
        slots: [slot("oss", { state: "running", numRunning: 2 })],
        inflight: [inflight("r1", "oss")],
      }),
      provider("small", { totalMemoryGb: 24 }),
      provider("idle1"),
      provider("idle2", { totalMemoryGb: 128 }),
      provider("warm", { slots: [slot("gemma", { state: "running", numRunning: 8 })] }),
    );
    // λ = 1/s, E[S] = 40 s → L = 40; one Mac per request → target ⌈50⌉ + 1, clamped to the 4 capable > 1 warm.
    const plan = planWarmPool(v, demand(1, 40_000), 0, options);
    assert.deepEqual(plan.load.map((l) => l.providerId).sort(), ["idle1", "idle2"]);
    assert.ok(plan.load.every((l) => l.model === "gemma"));
    assert.equal(plan.targets.get("gemma")?.warm, 1);
  });

  it("keeps one burst-buffer Mac beyond Little's law at low demand and loads nothing without demand", () => {
    const v = view(provider("warm", { slots: [slot("gemma")] }), provider("idle"));
    // λ = 0.05/s × 10 s = 0.5 in service → ⌈0.625⌉ + 1 = 2 targets against 1 warm: one load.
    assert.equal(planWarmPool(v, demand(0.05, 10_000), 0, options).load.length, 1);
    assert.equal(planWarmPool(v, demand(0, 10_000), 0, options).load.length, 0);
  });

  it("plans one Mac per request in flight with pools off, the quality concurrency per Mac under pools", () => {
    const idle = (pool?: string) =>
      Array.from({ length: 12 }, (_, i) => provider(`idle${i}`, pool === undefined ? {} : { pool }));
    // λ = 0.1/s × 40 s = 4 in service → ⌈4 × 1.25 ÷ 1⌉ + 1 = 6 Macs: one per request, not stacked.
    const open = planWarmPool(view(...idle()), demand(0.1, 40_000), 0, options);
    assert.equal(open.targets.get("gemma")?.target, 6);
    assert.equal(open.load.length, 4, "bounded by the loads per tick");
    // The same demand planned at two streams per Mac: ⌈5 ÷ 2⌉ + 1 = 4.
    assert.equal(
      planWarmPool(view(...idle()), demand(0.1, 40_000), 0, { ...options, streamsPerWarmMac: 2 }).targets.get("gemma")
        ?.target,
      4,
    );
    // Under pools the quality concurrency (here more than 5 streams) keeps members empty: ⌈5 ÷ q⌉ + 1 = 2.
    const pooled = planWarmPool(view(...idle("gemma")), demand(0.1, 40_000), 0, {
      ...options,
      poolsOf: () => new Set(["gemma"]),
    });
    assert.equal(pooled.targets.get("gemma")?.target, 2);
  });

  it("counts a slow holder as the share of a typical Mac's decode rate it offers, and warms fast Macs for the rest", () => {
    const slow = (id: string) => provider(id, { decodeTps: 9, slots: [slot("gemma")] });
    const fast = (id: string) => provider(id, { decodeTps: 45 });
    // λ = 0.05/s × 10 s → target ⌈0.625⌉ + 1 = 2. Two holders at a fifth of the typical 45 tok/s are 0.4 of a
    // warm Mac, so two fast Macs load; two holders at the typical rate are the whole target.
    const plan = planWarmPool(
      view(slow("s1"), slow("s2"), fast("f1"), fast("f2"), fast("f3")),
      demand(0.05, 10_000),
      0,
      options,
    );
    assert.equal(plan.targets.get("gemma")?.warm, 2);
    assert.equal(plan.load.length, 2);
    assert.ok(plan.load.every((l) => l.providerId.startsWith("f")));
    const typical = (id: string) => provider(id, { decodeTps: 45, slots: [slot("gemma")] });
    const enough = view(typical("t1"), typical("t2"), fast("f1"), fast("f2"), fast("f3"));
    assert.equal(planWarmPool(enough, demand(0.05, 10_000), 0, options).load.length, 0);
  });

  it("bounds loads per tick", () => {
    const v = view(...Array.from({ length: 10 }, (_, i) => provider(`idle${i}`)));
    assert.equal(planWarmPool(v, demand(5, 60_000), 0, { ...options, maxLoadsPerTick: 3 }).load.length, 3);
  });

  it("does not replace a model loaded less than the dwell time ago or one that is needed", () => {
    const v = view(provider("p", { slots: [slot("oss")] }));
    const lastLoadAtMs = new Map([["p", 0]]);
    assert.equal(planWarmPool(v, demand(1, 40_000), 60_000, { ...options, lastLoadAtMs }).load.length, 0);
    assert.equal(planWarmPool(v, demand(1, 40_000), 400_000, { ...options, lastLoadAtMs }).load.length, 1);
    const needed = new Map([
      ...demand(1, 40_000),
      ["oss", { arrivalRatePerS: 1, meanServiceMs: 40_000, queueDepth: 0, pressurePerS: 0 }],
    ]);
    assert.equal(
      planWarmPool(v, needed, 400_000, { ...options, lastLoadAtMs }).load.filter((l) => l.model === "gemma").length,
      0,
    );
  });
});

describe("DemandTracker", () => {
  it("measures arrival rate, service time and pressure, decaying when traffic stops", () => {
    const d = new DemandTracker({ halfLifeMs: 60_000 });
    for (let t = 0; t < 600_000; t += 500) d.recordArrival("m", t); // 2/s for 10 min
    d.recordCompletion("m", 30_000, 600_000);
    d.recordRejection("m", 600_000);
    const s = d.snapshot(600_000).get("m")!;
    assert.ok(Math.abs(s.arrivalRatePerS - 2) < 0.1, `rate ${s.arrivalRatePerS}`);
    assert.equal(s.meanServiceMs, 30_000);
    assert.ok(s.pressurePerS > 0);
    assert.ok(d.snapshot(1_200_000).get("m")!.arrivalRatePerS < 0.01);
  });
});

describe("capacitySnapshot", () => {
  it("summarises routable, warm, cold, active, queued and budgets per model", () => {
    const v = view(
      provider("w", {
        slots: [slot("gemma", { state: "running", numRunning: 2, tokenBudgetUsed: 10_000, tokenBudgetMax: 150_000 })],
      }),
      provider("c"),
      provider("d", { status: "draining" }),
    );
    const snap = capacitySnapshot(v, new Map([["gemma", 3]]), catalog, 0);
    const g = snap.models.find((m) => m.id === "gemma")!;
    assert.deepEqual(
      [
        g.routable_providers,
        g.warm_providers,
        g.cold_providers,
        g.active_requests,
        g.queued_requests,
        g.queue_limit,
        g.token_budget_total,
        g.token_budget_remaining,
      ],
      [2, 1, 1, 2, 3, 10, 150_000, 140_000],
    );
    assert.ok(g.aggregate_tps > 0 && g.estimated_ttft_ms !== null);
    assert.ok(
      snap.models.some((m) => m.id === "offline-model" && m.routable_providers === 0 && m.estimated_ttft_ms === null),
    );
  });
});
