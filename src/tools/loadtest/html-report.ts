/**
 * The self-contained HTML report: inline CSS and inline SVG charts, no scripts, no external assets and no URLs
 * (the target is shown as host and path only), so it renders offline and in a headless browser as is.
 */
import { errorClasses } from "./classify.js";
import { formatErrorsByClass, formatPercent, markdownColumns, type LoadtestReport } from "./report.js";
import { formatDurationMs } from "./stats.js";
import { barChart, escapeXml, lineChart, palette, type LineSeries } from "./svg-charts.js";

const css = `body{font-family:system-ui,sans-serif;margin:24px;color:#111827;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #d1d5db;padding:4px 8px;text-align:right}
th{background:#f3f4f6}td.l,th.l{text-align:left}.muted{color:#6b7280;font-size:13px}svg.chart{display:block;margin:8px 0;max-width:100%;height:auto}`;

/** Renders the report as one HTML document. */
export function renderHtml(report: LoadtestReport): string {
  const cats = report.cells.map((c) => `${c.maxTokens}×${c.concurrency}`);
  const sec = (v: number) => formatDurationMs(v);
  const sections = [
    section("Summary", summaryTable(report)),
    section(
      "Latency per cell",
      barChart({
        title: "Latency p50 / p95 (successful requests)",
        categories: cats,
        formatY: sec,
        series: [
          { name: "p50", color: palette[0]!, values: report.cells.map((c) => c.latencyP50Ms) },
          { name: "p95", color: palette[1]!, values: report.cells.map((c) => c.latencyP95Ms) },
        ],
      }) +
        barChart({
          title: "TTFB p50 / p95 (first streamed event)",
          categories: cats,
          formatY: sec,
          series: [
            { name: "TTFB p50", color: palette[2]!, values: report.cells.map((c) => c.ttfbP50Ms) },
            { name: "TTFB p95", color: palette[3]!, values: report.cells.map((c) => c.ttfbP95Ms) },
          ],
        }),
    ),
    section(
      "Throughput per cell",
      barChart({
        title: "Cluster tok/s (completion tokens ÷ cell wall time)",
        categories: cats,
        formatY: (v) => String(Math.round(v)),
        series: [{ name: "tok/s", color: palette[0]!, values: report.cells.map((c) => c.clusterTokPerS) }],
      }),
    ),
    section("Warm and cold providers over time", providerCharts(report)),
    section("Errors by class", errorsChart(report, cats) + correlationTable(report)),
  ];
  const stop = report.options.stop;
  const perCell = stop.kind === "requests" ? `${stop.count} requests per cell` : `${stop.durationMs / 1000}s per cell`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Load test: ${escapeXml(report.model)}</title>
<style>${css}</style></head><body>
<h1>Load test: ${escapeXml(report.model)}</h1>
<p class="muted">Target ${escapeXml(displayTarget(report.baseUrl))} · ${escapeXml(report.startedAt)} → ${escapeXml(report.finishedAt)} ·
${escapeXml(perCell)} · client timeout ${report.options.timeoutMs / 1000}s · percentiles over successful requests</p>
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
  const head = markdownColumns.map((c) => `<th${c === "errors" ? ' class="l"' : ""}>${escapeXml(c)}</th>`).join("");
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
      return `<tr>${cols.map((v) => `<td>${escapeXml(v)}</td>`).join("")}<td class="l">${escapeXml(formatErrorsByClass(c.errorsByClass))}</td></tr>`;
    })
    .join("\n");
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${rows}\n</tbody></table>`;
}

function providerCharts(report: LoadtestReport): string {
  const ok = report.capacity.samples.filter((s) => s.kind === "ok");
  const t0 = Date.parse(report.startedAt);
  const formatX = (x: number) => `+${Math.round((x - t0) / 1000)}s`;
  const empty = report.capacity.available ? "no capacity samples" : "capacity endpoint unavailable (404)";
  const models = [...new Set(ok.flatMap((s) => s.models.map((m) => m.id)))];
  // The model under test first: its chart is the one that matters.
  models.sort((a, b) => Number(b === report.model) - Number(a === report.model) || a.localeCompare(b));
  if (models.length === 0) {
    return lineChart({ title: "Warm / cold providers", series: [], formatX, formatY: String, emptyText: empty });
  }
  return models
    .map((id) => {
      const pts = (field: "warm_providers" | "cold_providers" | "queued_requests"): [number, number][] =>
        ok.flatMap((s) => {
          const row = s.models.find((m) => m.id === id);
          const v = row?.[field];
          return typeof v === "number" ? [[s.atMs, v] as [number, number]] : [];
        });
      const series: LineSeries[] = [
        { name: "warm", color: palette[3]!, points: pts("warm_providers") },
        { name: "cold", color: palette[0]!, points: pts("cold_providers"), dashed: true },
        { name: "queued requests", color: palette[8]!, points: pts("queued_requests") },
      ];
      return lineChart({ title: `${id}: warm / cold providers`, series, formatX, formatY: (v) => String(Math.round(v)) });
    })
    .join("\n");
}

function errorsChart(report: LoadtestReport, cats: string[]): string {
  const used = errorClasses.filter((k) => report.cells.some((c) => (c.errorsByClass[k] ?? 0) > 0));
  if (used.length === 0) {
    return barChart({ title: "Errors by class per cell", categories: cats, formatY: String, series: [], emptyText: "no errors" });
  }
  return barChart({
    title: "Errors by class per cell",
    categories: cats,
    stacked: true,
    formatY: (v) => String(Math.round(v)),
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
    return `<tr><td>${escapeXml(at)}</td><td>${e.cell.maxTokens}×${e.cell.concurrency}</td><td class="l">${escapeXml(e.errorClass)}</td><td class="l">${escapeXml(fleet)}</td></tr>`;
  });
  if (rows.length === 0) return `<p class="muted">No errors.</p>`;
  const more = report.errorCorrelations.length > limit ? `<p class="muted">First ${limit} of ${report.errorCorrelations.length}; all are in the JSON file.</p>` : "";
  return `<h3>Each error with the fleet snapshot at that instant</h3><table><thead><tr><th>at</th><th>cell</th><th class="l">class</th><th class="l">capacity snapshot (model under test)</th></tr></thead><tbody>${rows.join("")}</tbody></table>${more}`;
}
