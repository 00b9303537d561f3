/**
 * The self-contained HTML report: inline CSS and inline SVG charts, no scripts, no external assets and no URLs
 * (the target is shown as host and path only), so it renders offline and in a headless browser as is.
 */
import { errorClasses } from "./classify.js";
import { formatErrorsByClass, formatPercent, markdownColumns, type LoadtestReport } from "./report.js";
import { formatDurationMs, percentile } from "./stats.js";
import { formatCount, formatDurationTick } from "./axis-ticks.js";
import { barChart } from "./bar-chart.js";
import { escapeXml, noData, palette } from "./chart-frame.js";
import { type BoxStats, boxChart, histogramChart } from "./distribution-charts.js";
import { type LineSeries, type TimeBand, timeChart } from "./time-chart.js";
import type { RequestRecord } from "./types.js";

const css = `body{font-family:system-ui,sans-serif;margin:24px;color:#111827;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}h3{font-size:14px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #d1d5db;padding:4px 8px;text-align:right}
th{background:#f3f4f6}td.l,th.l{text-align:left}.muted{color:#6b7280;font-size:13px}svg.chart{display:block;margin:8px 0;max-width:100%;height:auto}
p.nodata{color:#6b7280;font-size:13px;margin:6px 0}.nodata-title{font-weight:600;color:#374151}
.cells{display:grid;grid-template-columns:repeat(auto-fill,minmax(500px,1fr));gap:4px 16px}.cells svg.chart{margin:4px 0}`;

/** Most requests drawn one by one in the latency-over-time chart; beyond it every k-th success is drawn. */
const maxScatterPoints = 4000;

/** The short label of a cell, used on every chart: "512×8" (max_tokens × concurrency). */
export function cellLabel(c: { maxTokens: number; concurrency: number }): string {
  return `${c.maxTokens}×${c.concurrency}`;
}

/**
 * The models the run sent requests to. A run tests one model (`--model`, or the first served one); the capacity
 * endpoint lists the whole catalog, and only these are charted.
 */
export function modelsUnderTest(report: LoadtestReport): string[] {
  return [report.model];
}

/** Renders the report as one HTML document. */
export function renderHtml(report: LoadtestReport): string {
  const cats = report.cells.map(cellLabel);
  const t0 = Date.parse(report.startedAt);
  const bands: TimeBand[] = report.cells.map((c) => ({
    label: cellLabel(c),
    startMs: c.startedAtMs,
    endMs: c.startedAtMs + c.wallMs,
  }));
  const sections = [
    section("Summary", summaryTable(report)),
    section(
      "Over time",
      `<p class="muted">Shaded bands are the cells, labelled max_tokens×concurrency, in the order they ran.</p>\n` +
        latencyOverTime(report, t0, bands) +
        providerCharts(report, t0, bands),
    ),
    section("Latency distribution per cell", latencyDistributions(report, cats)),
    section(
      "Throughput per cell",
      barChart({
        title: "Cluster tok/s (completion tokens ÷ cell wall time)",
        categories: cats,
        formatY: formatCount,
        yTitle: "tokens per second",
        series: [{ name: "tok/s", color: palette[0]!, values: report.cells.map((c) => c.clusterTokPerS) }],
      }),
    ),
    section("Errors by class", errorsChart(report, cats) + correlationTable(report)),
  ];
  const stop = report.options.stop;
  const perCell = stop.kind === "requests" ? `${stop.count} requests per cell` : `${stop.durationMs / 1000}s per cell`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Load test: ${escapeXml(report.model)}</title>
<style>${css}</style></head><body>
<h1>Load test: ${escapeXml(report.model)}</h1>
<p class="muted">Target ${escapeXml(displayTarget(report.baseUrl))} · ${escapeXml(report.startedAt)} → ${escapeXml(report.finishedAt)} ·
${escapeXml(perCell)} · client timeout ${report.options.timeoutMs / 1000}s · percentiles over successful requests.
Each cell is one closed-loop burst at one max_tokens and one concurrency; cells run one after another.</p>
${sections.join("\n")}
</body></html>
`;
}

/** Host and path of the base URL, without the scheme, so the document carries no URL. */
export function displayTarget(baseUrl: string): string {
  try {
    const u = new URL(baseUrl);
    return `${u.host}${u.pathname === "/" ? "" : u.pathname}`;
  } catch {
    return "(invalid base URL)";
  }
}

function section(title: string, body: string): string {
  return `<section><h2>${escapeXml(title)}</h2>\n${body}\n</section>`;
}

function summaryTable(report: LoadtestReport): string {
  const head = ["cell", ...markdownColumns]
    .map((c) => `<th${c === "errors" || c === "cell" ? ' class="l"' : ""}>${escapeXml(c)}</th>`)
    .join("");
  const rows = report.cells
    .map((c) => {
      const cols = [
        String(c.maxTokens),
        String(c.concurrency),
        String(c.requests),
        formatPercent(c.errorRate),
        `${formatDurationMs(c.latencyP50Ms)} / ${formatDurationMs(c.latencyP95Ms)}`,
        `${formatDurationMs(c.ttfbP50Ms)} / ${formatDurationMs(c.ttfbP95Ms)}`,
        String(Math.round(c.clusterTokPerS)),
      ];
      return `<tr><td class="l">${escapeXml(cellLabel(c))}</td>${cols.map((v) => `<td>${escapeXml(v)}</td>`).join("")}<td class="l">${escapeXml(formatErrorsByClass(c.errorsByClass))}</td></tr>`;
    })
    .join("\n");
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${rows}\n</tbody></table>`;
}

