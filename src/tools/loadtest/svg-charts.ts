/**
 * Minimal inline SVG charts for the self-contained HTML report: bars, time series with the matrix cells drawn as
 * labelled bands, box plots and histograms. No external assets and no `xmlns` URL (inline SVG in HTML5 does not
 * need it), so the report has no URLs at all.
 *
 * Conventions the report's tests rely on: every chart is one `<svg class="chart">` holding at least one data
 * mark (`class="mark"`); a chart with nothing to draw is not drawn at all but replaced by one line of text
 * (`<p class="nodata">`); each axis is a `<g class="axis">` whose tick labels are distinct (ticks are multiples of a
 * 1-2-5 step, formatted with enough precision for that step); each cell band is a `<g class="cell-band">` with a
 * `data-cell` attribute and the cell's label as visible text. Every string is escaped with {@link escapeXml}.
 */

/** A named series of values, one per category (bar) or per point (line). */
export interface BarSeries {
  name: string;
  color: string;
  values: (number | null)[];
}

/** A line series of (x, y) points; x is epoch milliseconds in time charts. */
export interface LineSeries {
  name: string;
  color: string;
  points: [number, number][];
  /** Dashed stroke, to tell two series apart without colour. */
  dashed?: boolean;
}

/** Unconnected points (a scatter), drawn as dots or crosses. */
export interface PointSeries {
  name: string;
  color: string;
  points: [number, number][];
  shape: "dot" | "cross";
}

/** A span of the time axis to shade and label: one cell of the matrix. */
export interface TimeBand {
  label: string;
  startMs: number;
  endMs: number;
}

/** Five-number summary for a box plot. */
export interface BoxStats {
  p5: number;
  p25: number;
  p50: number;
  p75: number;
  p95: number;
  n: number;
}

/** One panel of a histogram chart: the raw values and how to format them. */
export interface HistogramPanel {
  name: string;
  color: string;
  values: number[];
}

/** Formats a tick value; `step` is the distance between ticks, for choosing the precision. */
export type TickFormat = (v: number, step: number) => string;

interface LegendItem {
  name: string;
  color: string;
  dashed?: boolean;
  shape?: "box" | "line" | "dot" | "cross";
}

/** Escapes text for XML/HTML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** A "nice" axis maximum (1, 2, 2.5 or 5 × 10^k) at or above `v`. */
export function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** A 1-2-5 × 10^k step giving about `target` intervals over `span`; at least `minStep`. */
export function niceStep(span: number, target = 5, minStep = 0): number {
  if (!(span > 0)) return Math.max(1, minStep);
  const raw = span / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = [1, 2, 5, 10].find((k) => k * p >= raw) ?? 10;
  return Math.max(m * p, minStep);
}

/** Ticks 0, step, 2·step, … up to the first multiple at or above `max`. */
export function axisTicks(
  max: number,
  o: { target?: number; integer?: boolean } = {},
): { ticks: number[]; step: number; top: number } {
  const step = niceStep(max, o.target ?? 5, o.integer ? 1 : 0);
  const n = Math.max(1, Math.ceil(max / step - 1e-9));
  const ticks = Array.from({ length: n + 1 }, (_, i) => round12(i * step));
  return { ticks, step, top: ticks.at(-1)! };
}

const round12 = (v: number) => Math.round(v * 1e12) / 1e12;

/** Decimals needed to write multiples of `step` exactly (0.25 → 2, 5 → 0). */
function decimalsFor(step: number): number {
  for (let d = 0; d < 6; d++) if (Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) < 1e-6) return d;
  return 6;
}

/** Plain numbers: "0", "2.5", "1,200". */
export const formatCount: TickFormat = (v, step) =>
  v.toLocaleString("en-US", { minimumFractionDigits: decimalsFor(step), maximumFractionDigits: decimalsFor(step) });

/**
 * Durations given in milliseconds: "0", "250ms", "1.5s", "120s". Below a second in ms, from a second on in seconds
 * with the decimals the step needs, so the labels of one axis stay distinct.
 */
export const formatDurationTick: TickFormat = (ms, step) => {
  if (ms === 0) return "0";
  if (ms < 1000) return `${formatCount(ms, Math.min(step, 1))}ms`;
  return `${formatCount(ms / 1000, step / 1000)}s`;
};

