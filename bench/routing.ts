/**
 * Routing quality: the routing simulator (src/tools/simulate) runs each scenario under the production kv-aware
 * policy, the Go coordinator's worst-case policy and the clairvoyant bound with the same seed, and prints the
 * simulator's own side-by-side table (ratios to the worst-case policy and to the bound) with issue 18's
 * targets. The simulator is deterministic for a seed, so these numbers are comparable between runs (unlike the
 * timing benchmarks).
 */
import type { ModelReport } from "../src/tools/simulate/report.js";
import { compareToBound, scenarios } from "../src/tools/simulate/main.js";
import { BOUND_TARGETS } from "../src/tools/simulate/targets.js";
import { ratio, target, type BenchResult, type BenchTarget } from "./bench-result.js";

/** Options of {@link runRoutingBench}. */
export interface RoutingBenchOptions {
  /**
   * Scenario names (default: every scenario whose baseline is the worst-case policy; `two-model-pools` compares
   * pools with no pools and is run by `coordinator simulate`).
   */
  scenarios?: string[];
  /** Simulated hours per scenario (default: the scenario's own, 3 h for load-test-report). */
  hours?: number;
  seed?: number;
}

/** The per-model numbers kept in the history (the full report is large). */
function summary(m: ModelReport) {
  return {
    model: m.model,
    arrivals: m.arrivals,
    completed: m.completed,
    rejected: m.rejected,
    refusedWhileIdle: m.refusedWhileIdle,
    ttftP95Ms: m.ttftMs.p95,
    e2eP95Ms: m.e2eMs.p95,
    utilisation: m.utilisation,
    throughputTps: m.throughputTps,
    goodputPerHour: m.goodputPerHour,
    spread: m.spread,
  };
}

/**
 * Runs the scenarios; targets: kv-aware completes at least as many requests and refuses none while idle; on
 * gemma, goodput ≥ 90 % of the clairvoyant bound's and first-token p95 ≤ 1.5× the bound's; spread ≤ 1.3 on
 * every model; and, on the report's scenario, issue 4's first-token p95 ≤ ½ of the worst-case policy's.
 */
export function runRoutingBench(options: RoutingBenchOptions = {}): BenchResult {
  const names =
    options.scenarios ??
    Object.keys(scenarios).filter((n) => (scenarios[n]!({}).baseline ?? "worst-case") === "worst-case");
  const seed = options.seed ?? 1;
  const parts: string[] = [];
  const targets: BenchTarget[] = [];
  const runs: Record<string, unknown>[] = [];
  for (const name of names) {
    const make = scenarios[name];
    if (!make) throw new Error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(", ")}`);
    const scenario = make(options.hours === undefined ? {} : { hours: options.hours });
    const { ours, worst, bound, text } = compareToBound(scenario, seed);
    parts.push(text);
    const sum = (r: typeof ours, f: (m: ModelReport) => number) => r.models.reduce((a, m) => a + f(m), 0);
    const completedRatio =
      sum(worst, (m) => m.completed) > 0 ? sum(ours, (m) => m.completed) / sum(worst, (m) => m.completed) : NaN;
    targets.push(target(`${name}: completed requests kv-aware ÷ worst-case`, completedRatio, ">=", 1, "×"));
    targets.push(
      target(
        `${name}: kv-aware refusals while a capable Mac was idle`,
        sum(ours, (m) => m.refusedWhileIdle),
        "<",
        1,
        "requests",
      ),
    );
    // Issue 18's ratios to the bound, on gemma (the model the load-test report saw stall), and the spread.
    const g = ours.models.find((m) => m.model === "gemma-4-26b");
    const gb = bound.models.find((m) => m.model === "gemma-4-26b");
    if (g && gb) {
      targets.push(
        target(
          `${name}: gemma goodput kv-aware ÷ bound`,
          g.goodputPerHour / gb.goodputPerHour,
          ">=",
          BOUND_TARGETS.goodputShareOfBound,
          "×",
        ),
      );
      targets.push(
        target(
          `${name}: gemma first-token p95 kv-aware ÷ bound`,
          g.ttftMs.p95 / gb.ttftMs.p95,
          "<=",
          BOUND_TARGETS.firstTokenP95OverBound,
          "×",
        ),
      );
    }
    for (const m of ours.models)
      targets.push(target(`${name}: ${m.model} spread`, m.spread, "<=", BOUND_TARGETS.maxSpread, "requests/Mac"));
    // Issue 4's standing ratio, on the scenario it was set on (the one modelled on the report).
    const gw = worst.models.find((m) => m.model === "gemma-4-26b");
    if (g && gw && scenario.observed !== undefined)
      targets.push(
        target(`${name}: gemma first-token p95 kv-aware ÷ worst-case`, g.ttftMs.p95 / gw.ttftMs.p95, "<=", 0.5, "×"),
      );
    parts.push(
      `Total completed: kv-aware ${sum(ours, (m) => m.completed)} vs worst-case ${sum(worst, (m) => m.completed)} (${ratio(
        sum(ours, (m) => m.completed),
        sum(worst, (m) => m.completed),
      )}).`,
    );
    runs.push({
      scenario: name,
      durationMs: ours.durationMs,
      macs: ours.macs,
      kvAware: ours.models.map(summary),
      worstCase: worst.models.map(summary),
      bound: bound.models.map(summary),
      completedRatio,
    });
  }
  return {
    name: "routing",
    title: "Routing quality (simulator)",
    markdown: parts.join("\n\n"),
    targets,
    data: { seed, hours: options.hours ?? null, runs },
  };
}
