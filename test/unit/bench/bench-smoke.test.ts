/**
 * Smoke test of `npm run bench`: the scheduler and routing benchmarks run in quick mode through runBench and
 * append a well-formed record to the results directory. Asserts structure only, never timings.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseBenchArgs, runBench, type BenchRunRecord } from "../../../bench/run.js";
import type { BenchResult } from "../../../bench/bench-result.js";

describe("bench suite (quick smoke)", function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bench-smoke-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("runs the scheduler and routing benchmarks and appends one JSON record with the commit", async () => {
    let out = "";
    const code = await runBench(
      ["--only", "scheduler,routing", "--quick", "--results-dir", dir],
      {},
      { write: (t) => void (out += t) },
    );
    assert.equal(code, 0, out);
    const files = await readdir(dir);
    assert.equal(files.length, 1);
    assert.match(files[0]!, /^\d{4}-\d\d-\d\dT[\d-]+Z-[0-9a-f]{12}\.json$/);
    const record = JSON.parse(await readFile(join(dir, files[0]!), "utf8")) as BenchRunRecord;
    assert.match(record.commit, /^[0-9a-f]{40}$/);
    assert.equal(record.quick, true);
    assert.deepEqual(record.failures, []);
    assert.deepEqual(
      record.results.map((r) => r.name),
      ["scheduler", "routing"],
    );

    const scheduler = record.results[0]! as BenchResult & {
      data: { rows: { providers: number; variant: string; decisions: number; decisionsPerS: number; p99Us: number }[] };
    };
    const sizes = [...new Set(scheduler.data.rows.map((r) => r.providers))];
    assert.deepEqual(sizes, [100, 1_000, 10_000]);
    for (const n of sizes) {
      assert.deepEqual(
        scheduler.data.rows.filter((r) => r.providers === n).map((r) => r.variant),
        ["kv-aware", "worst-case", "kv-aware/no index", "naive scan"],
      );
    }
    for (const r of scheduler.data.rows) {
      assert.ok(r.decisions >= 20, `${r.variant}@${r.providers}: ${r.decisions} decisions`);
      assert.ok(r.decisionsPerS > 0 && Number.isFinite(r.p99Us));
    }
    assert.equal(scheduler.targets.length, 1);
    assert.equal(scheduler.targets[0]!.threshold, 100);
    assert.equal(typeof scheduler.targets[0]!.met, "boolean");
    assert.match(scheduler.markdown, /\| providers \| variant \| decisions \| decisions\/s \| p50 µs \| p99 µs \|/);

    const routing = record.results[1]! as BenchResult & {
      data: {
        runs: {
          scenario: string;
          kvAware: unknown[];
          worstCase: unknown[];
          bound: unknown[];
          completedRatio: number;
        }[];
      };
    };
    assert.deepEqual(
      routing.data.runs.map((r) => r.scenario),
      ["load-test-report", "fleet-churn"],
    );
    for (const run of routing.data.runs) {
      assert.ok(run.kvAware.length > 0);
      assert.equal(run.kvAware.length, run.worstCase.length);
      assert.equal(run.kvAware.length, run.bound.length);
    }
    assert.match(
      routing.markdown,
      /\| metric \| kv-aware \| worst-case \| clairvoyant \| ours ÷ worst-case \| ours ÷ bound \|/,
    );
    assert.deepEqual(
      routing.targets.filter((t) => t.name.startsWith("load-test-report: ")).map((t) => t.name.slice(18)),
      [
        "completed requests kv-aware ÷ worst-case",
        "kv-aware refusals while a capable Mac was idle",
        "gemma goodput kv-aware ÷ bound",
        "gemma first-token p95 kv-aware ÷ bound",
        "gemma-4-26b spread",
        "gpt-oss-20b spread",
        "gemma first-token p95 kv-aware ÷ worst-case",
      ],
    );
    assert.ok(routing.targets.some((t) => t.name === "fleet-churn: qwen3-8b spread"));

    // What the operator sees: each table, and every target marked met or NOT MET.
    assert.match(out, /### Scheduler decision cost/);
    assert.match(out, /### Routing quality \(simulator\)/);
    assert.match(out, /^- (met|NOT MET): kv-aware pick p99 at 10000 providers/m);
    assert.match(out, /Summary: \d+\/15 targets met/);
  });

  it("rejects an unknown benchmark name and parses --only into suite order", () => {
    assert.throws(() => parseBenchArgs(["--only", "scheduler,nope"]), /unknown benchmark nope/);
    const a = parseBenchArgs(["--only", "routing,scheduler", "--quick"]);
    assert.ok(a !== "help");
    assert.deepEqual(a.only, ["scheduler", "routing"]);
    assert.equal(a.quick, true);
    const c = parseBenchArgs(["--only", "cluster,gateway"]);
    assert.ok(c !== "help");
    assert.deepEqual(c.only, ["gateway", "cluster"]);
  });
});