/** Drops ticks whose label repeats an earlier one (a safety net: 1-2-5 steps already give distinct labels). */
function distinctTicks(ticks: number[], format: (v: number) => string): { v: number; label: string }[] {
  const seen = new Set<string>();
  return ticks.flatMap((v) => {
    const label = format(v);
    if (seen.has(label)) return [];
    seen.add(label);
    return [{ v, label }];
  });
}

/** The one-line replacement for a chart with nothing to draw. */
export function noData(title: string, why: string): string {
  return `<p class="nodata"><span class="nodata-title">${escapeXml(title)}</span>: ${escapeXml(why)}</p>`;
}

interface Box {
  w: number;
  h: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

const plot = (b: Box) => ({
  x0: b.left,
  x1: b.w - b.right,
  y0: b.top,
  y1: b.h - b.bottom,
  pw: b.w - b.left - b.right,
  ph: b.h - b.top - b.bottom,
});

function legendItems(items: LegendItem[], y: number, x0: number): string {
  let x = x0;
  return items
    .map((l) => {
      const sw =
        l.shape === "line" || l.dashed
          ? `<line x1="${x}" y1="${y - 4}" x2="${x + 16}" y2="${y - 4}" stroke="${l.color}" stroke-width="2"${l.dashed ? ' stroke-dasharray="5 3"' : ""}/>`
          : l.shape === "dot"
            ? `<circle cx="${x + 7}" cy="${y - 4}" r="3.5" fill="${l.color}"/>`
            : l.shape === "cross"
              ? crossPath(x + 7, y - 4, 4, l.color, "")
              : `<rect x="${x}" y="${y - 10}" width="12" height="12" fill="${l.color}"/>`;
      const out = `${sw}<text x="${x + 20}" y="${y}" font-size="11">${escapeXml(l.name)}</text>`;
      x += 20 + l.name.length * 6.5 + 18;
      return out;
    })
    .join("");
}

function crossPath(cx: number, cy: number, r: number, color: string, cls: string): string {
  const d = `M${(cx - r).toFixed(1)} ${(cy - r).toFixed(1)}L${(cx + r).toFixed(1)} ${(cy + r).toFixed(1)}M${(cx - r).toFixed(1)} ${(cy + r).toFixed(1)}L${(cx + r).toFixed(1)} ${(cy - r).toFixed(1)}`;
  return `<path${cls ? ` class="${cls}"` : ""} d="${d}" stroke="${color}" stroke-width="1.6" fill="none"/>`;
}

function svg(title: string, b: Box, body: string, legend: LegendItem[], subtitle?: string): string {
  const sub = subtitle ? `<text x="8" y="30" font-size="11" fill="#4b5563">${escapeXml(subtitle)}</text>` : "";
  const legendY = subtitle ? 48 : 34;
  return (
    `<svg class="chart" role="img" aria-label="${escapeXml(title)}" viewBox="0 0 ${b.w} ${b.h}" width="${b.w}" height="${b.h}" ` +
    `font-family="system-ui, sans-serif"><title>${escapeXml(title)}</title>` +
    `<rect x="0" y="0" width="${b.w}" height="${b.h}" fill="#fff"/>` +
    `<text x="8" y="16" font-size="13" font-weight="600">${escapeXml(title)}</text>${sub}` +
    (legend.length > 0 ? `<g class="legend">${legendItems(legend, legendY, b.left)}</g>` : "") +
    `${body}</svg>`
  );
}

/** Horizontal grid lines and the y tick labels; returns the markup and the value→y mapping. */
function yAxis(
  b: Box,
  max: number,
  format: TickFormat,
  o: { integer?: boolean; title?: string; labels?: boolean } = {},
) {
  const p = plot(b);
  const { ticks, step, top } = axisTicks(max, { integer: o.integer ?? false });
  const y = (v: number) => p.y1 - (p.ph * v) / top;
  let out = "";
  for (const t of distinctTicks(ticks, (v) => format(v, step))) {
    out += `<line x1="${p.x0}" y1="${y(t.v).toFixed(1)}" x2="${p.x1}" y2="${y(t.v).toFixed(1)}" stroke="#e5e7eb"/>`;
    if (o.labels !== false)
      out += `<text class="tick" x="${p.x0 - 6}" y="${(y(t.v) + 4).toFixed(1)}" font-size="10" text-anchor="end">${escapeXml(t.label)}</text>`;
  }
  if (o.title) {
    const cy = (p.y0 + p.y1) / 2;
    out += `<text class="axis-title" x="12" y="${cy}" font-size="10" fill="#4b5563" text-anchor="middle" transform="rotate(-90 12 ${cy})">${escapeXml(o.title)}</text>`;
  }
  return { markup: `<g class="axis y">${out}</g>`, y };
}

/** About one x tick per 110 px. */
const xTickTarget = (width: number) => Math.max(2, Math.round(width / 110));

/** X ticks of a linear axis from 0 to `max` under the plot; returns the markup and the value→x mapping. */
function xAxis(b: Box, x0: number, x1: number, max: number, format: TickFormat, title?: string) {
  const { ticks, step, top } = axisTicks(max, { target: xTickTarget(x1 - x0) });
  const x = (v: number) => x0 + ((x1 - x0) * v) / top;
  const yb = b.h - b.bottom;
  let out = `<line x1="${x0}" y1="${yb}" x2="${x1}" y2="${yb}" stroke="#374151"/>`;
  for (const t of distinctTicks(ticks, (v) => format(v, step))) {
    out +=
      `<line x1="${x(t.v).toFixed(1)}" y1="${yb}" x2="${x(t.v).toFixed(1)}" y2="${yb + 4}" stroke="#374151"/>` +
      `<text class="tick" x="${x(t.v).toFixed(1)}" y="${yb + 16}" font-size="10" text-anchor="middle">${escapeXml(t.label)}</text>`;
  }
  if (title)
    out += `<text class="axis-title" x="${(x0 + x1) / 2}" y="${yb + 32}" font-size="10" fill="#4b5563" text-anchor="middle">${escapeXml(title)}</text>`;
  return { markup: `<g class="axis x">${out}</g>`, x, top };
}

/** Grouped (or stacked) bars: one group per category, one bar (or segment) per series. */
export function barChart(o: {
  title: string;
  categories: string[];
  series: BarSeries[];
  formatY: TickFormat;
  integer?: boolean;
  stacked?: boolean;
  yTitle?: string;
  /** Show the series names. Default: when there are several. */
  legend?: boolean;
  /** Shown (one line, no chart) when there is nothing to draw. Default "no data". */
  emptyText?: string;
}): string {
  const series = o.series.filter((s) => s.values.some((v) => v !== null && v > 0));
  if (o.categories.length === 0 || series.length === 0) return noData(o.title, o.emptyText ?? "no data");
  const b: Box = { w: 760, h: 280, left: 64, right: 16, top: 48, bottom: 40 };
  const p = plot(b);
  const totals = o.categories.map((_, c) =>
    o.stacked
      ? series.reduce((a, s) => a + (s.values[c] ?? 0), 0)
      : Math.max(0, ...series.map((s) => s.values[c] ?? 0)),
  );
  const axis = yAxis(b, Math.max(...totals), o.formatY, {
    integer: o.integer ?? false,
    ...(o.yTitle ? { title: o.yTitle } : {}),
  });
  const band = p.pw / o.categories.length;
  const barW = o.stacked ? band * 0.6 : (band * 0.8) / series.length;
  let body = axis.markup;
  let labels = `<line x1="${p.x0}" y1="${p.y1}" x2="${p.x1}" y2="${p.y1}" stroke="#374151"/>`;
  const rotate = o.categories.length > 8;
  o.categories.forEach((cat, c) => {
    let stackTop = 0;
    series.forEach((s, i) => {
      const v = s.values[c];
      if (v === null || v === undefined || v <= 0) return;
      const yTop = axis.y(o.stacked ? stackTop + v : v);
      const yBase = axis.y(o.stacked ? stackTop : 0);
      if (o.stacked) stackTop += v;
      const x = o.stacked ? p.x0 + c * band + band * 0.2 : p.x0 + c * band + band * 0.1 + i * barW;
      body +=
        `<rect class="mark" x="${x.toFixed(1)}" y="${yTop.toFixed(1)}" width="${barW.toFixed(1)}" height="${(yBase - yTop).toFixed(1)}" fill="${s.color}">` +
        `<title>${escapeXml(`${cat} ${s.name}: ${o.formatY(v, 0)}`)}</title></rect>`;
    });
    const lx = p.x0 + c * band + band / 2;
    const ly = p.y1 + 16;
    labels += rotate
      ? `<text class="tick" x="${lx}" y="${ly}" font-size="10" text-anchor="end" transform="rotate(-35 ${lx} ${ly})">${escapeXml(cat)}</text>`
      : `<text class="tick" x="${lx}" y="${ly}" font-size="11" text-anchor="middle">${escapeXml(cat)}</text>`;
  });
  if (rotate) b.h += 20;
  body += `<g class="axis x">${labels}</g>`;
  return svg(o.title, b, body, (o.legend ?? series.length > 1) ? series : []);
}

/**
 * A chart over time: shaded, labelled bands (the cells), lines and scattered points. x values are epoch
 * milliseconds, shown as seconds since `t0`.
 */
export function timeChart(o: {
  title: string;
  t0: number;
  bands: TimeBand[];
  lines?: LineSeries[];
  points?: PointSeries[];
  formatY: TickFormat;
  integer?: boolean;
  yTitle?: string;
  subtitle?: string;
  emptyText?: string;
}): string {
  const lines = (o.lines ?? []).filter((s) => s.points.length > 0);
  const points = (o.points ?? []).filter((s) => s.points.length > 0);
  const all = [...lines, ...points].flatMap((s) => s.points);
  if (all.length === 0) return noData(o.title, o.emptyText ?? "no data");
  const b: Box = { w: 1000, h: 330, left: 64, right: 16, top: o.subtitle ? 104 : 90, bottom: 44 };
  const p = plot(b);
  const endMs = Math.max(...all.map((q) => q[0]), ...o.bands.map((c) => c.endMs));
  const axisY = yAxis(b, Math.max(0, ...all.map((q) => q[1])), o.formatY, {
    integer: o.integer ?? false,
    ...(o.yTitle ? { title: o.yTitle } : {}),
  });
  const axisX = xAxis(
    b,
    p.x0,
    p.x1,
    Math.max(1, endMs - o.t0) / 1000,
    (v, step) => `${formatCount(v, step)}s`,
    "seconds since the start of the run",
  );
  const px = (ms: number) => axisX.x(Math.max(0, ms - o.t0) / 1000);
  let bands = "";
  // Each label goes on the lowest of three rows above the plot where it does not overlap the previous label of that
  // row (narrow cells stack their labels); when none is free, on the row that frees up first.
  const rowEnds = [-Infinity, -Infinity, -Infinity];
  o.bands.forEach((c, i) => {
    const x0 = px(c.startMs);
    const x1 = Math.max(x0 + 1, px(c.endMs));
    const width = x1 - x0;
    const labelW = c.label.length * 6.2 + 8;
    let row = rowEnds.findIndex((end) => end <= x0);
    if (row < 0) row = rowEnds.indexOf(Math.min(...rowEnds));
    rowEnds[row] = x0 + labelW;
    const ly = p.y0 - 6 - row * 13;
    bands +=
      `<g class="cell-band" data-cell="${escapeXml(c.label)}"><title>${escapeXml(`cell ${c.label}`)}</title>` +
      `<rect x="${x0.toFixed(1)}" y="${p.y0}" width="${width.toFixed(1)}" height="${p.ph}" fill="${i % 2 === 0 ? "#eef2ff" : "#f9fafb"}"/>` +
      `<line x1="${x0.toFixed(1)}" y1="${ly + 3}" x2="${x0.toFixed(1)}" y2="${p.y1}" stroke="#6b7280" stroke-dasharray="3 3"/>` +
      `<text class="cell-label" x="${(x0 + 3).toFixed(1)}" y="${ly}" font-size="10" fill="#374151">${escapeXml(c.label)}</text></g>`;
  });
  let body = bands + axisY.markup + axisX.markup;
  for (const s of lines) {
    const d = s.points.map((q) => `${px(q[0]).toFixed(1)},${axisY.y(q[1]).toFixed(1)}`).join(" ");
    body += `<polyline class="mark" points="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 3"' : ""}/>`;
    if (s.points.length === 1)
      body += `<circle class="mark" cx="${px(s.points[0]![0]).toFixed(1)}" cy="${axisY.y(s.points[0]![1]).toFixed(1)}" r="3" fill="${s.color}"/>`;
  }
  for (const s of points) {
    for (const q of s.points) {
      const cx = px(q[0]);
      const cy = axisY.y(q[1]);
      body +=
        s.shape === "dot"
          ? `<circle class="mark" cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="2.2" fill="${s.color}" fill-opacity="0.6"/>`
          : crossPath(cx, cy, 3, s.color, "mark");
    }
  }
  const legend: LegendItem[] = [
    ...lines.map(
      (s): LegendItem => ({ name: s.name, color: s.color, shape: "line", ...(s.dashed ? { dashed: true } : {}) }),
    ),
    ...points.map((s): LegendItem => ({ name: s.name, color: s.color, shape: s.shape })),
  ];
  return svg(o.title, b, body, legend, o.subtitle);
}

/** Box plots, one per category: box p25–p75, a line at p50, whiskers p5–p95. */
export function boxChart(o: {
  title: string;
  categories: string[];
  boxes: (BoxStats | null)[];
  color: string;
  formatY: TickFormat;
  subtitle?: string;
  emptyText?: string;
}): string {
  if (!o.boxes.some((x) => x !== null)) return noData(o.title, o.emptyText ?? "no data");
  const b: Box = { w: 760, h: 280, left: 64, right: 16, top: o.subtitle ? 44 : 30, bottom: 40 };
  const p = plot(b);
  const axis = yAxis(b, Math.max(...o.boxes.map((x) => x?.p95 ?? 0)), o.formatY);
  const band = p.pw / o.categories.length;
  const bw = Math.min(48, band * 0.5);
  let body = axis.markup;
  let labels = `<line x1="${p.x0}" y1="${p.y1}" x2="${p.x1}" y2="${p.y1}" stroke="#374151"/>`;
  o.categories.forEach((cat, c) => {
    const cx = p.x0 + c * band + band / 2;
    labels += `<text class="tick" x="${cx.toFixed(1)}" y="${p.y1 + 16}" font-size="11" text-anchor="middle">${escapeXml(cat)}</text>`;
    const s = o.boxes[c];
    if (!s) {
      body += `<text x="${cx.toFixed(1)}" y="${p.y1 - 6}" font-size="10" fill="#6b7280" text-anchor="middle">no successes</text>`;
      return;
    }
    const f = (v: number) => o.formatY(v, 0);
    const tip = `${cat}: p5 ${f(s.p5)}, p25 ${f(s.p25)}, p50 ${f(s.p50)}, p75 ${f(s.p75)}, p95 ${f(s.p95)} (n=${s.n})`;
    const [y5, y25, y50, y75, y95] = [s.p5, s.p25, s.p50, s.p75, s.p95].map((v) => axis.y(v).toFixed(1));
    body +=
      `<g class="mark"><title>${escapeXml(tip)}</title>` +
      `<line x1="${cx.toFixed(1)}" y1="${y95}" x2="${cx.toFixed(1)}" y2="${y75}" stroke="#374151"/>` +
      `<line x1="${cx.toFixed(1)}" y1="${y25}" x2="${cx.toFixed(1)}" y2="${y5}" stroke="#374151"/>` +
      `<line x1="${(cx - bw / 4).toFixed(1)}" y1="${y95}" x2="${(cx + bw / 4).toFixed(1)}" y2="${y95}" stroke="#374151"/>` +
      `<line x1="${(cx - bw / 4).toFixed(1)}" y1="${y5}" x2="${(cx + bw / 4).toFixed(1)}" y2="${y5}" stroke="#374151"/>` +
      `<rect x="${(cx - bw / 2).toFixed(1)}" y="${y75}" width="${bw.toFixed(1)}" height="${Math.max(1, Number(y25) - Number(y75)).toFixed(1)}" fill="${o.color}" fill-opacity="0.35" stroke="${o.color}"/>` +
      `<line x1="${(cx - bw / 2).toFixed(1)}" y1="${y50}" x2="${(cx + bw / 2).toFixed(1)}" y2="${y50}" stroke="#111827" stroke-width="2"/></g>`;
  });
  body += `<g class="axis x">${labels}</g>`;
  return svg(o.title, b, body, [], o.subtitle);
}

/**
 * Side-by-side histograms sharing one count axis (labelled once, on the left), each panel with its own value axis;
 * p50 (solid) and p95 (dashed) are marked. Panels without values are left out and named in the footnote.
 */
export function histogramChart(o: {
  title: string;
  panels: HistogramPanel[];
  formatX: TickFormat;
  /** Per-panel caption, e.g. the percentiles in words. */
  caption: (panel: HistogramPanel) => string;
  emptyText?: string;
}): string {
  const panels = o.panels.filter((q) => q.values.length > 0);
  if (panels.length === 0) return noData(o.title, o.emptyText ?? "no data");
  const missing = o.panels.filter((q) => q.values.length === 0).map((q) => q.name);
  const b: Box = { w: 520, h: 230, left: 44, right: 12, top: missing.length > 0 ? 58 : 46, bottom: 44 };
  const p = plot(b);
  const gap = 24;
  const panelW = (p.pw - gap * (panels.length - 1)) / panels.length;
  const binned = panels.map((q) => {
    const max = Math.max(...q.values);
    // The same ticks as the panel's axis (xAxis), so that bin edges fall on them.
    const { step, top } = axisTicks(max > 0 ? max : 1, { target: xTickTarget(panelW) });
    // About sqrt(n) bins, at most 20, each a simple fraction of the tick step so bin edges line up with ticks.
    const want = Math.min(20, Math.max(4, Math.ceil(Math.sqrt(q.values.length))));
    const per = [1, 2, 4, 5, 10].reduce(
      (best, k) => (Math.abs((top / step) * k - want) < Math.abs((top / step) * best - want) ? k : best),
      1,
    );
    const bins = Math.max(1, Math.round((top / step) * per));
    const counts = new Array<number>(bins).fill(0);
    for (const v of q.values) counts[Math.min(bins - 1, Math.floor((v / top) * bins))]!++;
    return { q, top, counts };
  });
  const axis = yAxis(b, Math.max(...binned.flatMap((h) => h.counts)), formatCount, {
    integer: true,
    title: "requests",
  });
  let body = axis.markup;
  binned.forEach((h, i) => {
    const x0 = p.x0 + i * (panelW + gap);
    const ax = xAxis(b, x0, x0 + panelW, h.top, o.formatX);
    const bw = panelW / h.counts.length;
    let bars = "";
    h.counts.forEach((n, k) => {
      if (n === 0) return;
      const y = axis.y(n);
      const lo = (h.top * k) / h.counts.length;
      const hi = (h.top * (k + 1)) / h.counts.length;
      bars +=
        `<rect class="mark" x="${(x0 + k * bw + 0.5).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${(p.y1 - y).toFixed(1)}" fill="${h.q.color}">` +
        `<title>${escapeXml(`${o.formatX(lo, 0)}–${o.formatX(hi, 0)}: ${n}`)}</title></rect>`;
    });
    const sorted = [...h.q.values].sort((a, c) => a - c);
    const q = (f: number) => sorted[Math.min(sorted.length - 1, Math.floor(f * (sorted.length - 1) + 0.5))]!;
    const mark = (v: number, dash: string) =>
      `<line x1="${ax.x(v).toFixed(1)}" y1="${p.y0}" x2="${ax.x(v).toFixed(1)}" y2="${p.y1}" stroke="#111827" stroke-width="1.5"${dash}/>`;
    body +=
      `<g class="panel">${bars}${mark(q(0.5), "")}${mark(q(0.95), ' stroke-dasharray="5 3"')}${ax.markup}` +
      `<text x="${x0}" y="${p.y0 - 8}" font-size="11" font-weight="600" fill="${h.q.color}">${escapeXml(h.q.name)}</text>` +
      `<text x="${x0}" y="${b.h - 10}" font-size="10" fill="#4b5563">${escapeXml(o.caption(h.q))}</text></g>`;
  });
  const sub = missing.length > 0 ? `${missing.join(", ")}: no samples` : undefined;
  return svg(o.title, b, body, [], sub);
}

/** A qualitative palette (colour-blind friendly, Okabe-Ito). */
export const palette = [
  "#0072B2",
  "#E69F00",
  "#009E73",
  "#D55E00",
  "#CC79A7",
  "#56B4E9",
  "#F0E442",
  "#000000",
  "#999999",
];