/** Every request's end-to-end latency at the moment it finished; failures as crosses. */
function latencyOverTime(report: LoadtestReport, t0: number, bands: TimeBand[]): string {
  const all = report.cells.flatMap((c) => c.requestRecords);
  const ok = all.filter((r) => r.ok);
  const failed = all.filter((r) => !r.ok);
  const stride = Math.max(
    1,
    Math.ceil(ok.length / Math.max(1, maxScatterPoints - Math.min(failed.length, maxScatterPoints / 2))),
  );
  const at = (r: RequestRecord): [number, number] => [r.startMs + r.latencyMs, r.latencyMs];
  const shownOk = ok.filter((_, i) => i % stride === 0).map(at);
  const shownFailed = failed.slice(0, maxScatterPoints / 2).map(at);
  const sampled = stride > 1 || shownFailed.length < failed.length;
  return timeChart({
    title: `${report.model}: end-to-end latency of each request`,
    t0,
    bands,
    formatY: formatDurationTick,
    yTitle: "latency",
    ...(sampled
      ? { subtitle: `${shownOk.length + shownFailed.length} of ${all.length} requests drawn (evenly sampled)` }
      : {}),
    points: [
      { name: `succeeded (${ok.length})`, color: palette[0]!, shape: "dot", points: shownOk },
      { name: `failed (${failed.length})`, color: palette[3]!, shape: "cross", points: shownFailed },
    ],
    emptyText: "no requests",
  });
}

/** Warm/cold providers and queued requests over time, for the models under test only. */
function providerCharts(report: LoadtestReport, t0: number, bands: TimeBand[]): string {
  const ok = report.capacity.samples.filter((s) => s.kind === "ok");
  const title = (id: string) => `${id}: warm / cold providers and queued requests`;
  const models = modelsUnderTest(report);
  if (!report.capacity.available) return noData(title(models.join(", ")), "capacity endpoint unavailable (404)");
  if (ok.length === 0) return noData(title(models.join(", ")), "no capacity samples");
  return models
    .map((id) => {
      const pts = (field: "warm_providers" | "cold_providers" | "queued_requests"): [number, number][] =>
        ok.flatMap((s) => {
          const v = s.models.find((m) => m.id === id)?.[field];
          return typeof v === "number" ? [[s.atMs, v] as [number, number]] : [];
        });
      const lines: LineSeries[] = [
        { name: "warm providers", color: palette[3]!, points: pts("warm_providers") },
        { name: "cold providers", color: palette[0]!, points: pts("cold_providers"), dashed: true },
        { name: "queued requests", color: palette[8]!, points: pts("queued_requests") },
      ];
      return timeChart({
        title: title(id),
        t0,
        bands,
        lines,
        formatY: formatCount,
        integer: true,
        emptyText: "not in any capacity sample",
      });
    })
    .join("\n");
}

