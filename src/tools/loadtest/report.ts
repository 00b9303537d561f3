/**
 * Report model and the Markdown/JSON renderers. The Markdown table follows Appendix A of the production load-test
 * report (one row per cell: requests, error %, latency and TTFB percentiles, cluster tok/s, errors by class).
 * Percentiles are over successful requests only: a fast 429 would otherwise pull the latency median down.
 */
import { classificationRules, errorClasses, type ErrorClass } from "./classify.js";
import type { LoadtestOptions } from "./options.js";
import { formatDurationMs, percentile } from "./stats.js";
import type { CapacitySample, CellResult, ErrorCorrelation, RequestRecord } from "./types.js";

/** Aggregates of one cell. Times in milliseconds. */
export interface CellSummary {
  maxTokens: number;
  concurrency: number;
  requests: number;
  errors: number;
  /** errors ÷ requests, 0..1. */
  errorRate: number;
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
  ttfbP50Ms: number | null;
  ttfbP95Ms: number | null;
  ttftP50Ms: number | null;
  ttftP95Ms: number | null;
  completionTokens: number;
  wallMs: number;
  /** Total completion tokens ÷ cell wall time, tokens per second. */
  clusterTokPerS: number;
  /** Failure counts by class (classes with zero failures are omitted). */
  errorsByClass: Partial<Record<ErrorClass, number>>;
}

/** The whole run, as written to the JSON file (and rendered to Markdown and HTML). */
export interface LoadtestReport {
  tool: "coordinator loadtest";
  formatVersion: 1;
  startedAt: string;
  finishedAt: string;
  baseUrl: string;
  model: string;
  /** The options used, minus the API key. */
  options: Omit<LoadtestOptions, "apiKey"> & { apiKey: "set" | "none" };
  classificationRules: { errorClass: ErrorClass; description: string }[];
  cells: (CellSummary & { startedAtMs: number; requestRecords: RequestRecord[] })[];
  capacity: { available: boolean; intervalMs: number; samples: CapacitySample[] };
  /** Every failure with the capacity snapshot at that instant. */
  errorCorrelations: ErrorCorrelation[];
}

/** Aggregates one cell. */
export function summarizeCell(cell: CellResult): CellSummary {
  const ok = cell.requests.filter((r) => r.ok);
  const errorsByClass: Partial<Record<ErrorClass, number>> = {};
  for (const r of cell.requests) if (r.errorClass) errorsByClass[r.errorClass] = (errorsByClass[r.errorClass] ?? 0) + 1;
  const errors = cell.requests.length - ok.length;
  const completionTokens = cell.requests.reduce((a, r) => a + r.completionTokens, 0);
  const lat = ok.map((r) => r.latencyMs);
  const ttfb = ok.flatMap((r) => (r.ttfbMs === null ? [] : [r.ttfbMs]));
  const ttft = ok.flatMap((r) => (r.ttftMs === null ? [] : [r.ttftMs]));
  return {
    maxTokens: cell.maxTokens,
    concurrency: cell.concurrency,
    requests: cell.requests.length,
    errors,
    errorRate: cell.requests.length === 0 ? 0 : errors / cell.requests.length,
    latencyP50Ms: percentile(lat, 50),
    latencyP95Ms: percentile(lat, 95),
    ttfbP50Ms: percentile(ttfb, 50),
    ttfbP95Ms: percentile(ttfb, 95),
    ttftP50Ms: percentile(ttft, 50),
    ttftP95Ms: percentile(ttft, 95),
    completionTokens,
    wallMs: cell.wallMs,
    clusterTokPerS: cell.wallMs > 0 ? completionTokens / (cell.wallMs / 1000) : 0,
    errorsByClass,
  };
}

/** Builds the report object from the run's results. */
export function buildReport(input: {
  options: LoadtestOptions;
  model: string;
  startedAtMs: number;
  finishedAtMs: number;
  cells: CellResult[];
  capacity: { available: boolean; samples: readonly CapacitySample[] };
}): LoadtestReport {
  const { apiKey, ...rest } = input.options;
  return {
    tool: "coordinator loadtest",
    formatVersion: 1,
    startedAt: new Date(input.startedAtMs).toISOString(),
    finishedAt: new Date(input.finishedAtMs).toISOString(),
    baseUrl: input.options.baseUrl,
    model: input.model,
    options: { ...rest, apiKey: apiKey ? "set" : "none" },
    classificationRules: classificationRules.map((r) => ({ errorClass: r.errorClass, description: r.description })),
    cells: input.cells.map((c) => ({ ...summarizeCell(c), startedAtMs: c.startedAtMs, requestRecords: c.requests })),
    capacity: {
      available: input.capacity.available,
      intervalMs: input.options.sampleIntervalMs,
      samples: [...input.capacity.samples],
    },
    errorCorrelations: input.cells.flatMap((c) => c.correlations),
  };
}

