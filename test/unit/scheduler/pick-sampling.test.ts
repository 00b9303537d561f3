/**
 * Bounded work per decision on large fleets: the walk is sampled, but warm capacity is never missed (the
 * registry's warm index is walked first) and a big fleet still picks well.
 */
import assert from "node:assert/strict";
import { pick } from "../../../src/scheduler/pick.js";
import { resolveSchedulerOptions } from "../../../src/scheduler/scheduler-options.js";
import type { ProviderView, RegistryView } from "../../../src/registry/types.js";
import { mulberry32 } from "../../../src/tools/shared/mulberry32.js";
import { catalog, fixedEstimator, healthy, provider, request, slot } from "./fixtures.js";

function indexed(providers: ProviderView[]): RegistryView {
  const byModel = new Map<string, ProviderView[]>();
  const warmByModel = new Map<string, ProviderView[]>();
  for (const p of providers) {
    for (const m of p.models) (byModel.get(m.id) ?? byModel.set(m.id, []).get(m.id)!).push(p);
    for (const s of p.slots)
      if (s.state === "running" || s.state === "idle")
        (warmByModel.get(s.model) ?? warmByModel.set(s.model, []).get(s.model)!).push(p);
  }
  return { providers, byModel, warmByModel };
}

const ctx = (seed: number) => ({
  nowMs: 0,
  random: mulberry32(seed),
  health: healthy(),
  estimator: fixedEstimator(200),
  catalog,
  options: resolveSchedulerOptions({ candidateSample: 8 }),
});

describe("pick on large fleets (sampled walk)", () => {
  it("finds the one warm Mac among hundreds of cold ones", () => {
    const cold = Array.from({ length: 500 }, (_, i) => provider(`cold-${i}`));
    const warm = provider("warm", { slots: [slot("oss")] });
    const v = indexed([...cold.slice(0, 250), warm, ...cold.slice(250)]);
    for (let seed = 1; seed <= 20; seed++) {
      const d = pick(v, request("oss"), ctx(seed));
      assert.equal(d.kind === "picked" && d.providerId, "warm", `seed ${seed}`);
    }
  });

  it("samples among many alike warm Macs, spreading picks rather than always choosing the same one", () => {
    const v = indexed(Array.from({ length: 200 }, (_, i) => provider(`w-${i}`, { slots: [slot("oss")] })));
    const chosen = new Set<string>();
    for (let seed = 1; seed <= 30; seed++) {
      const d = pick(v, request("oss"), ctx(seed));
      assert.equal(d.kind, "picked");
      if (d.kind === "picked") chosen.add(d.providerId);
    }
    assert.ok(chosen.size >= 10, `picks spread over ${chosen.size} Macs`);
  });

  it("still reports why nobody can serve when every Mac of a large fleet fails the gates", () => {
    const v = indexed(Array.from({ length: 300 }, (_, i) => provider(`p-${i}`, { slots: [slot("oss")] })));
    const d = pick(v, request("oss", { requiresVision: true }), ctx(3));
    assert.equal(d.kind, "reject");
    assert.match(d.kind === "reject" ? d.message : "", /vision/);
  });
});
