/**
 * `coordinator simulate [--scenario NAME] [--seed N] [--hours H]`: runs a scenario under the kv-aware policy, the
 * worst-case policy and the clairvoyant bound and returns the side-by-side Markdown table with the targets. Pure apart from argument parsing: the CLI
 * prints the returned text.
 */
import { parseFlags } from "../../util/parse-flags.js";
import { formatComparison } from "./report.js";
import type { Scenario } from "./scenario.js";
import { fleetChurnScenario } from "./scenarios/fleet-churn.js";
import { loadTestReportScenario } from "./scenarios/load-test-report.js";
import { twoModelPoolsScenario } from "./scenarios/two-model-pools.js";
import { runSimulation } from "./simulator.js";
import { checkBoundTargets, checkFaithfulBaseline } from "./targets.js";

/** Scenarios by name; each takes the duration in hours. */
export const scenarios: Readonly<Record<string, (o: { hours?: number }) => Scenario>> = {
  "load-test-report": loadTestReportScenario,
  "two-model-pools": twoModelPoolsScenario,
  "fleet-churn": fleetChurnScenario,
};

export interface SimulateArgs {
  scenario: string;
  seed: number;
  hours: number | undefined;
}

export const simulateUsage = `Usage: coordinator simulate [--scenario NAME] [--seed N] [--hours H]

Runs the real scheduler, queue and warm-pool planner in simulated time over a modelled fleet, with the
kv-aware policy, with its baseline and (against the worst-case baseline) with the clairvoyant bound, and prints
them side by side (Markdown) with the targets, met or not. Deterministic for a seed; takes 5–15 seconds.

  --scenario NAME   load-test-report (default): kv-aware vs the Go coordinator's worst-case policy vs the bound, 3 h
                    fleet-churn: three models, Macs joining and leaving, thermal throttling, a diurnal
                    load curve; the same three policies, 2 h
                    two-model-pools: multi-model Macs, kv-aware with model pools vs without, 1 h
  --seed N          random seed (default 1)
  --hours H         simulated duration (default: the scenario's own)
`;

/** A bad command line: the CLI prints the message alone (no stack) and exits 2. */
function usageError(message: string): Error {
  const e = new Error(`${message}\n\n${simulateUsage}`);
  e.name = "UsageError";
  return e;
}

/** Parses `--scenario NAME --seed N --hours H` (also `--x=value`). Throws on unknown flags or values. */
export function parseSimulateArgs(argv: readonly string[]): SimulateArgs {
  // biome-ignore lint/suspicious/noImplicitAnyLet: typed by the assignment in the try (TypeScript's evolving let)
  let v;
  try {
    v = parseFlags(argv, {
      scenario: { type: "string", default: "load-test-report" },
      seed: { type: "string", default: "1" },
      hours: { type: "string" },
    });
  } catch (e) {
    throw usageError((e as Error).message);
  }
  const out: SimulateArgs = {
    scenario: v.scenario,
    seed: Number(v.seed),
    hours: v.hours === undefined ? undefined : Number(v.hours),
  };
  if (!scenarios[out.scenario])
    throw usageError(`unknown scenario ${out.scenario}; known: ${Object.keys(scenarios).join(", ")}`);
  if (!Number.isInteger(out.seed)) throw usageError("--seed must be an integer");
  if (out.hours !== undefined && !(out.hours > 0)) throw usageError("--hours must be positive");
  return out;
}

/** Runs both policies and returns the comparison text. */
export function main(argv: readonly string[]): string {
  const args = parseSimulateArgs(argv);
  const scenario = scenarios[args.scenario]!(args.hours === undefined ? {} : { hours: args.hours });
  if (scenario.baseline === "no-pools") {
    return formatComparison(
      runSimulation(scenario, "kv-aware", args.seed, undefined, { pools: true }),
      runSimulation(scenario, "kv-aware", args.seed),
    );
  }
  return compareToBound(scenario, args.seed).text;
}

/** The three runs of a scenario against the worst-case policy, their table and issue 18's targets. */
export function compareToBound(scenario: Scenario, seed: number) {
  const ours = runSimulation(scenario, "kv-aware", seed);
  const worst = runSimulation(scenario, "worst-case", seed);
  const bound = runSimulation(scenario, "clairvoyant", seed);
  // Issue 4's ratios to the worst-case policy were set on the report's scenario (the one with observations).
  const targets = [
    ...checkBoundTargets(ours, worst, bound, "gemma-4-26b", scenario.observed !== undefined),
    ...checkFaithfulBaseline(scenario, worst),
  ];
  const text = formatComparison(ours, worst, { bound, targets, targetsTitle: "Targets (issues 4 and 18)" });
  return { ours, worst, bound, targets, text };
}
