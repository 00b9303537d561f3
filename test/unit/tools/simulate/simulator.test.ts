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
import { fleetChurnScenario } from "../../../../src/tools/simulate/scenarios/fleet-churn.js";
import { twoModelPoolsScenario } from "../../../../src/tools/simulate/scenarios/two-model-pools.js";
import type { MacSpec, Scenario } from "../../../../src/tools/simulate/scenario.js";
import { checkBoundTargets, checkFaithfulBaseline } from "../../../../src/tools/simulate/targets.js";
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

  it("meets the zero-refusals-while-idle target on gemma", () => {
    const t = checkTargets(ours, worst).find((x) => /refusals while a capable Mac was idle/.test(x.name))!;
    assert.equal(t.met, true, t.measured);
  });

  it("the Go baseline spills onto cold Macs through its cost scan and pays the loads in first token", () => {
    // Go weighs an idle on-disk Mac at a 30 s penalty against warm ones (§3.4) and its warm pool barely
    // pre-warms; ours pre-warms from the planner, so it dispatches cold far less and its first tokens come sooner.
    const w = model(worst, "gemma-4-26b");
    const o = model(ours, "gemma-4-26b");
    assert.ok(
      w.coldDispatches > 2 * o.coldDispatches,
      `cold dispatches worst-case ${w.coldDispatches} vs ours ${o.coldDispatches}`,
    );
    assert.ok(w.ttftMs.p95 > o.ttftMs.p95, `first-token p95 worst-case ${w.ttftMs.p95} vs ours ${o.ttftMs.p95}`);
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
    // Seed 1's first heartbeats put few Macs in the gemma pool (3 at its smallest), so its burst must
    // take Macs from the gpt-oss pool; with a larger first share (seed 3: 11 of 24) the burst only queues.
    pooled = runSimulation(scenario, "kv-aware", 1, undefined, { pools: true });
    open = runSimulation(scenario, "kv-aware", 1);
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

describe("routing simulator bursts", () => {
  it("a worker group with a request count sends that many, and warm counts between bursts leave its samples out", () => {
    const base = loadTestReportScenario({ hours: 0.25 });
    const burst = {
      model: "gpt-oss-20b",
      concurrency: 8,
      prompt: { median: 500, sigma: 0.3, min: 50, max: 2000 },
      maxTokens: 512,
      output: { median: 300, sigma: 0.3, min: 1, max: 512 },
      vision: false,
      startMs: 60_000,
      endMs: 600_000,
      thinkMs: 500,
    };
    const run = (requests: number | undefined) =>
      runSimulation(
        {
          ...base,
          openLoops: [],
          workers: [requests === undefined ? burst : { ...burst, requests }],
        },
        "kv-aware",
        1,
      ).models.find((m) => m.model === "gpt-oss-20b")!;
    const sized = run(20);
    assert.equal(sized.arrivals, 20);
    assert.ok(sized.runningMacs.max >= 1, "the burst ran");
    assert.deepEqual(sized.runningMacsBetweenBursts, { min: 0, median: 0, max: 0 });
    // Without a count the group is a closed loop for its whole window, and nothing counts as a burst.
    const open = run(undefined);
    assert.ok(open.arrivals > 100, `${open.arrivals}`);
    assert.deepEqual(open.runningMacsBetweenBursts, open.runningMacs);
  });
});

describe("routing simulator with churn, throttling and a diurnal curve", () => {
  const base = loadTestReportScenario({ hours: 0.25 });
  const m64: MacSpec = { ...base.fleet.find((m) => m.memoryGb === 64)!, reportsFreeForLoad: true };
  /** Two 64 GB Macs and one steady gpt-oss loop of long answers. */
  const tiny = (fleet: MacSpec[]): Scenario => ({
    ...base,
    durationMs: 1_200_000,
    fleet,
    workers: [],
    openLoops: [{ ...base.openLoops[0]!, ratePerS: 0.05, output: { median: 3000, sigma: 0.1, min: 2000, max: 4096 } }],
  });
  const gptOss = (r: SimulationReport) => r.models.find((m) => m.model === "gpt-oss-20b")!;

  it("routes a leaving Mac's requests again, and they complete on the Macs that stay", () => {
    const leaves = { ...m64, online: [{ fromMs: 0, toMs: 600_000 }] };
    for (const policy of ["kv-aware", "clairvoyant"] as const) {
      const r = gptOss(runSimulation(tiny([leaves, m64]), policy, 4));
      assert.ok(r.interrupted > 0, `${policy}: interrupted ${r.interrupted}`);
      assert.ok(r.completed >= r.arrivals - 4, `${policy}: completed ${r.completed} of ${r.arrivals}`);
    }
    // The same fleet without churn interrupts nothing.
    assert.equal(gptOss(runSimulation(tiny([m64, m64]), "kv-aware", 4)).interrupted, 0);
  });

  it("a Mac that joins late serves nothing before it joins", () => {
    const late = { ...m64, online: [{ fromMs: 1_000_000, toMs: 1_200_000 }] };
    let early = 0;
    runSimulation(tiny([late, m64]), "kv-aware", 4, undefined, {
      observe: { step: (now, macs) => void (now < 1_000_000 && macs[0]!.streams() > 0 && early++) },
    });
    assert.equal(early, 0);
  });

  it("thermal throttling slows a Mac's decode", () => {
    const hot = { ...m64, throttled: [{ fromMs: 0, toMs: 1_200_000, factor: 0.5 }] };
    const cool = gptOss(runSimulation(tiny([m64]), "kv-aware", 4));
    const throttled = gptOss(runSimulation(tiny([hot]), "kv-aware", 4));
    assert.ok(throttled.e2eMs.p50 > 1.5 * cool.e2eMs.p50, `${throttled.e2eMs.p50} vs ${cool.e2eMs.p50}`);
  });

  it("a diurnal curve brings more arrivals at its peak than in its trough", () => {
    const curve = (phaseMs: number): Scenario => ({
      ...tiny([m64, m64]),
      openLoops: [
        {
          ...base.openLoops[0]!,
          ratePerS: 0.2,
          endMs: 1_200_000,
          diurnal: { periodMs: 2_400_000, amplitude: 0.9, phaseMs },
        },
      ],
    });
    // First 20 min of a 40 min period: the peak half (phase 0) against the trough half (phase −½ period).
    const peak = gptOss(runSimulation(curve(0), "kv-aware", 4)).arrivals;
    const trough = gptOss(runSimulation(curve(-1_200_000), "kv-aware", 4)).arrivals;
    assert.ok(peak > 2 * trough, `peak ${peak} vs trough ${trough}`);
  });

  it("gives every policy the same open-loop arrivals, however its closed-loop workers fared", () => {
    // fleet-churn's gpt-oss traffic is open-loop only, while qwen and gemma workers run in the same period and
    // finish (and draw their next request) at times that depend on the policy.
    const churn = fleetChurnScenario({ hours: 0.75 });
    const runs = (["kv-aware", "worst-case", "clairvoyant"] as const).map((policy) => runSimulation(churn, policy, 5));
    const of = (r: SimulationReport, id: string) => r.models.find((m) => m.model === id)!;
    const gpt = runs.map((r) => of(r, "gpt-oss-20b").arrivals);
    assert.ok(gpt[0]! > 100, `gpt-oss arrivals ${gpt[0]}`);
    assert.deepEqual(gpt, [gpt[0], gpt[0], gpt[0]]);
    const qwen = runs.map((r) => of(r, "qwen3-8b").arrivals);
    assert.notDeepEqual(qwen, [qwen[0], qwen[0], qwen[0]], "closed-loop arrivals do follow the policy");
  });

  it("prints the three policies and issue 18's targets for the churn scenario, every model's spread included", () => {
    const text = main(["--scenario", "fleet-churn", "--hours", "0.1", "--seed", "2"]);
    assert.match(text, /\| metric \| kv-aware \| worst-case \| clairvoyant \| ours ÷ worst-case \| ours ÷ bound \|/);
    assert.match(text, /first token ≤ 10 s and decode ≥ 20 tok\/s per stream/);
    assert.match(text, /### Targets \(issues 4 and 18\)/);
    for (const model of ["gemma-4-26b", "gpt-oss-20b", "qwen3-8b"])
      assert.match(text, new RegExp(`\\| ${model}: spread ≤ 1.3 \\|`));
    assert.match(text, /\| gemma-4-26b: goodput ≥ 90 % of the bound \| \d+ vs \d+ \/h/);
    assert.doesNotMatch(text, /faithful baseline/, "the churn scenario has no observations to reproduce");
    assert.equal(fleetChurnScenario({ hours: 1 }).perf.length, 3);
  });
});

describe("issue 18's targets", () => {
  const report = (model: string, over: Partial<SimulationReport["models"][number]>): SimulationReport => ({
    scenario: "s",
    policy: "p",
    seed: 1,
    durationMs: 3_600_000,
    macs: 1,
    models: [
      {
        model,
        arrivals: 0,
        admitted: 0,
        queued: 0,
        rejected: 0,
        rejectReasons: {},
        completed: 0,
        ttftMs: { p50: 0, p95: 0, p99: 0 },
        ttftMaxMs: 0,
        e2eMs: { p50: 0, p95: 0, p99: 0 },
        runningMacs: { min: 0, median: 0, max: 0 },
        runningMacsBetweenBursts: { min: 0, median: 0, max: 0 },
        loadedMacs: { min: 0, median: 0, max: 0 },
        poolMembers: { min: 0, median: 0, max: 0 },
        reassignments: 0,
        inflightRequests: { min: 0, median: 0, max: 0 },
        capableMacs: 1,
        utilisation: 0,
        throughputTps: 0,
        refusedWhileIdle: 0,
        loadRefusals: 0,
        coldDispatches: 0,
        warmLoads: 0,
        stillQueued: 0,
        goodputPerHour: 0,
        missedFirstToken: 0,
        missedDecode: 0,
        spread: 0,
        interrupted: 0,
        ...over,
      },
    ],
  });
  const g = "gemma-4-26b";
  const met = (checks: { name: string; met: boolean }[], re: RegExp) => checks.find((c) => re.test(c.name))!.met;

  it("judges goodput, first-token p95 and spread at their boundaries", () => {
    const bound = report(g, { goodputPerHour: 1000, ttftMs: { p50: 0, p95: 4000, p99: 0 }, spread: 1 });
    const worst = report(g, { ttftMs: { p50: 0, p95: 20_000, p99: 0 } });
    const at = checkBoundTargets(
      report(g, { goodputPerHour: 900, ttftMs: { p50: 0, p95: 6000, p99: 0 }, spread: 1.3 }),
      worst,
      bound,
    );
    assert.equal(met(at, /goodput/), true);
    assert.equal(met(at, /first-token p95 ≤ 1.5×/), true);
    assert.equal(met(at, /spread/), true);
    const past = checkBoundTargets(
      report(g, { goodputPerHour: 899, ttftMs: { p50: 0, p95: 6001, p99: 0 }, spread: 1.31 }),
      worst,
      bound,
    );
    assert.equal(met(past, /goodput/), false);
    assert.equal(met(past, /first-token p95 ≤ 1.5×/), false);
    assert.equal(met(past, /spread/), false);
  });

  it("calls the baseline faithful within ±max(2, 30 %) of each observed warm count and ×/÷ 2 of the tail", () => {
    const scenario = {
      ...loadTestReportScenario({ hours: 0.1 }),
      observed: [{ model: g, runningMacs: { min: 1, median: 10, max: 20 }, firstTokenTailMs: 100_000 }],
    };
    // Judged on the samples between bursts; the whole run's (bursts included) are shown, not judged.
    const whole = { min: 0, median: 40, max: 60 };
    const at = (runningMacsBetweenBursts: { min: number; median: number; max: number }, p99: number) =>
      checkFaithfulBaseline(
        scenario,
        report(g, { runningMacs: whole, runningMacsBetweenBursts, ttftMs: { p50: 0, p95: 0, p99 } }),
      ).map((c) => c.met);
    assert.deepEqual(at({ min: 3, median: 13, max: 26 }, 50_000), [true, true]);
    assert.deepEqual(at({ min: 0, median: 14, max: 20 }, 49_000), [false, false]);
    assert.deepEqual(at({ min: 1, median: 10, max: 27 }, 200_000), [false, true]);
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
