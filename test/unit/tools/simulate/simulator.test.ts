import assert from "node:assert/strict";
import { main, parseSimulateArgs } from "../../../../src/tools/simulate/main.js";
import { mulberry32 } from "../../../../src/tools/shared/mulberry32.js";
import {
  checkTargets,
  formatComparison,
  percentile,
  type SimulationReport,
} from "../../../../src/tools/simulate/report.js";
import { loadTestReportScenario } from "../../../../src/tools/simulate/scenarios/load-test-report.js";
import { twoModelPoolsScenario } from "../../../../src/tools/simulate/scenarios/two-model-pools.js";
import { runSimulation } from "../../../../src/tools/simulate/simulator.js";

describe("routing simulator on the load-test-report scenario", () => {
  const scenario = loadTestReportScenario({ hours: 0.25 });
  let ours: SimulationReport;
  let worst: SimulationReport;

  before(() => {
    ours = runSimulation(scenario, "kv-aware", 7);
    worst = runSimulation(scenario, "worst-case", 7);
  });

  const model = (r: SimulationReport, id: string) => r.models.find((m) => m.model === id)!;

  it("serves both models and completes most requests", () => {
    for (const id of ["gpt-oss-20b", "gemma-4-26b"]) {
      const m = model(ours, id);
      assert.ok(m.arrivals > 100, `${id} arrivals ${m.arrivals}`);
      assert.ok(m.completed > 0.9 * m.arrivals, `${id} completed ${m.completed}/${m.arrivals}`);
      assert.ok(m.ttftMs.p50 > 0 && m.ttftMs.p95 >= m.ttftMs.p50 && m.e2eMs.p99 >= m.e2eMs.p95);
    }
  });

  it("never refuses a request while a capable Mac is idle under the kv-aware policy", () => {
    for (const m of ours.models) assert.equal(m.refusedWhileIdle, 0, m.model);
  });

  it("never routes a cold request to a Mac that refuses the load, unlike the 2x gate", () => {
    for (const m of ours.models) assert.equal(m.loadRefusals, 0, m.model);
    // Same workload on a fleet of 32 GB Macs (the Go 2x gate admits them, the provider's 3x rule refuses)
    // plus 64 GB ones: the worst-case policy keeps sending loads that are refused.
    const mixed = { ...scenario, fleet: scenario.fleet.filter((m) => m.memoryGb === 32 || m.memoryGb === 64) };
    assert.equal(model(runSimulation(mixed, "kv-aware", 7), "gemma-4-26b").loadRefusals, 0);
    assert.ok(model(runSimulation(mixed, "worst-case", 7), "gemma-4-26b").loadRefusals > 0);
  });

  it("meets the zero-refusals-while-idle target on gemma, and the Go baseline does refuse while Macs sit idle", () => {
    const t = checkTargets(ours, worst).find((x) => /refusals while a capable Mac was idle/.test(x.name))!;
    assert.equal(t.met, true, t.measured);
    // Queue-before-shed with full max_tokens reservations: 429s (queue_full / timeout) while capable Macs idle.
    assert.ok(model(worst, "gemma-4-26b").refusedWhileIdle > 0);
  });

  it("the Go baseline queues instead of spilling onto cold Macs while a warm one exists", () => {
    const w = model(worst, "gemma-4-26b");
    const o = model(ours, "gemma-4-26b");
    assert.ok(w.queued > 0, `worst-case queued ${w.queued}`);
    assert.ok(
      o.coldDispatches > w.coldDispatches,
      `cold dispatches ours ${o.coldDispatches} vs worst-case ${w.coldDispatches}`,
    );
  });

  it("samples warm Macs over time: the count falls when traffic stops and models idle out", () => {
    const short = { ...scenario, durationMs: 3_600_000, idleUnloadMs: 300_000 };
    const quiet = {
      ...short,
      workers: short.workers.map((g) => ({ ...g, endMs: Math.min(g.endMs, 300_000) })),
      openLoops: short.openLoops.map((l) => ({ ...l, endMs: 300_000 })),
    };
    for (const policy of ["kv-aware", "worst-case"] as const) {
      const g = model(runSimulation(quiet, policy, 3), "gemma-4-26b");
      assert.ok(g.loadedMacs.max > 0 && g.runningMacs.max > 0, `${policy} warmed something`);
      assert.equal(g.loadedMacs.min, 0, `${policy} idles out to zero`);
      assert.equal(g.runningMacs.min, 0, `${policy} runs nothing once traffic stops`);
      assert.ok(
        g.loadedMacs.median < g.loadedMacs.max,
        `${policy} median ${g.loadedMacs.median} < max ${g.loadedMacs.max}`,
      );
    }
  });

  it("running Macs (the report's warm) never exceed loaded Macs nor requests in flight", () => {
    for (const r of [ours, worst]) {
      for (const m of r.models) {
        for (const k of ["min", "median", "max"] as const) {
          assert.ok(
            m.runningMacs[k] <= m.loadedMacs[k],
            `${r.policy} ${m.model} running ${k} ${m.runningMacs[k]} ≤ loaded ${m.loadedMacs[k]}`,
          );
          assert.ok(
            m.runningMacs[k] <= m.inflightRequests[k],
            `${r.policy} ${m.model} running ${k} ≤ in flight ${m.inflightRequests[k]}`,
          );
        }
      }
    }
  });

  it("retires issue 4's warm-Macs ratio (issue 18): its standing targets are first-token p95 and refusals", () => {
    const names = checkTargets(ours, worst).map((t) => t.name);
    assert.deepEqual(names, [
      "gemma-4-26b: first-token p95 ≤ ½ worst-case",
      "gemma-4-26b: zero refusals while a capable Mac was idle",
    ]);
  });

  it("is deterministic by seed", () => {
    assert.deepEqual(runSimulation(scenario, "kv-aware", 7), ours);
  });

  it("formats a side-by-side Markdown table with ratios", () => {
    const text = formatComparison(ours, worst);
    assert.match(text, /### gemma-4-26b/);
    assert.match(text, /\| first token p95 \| [\d.]+ s \| [\d.]+ s \| [\d.]+×|=/);
    assert.match(text, /\| warm \(running\) Macs min \/ median \/ max \| \d+ \/ \d+ \/ \d+ \| \d+ \/ \d+ \/ \d+ \|/);
    assert.match(text, /\| loaded Macs min \/ median \/ max \| \d+ \/ \d+ \/ \d+ \|/);
    assert.match(text, /### Targets \(issue 4\)/);
    assert.match(text, /\| gemma-4-26b: zero refusals while a capable Mac was idle \| 0 \(worst-case \d+\) \| met \|/);
    assert.equal(checkTargets(ours, worst).length, 2);
  });
});

describe("routing simulator on the two-model-pools scenario", () => {
  const scenario = twoModelPoolsScenario({ hours: 0.3 });
  let pooled: SimulationReport;
  let open: SimulationReport;
  before(() => {
    pooled = runSimulation(scenario, "kv-aware", 3, undefined, { pools: true });
    open = runSimulation(scenario, "kv-aware", 3);
  });
  const model = (r: SimulationReport, id: string) => r.models.find((m) => m.model === id)!;

  it("keeps each Mac in one pool: pool members add up to the fleet and no more Macs hold a model than its pool has", () => {
    for (const m of pooled.models)
      assert.ok(
        m.loadedMacs.max <= m.poolMembers.max,
        `${m.model}: loaded ${m.loadedMacs.max} > members ${m.poolMembers.max}`,
      );
    const members = pooled.models.reduce((s, m) => s + m.poolMembers.median, 0);
    assert.ok(members <= scenario.fleet.length, `${members} members for ${scenario.fleet.length} Macs`);
    // Without pools, the multi-model Macs load both models side by side.
    const openLoaded = open.models.reduce((s, m) => s + m.loadedMacs.max, 0);
    assert.ok(
      openLoaded > scenario.fleet.length,
      `no-pools loads ${openLoaded} model copies on ${scenario.fleet.length} Macs`,
    );
  });

  it("moves idle, empty Macs into the pool a burst starves, and refuses nothing while a capable Mac is idle", () => {
    const gemma = model(pooled, "gemma-4-26b");
    assert.ok(gemma.reassignments > 0, "the gemma burst takes over idle Macs of the gpt-oss pool");
    assert.ok(gemma.poolMembers.max > gemma.poolMembers.min);
    for (const m of pooled.models) assert.equal(m.refusedWhileIdle, 0, m.model);
    assert.ok(model(pooled, "gpt-oss-20b").completed >= 0.97 * model(pooled, "gpt-oss-20b").arrivals);
  });

  it("reports pools against no pools from the CLI", () => {
    const text = main(["--scenario", "two-model-pools", "--hours", "0.1"]);
    assert.match(text, /kv-aware \+ pools \| kv-aware \|/);
    assert.match(text, /pool members min \/ median \/ max/);
    assert.doesNotMatch(text, /Targets \(issue 4\)/, "issue 4's targets are against the Go policy only");
  });
});

describe("simulate CLI entry", () => {
  it("parses its flags and rejects unknown ones", () => {
    assert.deepEqual(parseSimulateArgs(["--scenario", "load-test-report", "--seed=3", "--hours", "0.5"]), {
      scenario: "load-test-report",
      seed: 3,
      hours: 0.5,
    });
    assert.throws(() => parseSimulateArgs(["--scenario", "nope"]), /unknown scenario/);
    assert.throws(() => parseSimulateArgs(["--fast"]), /needs a value|unknown option/);
  });

  it("runs both policies from argv", () => {
    assert.match(main(["--hours", "0.05", "--seed", "2"]), /kv-aware \| worst-case/);
  });
});

describe("simulator utilities", () => {
  it("mulberry32 repeats by seed and differs across seeds", () => {
    const a = mulberry32(1);
    const b = mulberry32(1);
    const c = mulberry32(2);
    const xs = [a(), a(), a()];
    assert.deepEqual([b(), b(), b()], xs);
    assert.notDeepEqual([c(), c(), c()], xs);
    assert.ok(xs.every((x) => x >= 0 && x < 1));
  });

  it("percentile uses nearest rank", () => {
    assert.equal(percentile([5, 1, 4, 2, 3], 50), 3);
    assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95), 10);
    assert.equal(percentile([], 95), 0);
  });
});
