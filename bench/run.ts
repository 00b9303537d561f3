/**
 * `npm run bench` (`coordinator bench`): runs the benchmark suite on this machine, prints each comparison with
 * its ratios and targets (met / NOT MET), and appends the run to `bench/results/<timestamp>-<commit>.json`.
 *
 * Options: `--only gateway,ledger,scheduler,capacity,routing,flood,cluster` (default: all), `--quick` (short durations and
 * small sizes: a smoke run, not a measurement), `--results-dir DIR` (default bench/results), `--no-save`.
 * Env: BENCH_DATABASE_URL (admin URL of a PostgreSQL server to create scratch databases on; else
 * TEST_DATABASE_URL, else an embedded PostgreSQL).
 */
import { execFile } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parseFlags } from "../src/util/parse-flags.js";
import { formatTargets, type BenchResult } from "./bench-result.js";

const names = ["gateway", "ledger", "scheduler", "capacity", "routing", "flood", "cluster"] as const;
type BenchName = (typeof names)[number];

/** Where the suite writes its progress and tables. */
export interface BenchIo {
  write(text: string): void;
}

/** Parsed `bench` arguments. */
export interface BenchArgs {
  only: BenchName[];
  quick: boolean;
  resultsDir: string;
  save: boolean;
}

const defaultResultsDir = join(dirname(fileURLToPath(import.meta.url)), "results");

const usage = `Usage: coordinator bench [--only ${names.join(",")}] [--quick] [--results-dir DIR] [--no-save]
Runs each benchmark side by side with its baseline and prints ratios and targets.
Env: BENCH_DATABASE_URL (PostgreSQL admin URL for scratch databases; default TEST_DATABASE_URL or embedded).
`;

/** Parses the arguments after `bench`. Throws on unknown options or benchmark names. */
export function parseBenchArgs(argv: readonly string[]): BenchArgs | "help" {
  const v = parseFlags(argv, {
    help: { type: "boolean", short: "h", default: false },
    quick: { type: "boolean", default: false },
    "no-save": { type: "boolean", default: false },
    "results-dir": { type: "string" },
    only: { type: "string" },
  });
  if (v.help) return "help";
  const out: BenchArgs = { only: [...names], quick: v.quick, resultsDir: defaultResultsDir, save: !v["no-save"] };
  if (v["results-dir"] !== undefined) out.resultsDir = resolve(v["results-dir"]);
  if (v.only !== undefined) {
    const list = v.only
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    const bad = list.filter((s) => !(names as readonly string[]).includes(s));
    if (bad.length > 0 || list.length === 0)
      throw new Error(`--only: unknown benchmark ${bad.join(", ") || "(none)"}; known: ${names.join(", ")}`);
    out.only = names.filter((n) => list.includes(n));
  }
  return out;
}

async function runOne(name: BenchName, quick: boolean, env: NodeJS.ProcessEnv, io: BenchIo): Promise<BenchResult> {
  switch (name) {
    case "scheduler": {
      const { runSchedulerBench } = await import("./scheduler.js");
      return runSchedulerBench(quick ? { timePerCellMs: 60, minDecisions: 20 } : {});
    }
    case "routing": {
      const { runRoutingBench } = await import("./routing.js");
      return runRoutingBench(quick ? { hours: 0.05 } : {});
    }
    case "ledger": {
      const { runLedgerSection } = await import("./ledger-section.js");
      return runLedgerSection({ quick, env });
    }
    case "gateway": {
      const { runGatewayBench } = await import("./gateway-overhead.js");
      return runGatewayBench({ quick, env, progress: (line) => io.write(`  ${line}\n`) });
    }
    case "flood": {
      const { runProviderFloodBench } = await import("./provider-flood.js");
      return runProviderFloodBench({ quick, env, progress: (line) => io.write(`  ${line}\n`) });
    }
    case "cluster": {
      const { runClusterBench } = await import("./cluster-scale-out.js");
      return runClusterBench({ quick, env, progress: (line) => io.write(`  ${line}\n`) });
    }
    case "capacity": {
      const { runCapacityBench } = await import("./provider-capacity.js");
      return runCapacityBench({ quick, env, progress: (line) => io.write(`  ${line}\n`) });
    }
  }
}

async function gitCommit(): Promise<{ commit: string; dirty: boolean }> {
  const run = promisify(execFile);
  try {
    const cwd = dirname(fileURLToPath(import.meta.url));
    const { stdout } = await run("git", ["rev-parse", "HEAD"], { cwd });
    const { stdout: status } = await run("git", ["status", "--porcelain", "--untracked-files=no"], { cwd });
    return { commit: stdout.trim(), dirty: status.trim().length > 0 };
  } catch {
    return { commit: "unknown", dirty: false };
  }
}

/** The JSON appended to the history for one run. */
export interface BenchRunRecord {
  startedAt: string;
  commit: string;
  dirty: boolean;
  quick: boolean;
  machine: { cpus: number; cpuModel: string; memoryBytes: number; node: string; platform: string };
  results: BenchResult[];
  failures: { name: string; error: string }[];
}

/**
 * Runs the selected benchmarks in order and returns the exit code: 0 when every benchmark ran (missed targets
 * are results, printed as NOT MET), 1 when one crashed, 2 for bad arguments.
 */
export async function runBench(
  argv: string[],
  env: NodeJS.ProcessEnv,
  io: BenchIo = { write: (t) => void process.stdout.write(t) },
): Promise<number> {
  let args: BenchArgs | "help";
  try {
    args = parseBenchArgs(argv);
  } catch (e) {
    io.write(`bench: ${(e as Error).message}\n${usage}`);
    return 2;
  }
  if (args === "help") {
    io.write(usage);
    return 0;
  }
  const startedAt = new Date();
  const git = await gitCommit();
  const record: BenchRunRecord = {
    startedAt: startedAt.toISOString(),
    commit: git.commit,
    dirty: git.dirty,
    quick: args.quick,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "",
      memoryBytes: totalmem(),
      node: process.version,
      platform: process.platform,
    },
    results: [],
    failures: [],
  };
  io.write(
    `bench: ${args.only.join(", ")}${args.quick ? " (quick)" : ""} on ${record.machine.cpus} CPUs, commit ${git.commit.slice(0, 12)}${git.dirty ? " (dirty)" : ""}\n`,
  );
  for (const name of args.only) {
    io.write(`\n## ${name}\n`);
    const t0 = performance.now();
    try {
      const r = await runOne(name, args.quick, env, io);
      record.results.push(r);
      io.write(
        `\n### ${r.title}\n\n${r.markdown}\n\nTargets:\n${r.targets.length ? formatTargets(r.targets) : "- (none)"}\n`,
      );
    } catch (e) {
      record.failures.push({ name, error: (e as Error).stack ?? String(e) });
      io.write(`bench ${name} failed: ${(e as Error).stack ?? String(e)}\n`);
    }
    io.write(`(${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  }
  const all = record.results.flatMap((r) => r.targets);
  io.write(
    `\nSummary: ${all.filter((t) => t.met).length}/${all.length} targets met${record.failures.length ? `, ${record.failures.length} benchmark(s) failed` : ""}\n`,
  );
  if (args.save) {
    await mkdir(args.resultsDir, { recursive: true });
    const file = join(
      args.resultsDir,
      `${startedAt.toISOString().replace(/[:.]/g, "-")}-${git.commit.slice(0, 12)}.json`,
    );
    await writeFile(file, `${JSON.stringify(record, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2)}\n`);
    io.write(`bench: results appended to ${file}\n`);
  }
  return record.failures.length > 0 ? 1 : 0;
}
