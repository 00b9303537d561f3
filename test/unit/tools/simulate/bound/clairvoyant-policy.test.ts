import assert from "node:assert/strict";
import { defaultCatalog } from "../../../../../src/models/catalog.js";
import { GIB } from "../../../../../src/scheduler/scheduler-options.js";
import {
  chooseClairvoyant,
  LoadWindow,
  predictFirstTokenMs,
} from "../../../../../src/tools/simulate/bound/clairvoyant-policy.js";
import type { MacSpec, Scenario } from "../../../../../src/tools/simulate/scenario.js";
import { loadTestReportScenario } from "../../../../../src/tools/simulate/scenarios/load-test-report.js";
import { measuredPerf } from "../../../../../src/tools/simulate/scenarios/network-defaults.js";
import { SimProvider, type ModelFacts } from "../../../../../src/tools/simulate/sim-provider.js";
import { runSimulation } from "../../../../../src/tools/simulate/simulator.js";

const facts = new Map<string, ModelFacts>(
  defaultCatalog.map((m) => [
    m.id,
    {
      sizeBytes: m.sizeBytes,
      kvBytesPerToken: m.kvBytesPerToken,
      contextLength: m.contextLength,
      isVision: m.isVision,
    },
  ]),
);
const perf = new Map(measuredPerf.map((p) => [p.id, p]));
const spec = (memoryGb: number, bw: number, slots = 1): MacSpec => ({
  chipName: "Apple M",
  chipFamily: "M4",
  memoryGb,
  memoryBandwidthGbs: bw,
  maxModelSlots: slots,
  version: "0.7.1",
  reportsFreeForLoad: true,
  models: ["gpt-oss-20b", "gemma-4-26b"],
});
const mac = (id: string, memoryGb: number, bw: number, slots = 1) =>
  new SimProvider(id, spec(memoryGb, bw, slots), perf, facts, 16);
const job = (id: string, prompt: number, output: number) => ({
  requestId: id,
  promptTokens: prompt,
  outputTokens: output,
  prefillLeftMs: 0,
  generated: 0,
  firstTokenAtMs: undefined,
});

describe("clairvoyant bound: one decision", () => {
  it("pre-warms a cold Mac for free, so an idle fast Mac beats a busy one", () => {
    const busy = mac("busy", 128, 546);
    busy.submit("gemma-4-26b", job("a", 4000, 2000), 0, true);
    const cold = mac("cold", 128, 546);
    const c = chooseClairvoyant(
      [busy, cold],
      { model: "gemma-4-26b", promptTokens: 900, outputTokens: 500 },
      0,
      new LoadWindow(),
    );
    assert.equal(c?.mac.id, "cold");
    assert.equal(c?.prewarmed, true);
    assert.ok(c.meetsServiceLevel);
  });

  it("never picks a Mac that cannot hold the model under the provider's rule", () => {
    const small = mac("small", 32, 400); // 16 GB × 3 > 32 GB
    const c = chooseClairvoyant(
      [small],
      { model: "gemma-4-26b", promptTokens: 100, outputTokens: 10 },
      0,
      new LoadWindow(),
    );
    assert.equal(c, undefined);
  });

  it("runs no more pre-warms at once than the fleet's parallel loads; beyond them a cold Mac pays its real load", () => {
    const macs = Array.from({ length: 4 }, (_, i) => mac(`m${i}`, 64, 400));
    const w = new LoadWindow();
    const picks = macs.map(() => {
      const c = chooseClairvoyant(macs, { model: "gemma-4-26b", promptTokens: 6000, outputTokens: 100 }, 0, w, {
        parallelLoads: 2,
      })!;
      c.mac.submit("gemma-4-26b", job(`r${c.mac.id}`, 6000, 100), 0, c.prewarmed);
      return c;
    });
    // Long prompts: stacking behind a 17 s prefill is worse than a real load, so the last two load for real.
    assert.deepEqual(
      picks.map((c) => [c.prewarmed, c.loads]),
      [
        [true, false],
        [true, false],
        [false, true],
        [false, true],
      ],
    );
    assert.equal(new Set(picks.map((c) => c.mac.id)).size, 4);
    const loadMs = macs[0]!.loadMs("gemma-4-26b");
    assert.ok(picks[2]!.firstTokenMs >= loadMs, `${picks[2]!.firstTokenMs} ≥ load ${loadMs}`);
    assert.equal(w.overlapping(-loadMs, 0), 2, "two pre-warms before now");
  });

  it("cannot pre-warm over a model that was busy during the load it would have needed", () => {
    const m = mac("m", 64, 400);
    m.submit("gpt-oss-20b", job("g", 100, 5), 0, true);
    for (let t = 250; t <= 2000; t += 250) m.tick(t, 250, 3_600_000);
    assert.equal(m.streams(), 0, "gpt-oss finished");
    // gpt-oss was active a moment ago: a gemma load could not have run on this one-slot Mac before now.
    const p = predictFirstTokenMs(m, { model: "gemma-4-26b", promptTokens: 100, outputTokens: 10 }, 2000, true)!;
    assert.equal(p.prewarmed, false);
    assert.ok(p.loads);
    const later = 2000 + m.loadMs("gemma-4-26b");
    assert.equal(
      predictFirstTokenMs(m, { model: "gemma-4-26b", promptTokens: 100, outputTokens: 10 }, later, true)!.prewarmed,
      true,
    );
  });

  it("keeps the decode floor: stops stacking on a Mac once another stream would drop every stream below 20 tok/s", () => {
    const m = mac("m", 48, 273); // gemma solo 30 tok/s: 2 streams keep 20 tok/s, 3 do not
    m.submit("gemma-4-26b", job("a", 100, 5000), 0, true);
    m.submit("gemma-4-26b", job("b", 100, 5000), 0, true);
    const other = mac("other", 48, 273);
    other.online = true;
    const c = chooseClairvoyant(
      [m, other],
      { model: "gemma-4-26b", promptTokens: 100, outputTokens: 100 },
      0,
      new LoadWindow(),
    );
    assert.equal(c?.mac.id, "other");
  });
});

