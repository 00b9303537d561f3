/**
 * The ledger benchmark (bench/ledger/ledger-bench.ts: leased ledger vs the naive hot-row baseline) as a
 * section of the suite, on a scratch database.
 */
import { runLedgerBench } from "./ledger/ledger-bench.js";
import { target, type BenchResult } from "./bench-result.js";
import { createScratchDatabase } from "./scratch-database.js";

/** Runs the ledger comparison at concurrency 64 and 256 (quick: 16, 0.5 s). */
export async function runLedgerSection(o: { quick: boolean; env: NodeJS.ProcessEnv }): Promise<BenchResult> {
  const concurrency = o.quick ? [16] : [64, 256];
  const durationMs = o.quick ? 500 : 5_000;
  const scratch = await createScratchDatabase(o.env);
  try {
    const r = await runLedgerBench({ url: scratch.url, concurrency, durationMs });
    const targets = [
      target("verifyLedger after the run", r.verifyOk ? 1 : 0, ">=", 1, "(1 = ok)"),
      // Issue 5: zero errors for the leased ledger, and at least 10× the naive baseline's successful throughput.
      ...concurrency.map((c) =>
        target(
          `leased ledger errors at concurrency ${c}`,
          r.rows.find((x) => x.system === "leased" && x.concurrency === c)?.errors ?? NaN,
          "<",
          1,
          "errors",
        ),
      ),
      ...concurrency.map((c) =>
        target(`leased ÷ naive ok-throughput at concurrency ${c}`, r.ratios[c] ?? NaN, ">=", 10, "×"),
      ),
    ];
    const note = `One account, reserve → settle cycles, ${durationMs} ms per cell, server: ${scratch.server}.`;
    return {
      name: "ledger",
      title: "Ledger: leased vs naive hot row",
      markdown: `${r.markdown}\n\n${note}`,
      targets,
      data: { concurrency, durationMs, rows: r.rows, ratios: r.ratios, verifyOk: r.verifyOk },
    };
  } finally {
    await scratch.close();
  }
}