/** "0%", "4.3%", "100%". */
export function formatPercent(rate: number): string {
  if (rate === 0) return "0%";
  const p = rate * 100;
  return `${Number.isInteger(Math.round(p * 10) / 10) ? Math.round(p) : p.toFixed(1)}%`;
}

/** "billing_503 ×2, client_timeout ×1", in class order, or "—" when there were none. */
export function formatErrorsByClass(byClass: Partial<Record<ErrorClass, number>>): string {
  const parts = errorClasses.filter((c) => (byClass[c] ?? 0) > 0).map((c) => `${c} ×${byClass[c]}`);
  return parts.length === 0 ? "—" : parts.join(", ");
}

/** The column headers of the Markdown table, in order. */
export const markdownColumns = [
  "max_tok",
  "conc",
  "reqs",
  "err%",
  "latency p50/p95",
  "TTFB p50/p95",
  "cluster tok/s",
  "errors",
] as const;

/** The Appendix-A-style Markdown table (a GitHub-flavoured table, one row per cell). */
export function renderMarkdownTable(cells: readonly CellSummary[]): string {
  const align = ["---:", "---:", "---:", "---:", "---:", "---:", "---:", ":---"];
  const rows = cells.map((c) => [
    String(c.maxTokens),
    String(c.concurrency),
    String(c.requests),
    formatPercent(c.errorRate),
    `${formatDurationMs(c.latencyP50Ms)} / ${formatDurationMs(c.latencyP95Ms)}`,
    `${formatDurationMs(c.ttfbP50Ms)} / ${formatDurationMs(c.ttfbP95Ms)}`,
    String(Math.round(c.clusterTokPerS)),
    // A "|" inside a cell would split the column.
    formatErrorsByClass(c.errorsByClass).replaceAll("|", "\\|"),
  ]);
  const line = (cols: readonly string[]) => `| ${cols.join(" | ")} |`;
  return `${[line(markdownColumns), line(align), ...rows.map(line)].join("\n")}\n`;
}

/** The Markdown report: a heading, the run's context, the table and the error taxonomy. */
export function renderMarkdown(report: LoadtestReport): string {
  const stop = report.options.stop;
  const perCell = stop.kind === "requests" ? `${stop.count} requests per cell` : `${stop.durationMs / 1000}s per cell`;
  const samples = report.capacity.samples.filter((s) => s.kind === "ok").length;
  return [
    `# Load test: ${report.model}`,
    "",
    `Target \`${report.baseUrl}\`, ${report.startedAt} → ${report.finishedAt}; ${perCell}, closed loop, ` +
      `client timeout ${report.options.timeoutMs / 1000}s. Capacity: ` +
      (report.capacity.available
        ? `${samples} samples every ${report.capacity.intervalMs / 1000}s.`
        : "endpoint unavailable."),
    "Latency and TTFB percentiles are over successful requests; cluster tok/s = completion tokens ÷ cell wall time.",
    "",
    renderMarkdownTable(report.cells),
    `Error classes: ${describeClasses(report.classificationRules)}.`,
    "",
  ].join("\n");
}

/** One phrase per class ("`ratelimit_429` = A, or B"), merging classes that several rules produce. */
function describeClasses(rules: readonly { errorClass: ErrorClass; description: string }[]): string {
  const byClass = new Map<ErrorClass, string[]>();
  for (const r of rules) byClass.set(r.errorClass, [...(byClass.get(r.errorClass) ?? []), r.description]);
  if (!byClass.has("http_4xx")) byClass.set("http_4xx", ["any other status"]);
  return errorClasses
    .filter((c) => byClass.has(c))
    .map((c) => `\`${c}\` = ${byClass.get(c)!.join(", or ")}`)
    .join("; ");
}