/** A light open-loop workload (no closed-loop workers: both runs see the same requests) with loads that are free. */
function freeLoadScenario(): Scenario {
  const base = loadTestReportScenario({ hours: 0.25 });
  return {
    ...base,
    workers: [],
    perf: base.perf.map((p) => ({ ...p, loadGbPerS: 1e9, loadBaseMs: 0 })),
    openLoops: base.openLoops.map((l) => ({ ...l, ratePerS: l.ratePerS * 2 })),
  };
}

describe("clairvoyant bound over a run", () => {
  it("is never slower than the kv-aware policy on any request's first token when loads are free (fleet not saturated)", () => {
    const scenario = freeLoadScenario();
    const ttft = (policy: "kv-aware" | "clairvoyant") => {
      const out = new Map<string, number>();
      runSimulation(scenario, policy, 5, undefined, {
        observe: { completed: (id, _m, ms) => out.set(id, ms) },
      });
      return out;
    };
    const ours = ttft("kv-aware");
    const bound = ttft("clairvoyant");
    assert.ok(ours.size > 300, `${ours.size} requests`);
    let compared = 0;
    for (const [id, ms] of bound) {
      const o = ours.get(id);
      if (o === undefined) continue;
      compared++;
      assert.ok(ms <= o + 1e-6, `${id}: bound ${ms.toFixed(0)} ms > ours ${o.toFixed(0)} ms`);
    }
    assert.ok(compared > 0.95 * ours.size, `compared ${compared} of ${ours.size}`);
  });

  it("never exceeds any Mac's memory or model slots on the load-test scenario", () => {
    const scenario = loadTestReportScenario({ hours: 0.25 });
    let checks = 0;
    runSimulation(scenario, "clairvoyant", 2, undefined, {
      observe: {
        step: (_now, macs) => {
          for (const m of macs) {
            assert.ok(m.slots.size <= m.spec.maxModelSlots, `${m.id}: ${m.slots.size} slots`);
            let weightsGb = 0;
            for (const model of m.slots.keys()) {
              assert.ok(m.spec.models.includes(model) && m.fitsMemory(model), `${m.id} holds ${model}`);
              weightsGb += facts.get(model)!.sizeBytes / GIB;
            }
            assert.ok(weightsGb <= m.spec.memoryGb, `${m.id}: ${weightsGb} GiB of weights`);
            checks++;
          }
        },
      },
    });
    assert.ok(checks > 100_000, `${checks} checks`);
  });

  it("refuses nothing and queues nothing while Macs can hold the model", () => {
    const r = runSimulation(loadTestReportScenario({ hours: 0.25 }), "clairvoyant", 2);
    for (const m of r.models) {
      assert.equal(m.rejected, 0, m.model);
      assert.equal(m.queued, 0, m.model);
      assert.ok(m.warmLoads > 0, `${m.model} pre-warmed`);
      // A cold dispatch only when more than 16 loads would overlap (the bound then pays the real load time).
      assert.equal(m.loadRefusals, 0, m.model);
      assert.ok(m.coldDispatches <= 0.01 * m.arrivals, `${m.model}: ${m.coldDispatches} cold of ${m.arrivals}`);
    }
  });
});
