/**
 * `coordinator loadtest`: wires options, the capacity sampler, the cell runner, live progress and the reports.
 * The lead hooks {@link runLoadtestCli} into `bin/coordinator.js loadtest`.
 */
import { setMaxListeners } from "node:events";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CapacitySampler } from "./capacity-sampler.js";
import { renderHtml } from "./html-report.js";
import { parseLoadtestOptions, usage, type LoadtestOptions } from "./options.js";
import { CellProgress, type ProgressStream } from "./progress.js";
import { buildReport, renderMarkdown, renderMarkdownTable, type LoadtestReport } from "./report.js";
import { preciseNow, runCell } from "./run-cell.js";
import type { CellResult } from "./types.js";

/** Where the CLI writes; defaults to the process streams. */
export interface LoadtestIo {
  stdout: ProgressStream;
  stderr: ProgressStream;
}

/** The files written by a run. */
export interface LoadtestFiles {
  markdown: string;
  json: string;
  html: string;
}

/**
 * Runs the load test described by `argv` (arguments after `loadtest`) and returns the exit code: 0 when the run
 * completed (request errors are results, not failures), 1 when the target could not be used (no model), 2 for
 * invalid options. Ctrl-C stops the matrix, aborts requests in flight and still writes the reports.
 */
export async function runLoadtestCli(
  argv: string[],
  env: NodeJS.ProcessEnv,
  io: LoadtestIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const parsed = parseLoadtestOptions(argv, env);
  if (parsed.kind === "help") {
    io.stdout.write(usage);
    return 0;
  }
  if (parsed.kind === "error") {
    io.stderr.write(`loadtest: ${parsed.message}\n`);
    return 2;
  }
  const options = parsed.options;
  if (!options.apiKey)
    io.stderr.write("loadtest: no API key (--api-key, OPENAI_API_KEY or DEV_API_KEY); sending none\n");
  let model: string;
  try {
    model = options.model ?? (await firstModel(options));
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code;
    io.stderr.write(
      `loadtest: cannot choose a model from ${options.baseUrl}/models: ${cause ?? (e as Error).message}\n`,
    );
    return 1;
  }

  const abort = new AbortController();
  // Every in-flight request listens on this one signal (Ctrl-C aborts them all): more than Node's default 10.
  setMaxListeners(0, abort.signal);
  const onSigint = () => {
    io.stderr.write("\nloadtest: interrupted; finishing with a partial report\n");
    abort.abort();
  };
  process.once("SIGINT", onSigint);
  const sampler = new CapacitySampler({
    baseUrl: options.baseUrl,
    apiKey: options.apiKey,
    intervalMs: options.sampleIntervalMs,
  });
  const startedAtMs = preciseNow();
  const cells: CellResult[] = [];
  try {
    sampler.start();
    for (const maxTokens of options.maxTokens) {
      for (const concurrency of options.concurrency) {
        if (abort.signal.aborted) break;
        cells.push(await runOneCell(options, model, maxTokens, concurrency, sampler, abort.signal, io));
      }
    }
  } finally {
    process.removeListener("SIGINT", onSigint);
    await sampler.stop();
  }
  const report = buildReport({
    options,
    model,
    startedAtMs,
    finishedAtMs: preciseNow(),
    cells,
    capacity: { available: sampler.available, samples: sampler.samples },
  });
  const files = await writeReports(report, options.outDir, startedAtMs);
  io.stdout.write(renderMarkdownTable(report.cells));
  io.stderr.write(`loadtest: wrote ${files.markdown}, ${files.json}, ${files.html}\n`);
  return 0;
}

async function runOneCell(
  options: LoadtestOptions,
  model: string,
  maxTokens: number,
  concurrency: number,
  sampler: CapacitySampler,
  signal: AbortSignal,
  io: LoadtestIo,
): Promise<CellResult> {
  const progress = options.progress
    ? new CellProgress({ stream: io.stderr, label: `${maxTokens}x${concurrency}`, stop: options.stop })
    : null;
  try {
    return await runCell({
      baseUrl: options.baseUrl,
      apiKey: options.apiKey,
      model,
      prompt: options.prompt,
      timeoutMs: options.timeoutMs,
      maxTokens,
      concurrency,
      stop: options.stop,
      signal,
      snapshotFor: (m, atMs) => sampler.snapshotFor(m, atMs),
      onRequestDone: (r) => progress?.record(r),
    });
  } finally {
    progress?.finish();
  }
}

/** Writes `<dir>/loadtest-<timestamp>.{md,json,html}` and returns the paths. */
export async function writeReports(report: LoadtestReport, dir: string, startedAtMs: number): Promise<LoadtestFiles> {
  await mkdir(dir, { recursive: true });
  const stamp = new Date(startedAtMs).toISOString().replace(/[:.]/g, "-");
  const base = join(dir, `loadtest-${stamp}`);
  const files = { markdown: `${base}.md`, json: `${base}.json`, html: `${base}.html` };
  await writeFile(files.markdown, renderMarkdown(report));
  await writeFile(files.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(files.html, renderHtml(report));
  return files;
}

/** The first model id from `GET {base}/models`. */
async function firstModel(options: LoadtestOptions): Promise<string> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  const res = await fetch(`${options.baseUrl}/models`, { headers, signal: AbortSignal.timeout(30_000) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const body = (await res.json()) as { data?: { id?: unknown }[] };
  const id = body.data?.find((m) => typeof m.id === "string")?.id;
  if (typeof id !== "string") throw new Error("the list is empty; pass --model");
  // /models lists every catalog model, served or not; a model nobody serves would only queue. Prefer the first
  // model the capacity endpoint reports routable providers for (when the deployment has that endpoint).
  const cap = await fetch(`${options.baseUrl}/models/capacity`, { headers, signal: AbortSignal.timeout(30_000) }).catch(
    () => undefined,
  );
  if (cap?.ok) {
    const c = (await cap.json().catch(() => ({}))) as { models?: { id?: unknown; routable_providers?: unknown }[] };
    const served = c.models?.find(
      (m) => typeof m.id === "string" && typeof m.routable_providers === "number" && m.routable_providers > 0,
    )?.id;
    if (typeof served === "string") return served;
  } else await cap?.body?.cancel();
  return id;
}
