/**
 * `coordinator simulate [--scenario NAME] [--seed N] [--hours H]`: runs a scenario under the kv-aware and the
 * worst-case policy and returns the side-by-side Markdown table. Pure apart from argument parsing: the CLI
 * prints the returned text.
 */
import { formatComparison } from "./report.js";
import type { Scenario } from "./scenario.js";
import { loadTestReportScenario } from "./scenarios/load-test-report.js";
import { runSimulation } from "./simulator.js";

/** Scenarios by name; each takes the duration in hours. */
export const scenarios: Readonly<Record<string, (o: { hours?: number }) => Scenario>> = {
  "load-test-report": loadTestReportScenario,
};

export interface SimulateArgs {
  scenario: string;
  seed: number;
  hours: number | undefined;
}

/** Parses `--scenario NAME --seed N --hours H` (also `--x=value`). Throws on unknown flags or values. */
export function parseSimulateArgs(argv: readonly string[]): SimulateArgs {
  const out: SimulateArgs = { scenario: "load-test-report", seed: 1, hours: undefined };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split("=", 2) as [string, string | undefined];
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === "--scenario") out.scenario = value;
    else if (flag === "--seed") out.seed = Number.parseInt(value, 10);
    else if (flag === "--hours") out.hours = Number.parseFloat(value);
    else throw new Error(`unknown option ${flag}`);
  }
  if (!scenarios[out.scenario]) throw new Error(`unknown scenario ${out.scenario}; known: ${Object.keys(scenarios).join(", ")}`);
  if (!Number.isFinite(out.seed)) throw new Error("--seed must be an integer");
  if (out.hours !== undefined && !(out.hours > 0)) throw new Error("--hours must be positive");
  return out;
}

/** Runs both policies and returns the comparison text. */
export function main(argv: readonly string[]): string {
  const args = parseSimulateArgs(argv);
  const scenario = scenarios[args.scenario]!(args.hours === undefined ? {} : { hours: args.hours });
  const ours = runSimulation(scenario, "kv-aware", args.seed);
  const worst = runSimulation(scenario, "worst-case", args.seed);
  return formatComparison(ours, worst);
}