function boxStats(values: number[]): BoxStats | null {
  if (values.length === 0) return null;
  const p = (q: number) => percentile(values, q)!;
  return { p5: p(5), p25: p(25), p50: p(50), p75: p(75), p95: p(95), n: values.length };
}

/** Box plots of first-token and end-to-end latency across cells, then one histogram chart per cell. */
function latencyDistributions(report: LoadtestReport, cats: string[]): string {
  const ttft = report.cells.map((c) => c.requestRecords.flatMap((r) => (r.ok && r.ttftMs !== null ? [r.ttftMs] : [])));
  const e2e = report.cells.map((c) => c.requestRecords.flatMap((r) => (r.ok ? [r.latencyMs] : [])));
  const boxNote = "box p25–p75, bold line p50, whiskers p5–p95; successful requests";
  const overview =
    boxChart({
      title: "First-token latency per cell",
      subtitle: boxNote,
      categories: cats,
      boxes: ttft.map(boxStats),
      color: palette[2]!,
      formatY: formatDurationTick,
      emptyText: "no successful request streamed a token",
    }) +
    boxChart({
      title: "End-to-end latency per cell",
      subtitle: boxNote,
      categories: cats,
      boxes: e2e.map(boxStats),
      color: palette[0]!,
      formatY: formatDurationTick,
      emptyText: "no successful requests",
    });
  const caption = (values: number[]) =>
    `p50 ${formatDurationMs(percentile(values, 50))} · p95 ${formatDurationMs(percentile(values, 95))} · n=${values.length}`;
  const perCell = report.cells
    .map((c, i) =>
      histogramChart({
        title: `Cell ${cellLabel(c)}: max_tokens ${c.maxTokens}, concurrency ${c.concurrency}`,
        panels: [
          { name: "first token", color: palette[2]!, values: ttft[i]! },
          { name: "end-to-end", color: palette[0]!, values: e2e[i]! },
        ],
        formatX: formatDurationTick,
        caption: (panel) => caption(panel.values),
        emptyText: `no successful requests (${c.requests} sent)`,
      }),
    )
    .join("\n");
  return `${overview}<h3>Each cell: how many requests took how long</h3><p class="muted">Successful requests; solid line p50, dashed line p95.</p><div class="cells">\n${perCell}\n</div>`;
}

function errorsChart(report: LoadtestReport, cats: string[]): string {
  const used = errorClasses.filter((k) => report.cells.some((c) => (c.errorsByClass[k] ?? 0) > 0));
  return barChart({
    title: "Errors by class per cell",
    categories: cats,
    stacked: true,
    integer: true,
    formatY: formatCount,
    yTitle: "failed requests",
    legend: true,
    emptyText: "no errors",
    series: used.map((k) => ({
      name: k,
      color: palette[errorClasses.indexOf(k) % palette.length]!,
      values: report.cells.map((c) => c.errorsByClass[k] ?? 0),
    })),
  });
}

function correlationTable(report: LoadtestReport): string {
  const limit = 200;
  const rows = report.errorCorrelations.slice(0, limit).map((e) => {
    const m = e.modelRow;
    const fleet = m
      ? `routable ${m.routable_providers ?? "?"}, warm ${m.warm_providers ?? "?"}, cold ${m.cold_providers ?? "?"}, ` +
        `queue ${m.queued_requests ?? "?"}/${m.queue_limit ?? "?"}, active ${m.active_requests ?? "?"}`
      : e.snapshot;
    const at = `+${((e.atMs - Date.parse(report.startedAt)) / 1000).toFixed(1)}s`;
    return `<tr><td>${escapeXml(at)}</td><td>${escapeXml(cellLabel(e.cell))}</td><td class="l">${escapeXml(e.errorClass)}</td><td class="l">${escapeXml(fleet)}</td></tr>`;
  });
  if (rows.length === 0) return `<p class="muted">No errors.</p>`;
  const more =
    report.errorCorrelations.length > limit
      ? `<p class="muted">First ${limit} of ${report.errorCorrelations.length}; all are in the JSON file.</p>`
      : "";
  return `<h3>Each error with the fleet snapshot at that instant</h3><table><thead><tr><th>at</th><th>cell</th><th class="l">class</th><th class="l">capacity snapshot (model under test)</th></tr></thead><tbody>${rows.join("")}</tbody></table>${more}`;
}
