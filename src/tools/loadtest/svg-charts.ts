/**
 * Minimal inline SVG charts for the self-contained HTML report: grouped/stacked bars and step-free line charts.
 * No external assets and no `xmlns` URL (inline SVG in HTML5 does not need it), so the report has no URLs at all.
 */

/** A named series of values, one per category (bar) or per point (line). */
export interface BarSeries {
  name: string;
  color: string;
  values: (number | null)[];
}

/** A line series of (x, y) points; x is usually epoch milliseconds. */
export interface LineSeries {
  name: string;
  color: string;
  points: [number, number][];
  /** Dashed stroke, to tell two series of one model apart. */
  dashed?: boolean;
}

const W = 760;
const H = 300;
const M = { left: 64, right: 16, top: 46, bottom: 58 };
const plotW = W - M.left - M.right;
const plotH = H - M.top - M.bottom;

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

function frame(title: string, body: string, legend: { name: string; color: string; dashed?: boolean }[]): string {
  const items = legend
    .map((l, i) => {
      const x = M.left + i * 150;
      const swatch = l.dashed
        ? `<line x1="${x}" y1="29" x2="${x + 14}" y2="29" stroke="${l.color}" stroke-width="2" stroke-dasharray="4 2"/>`
        : `<rect x="${x}" y="23" width="12" height="12" fill="${l.color}"/>`;
      return `${swatch}<text x="${x + 18}" y="33" font-size="11">${escapeXml(l.name)}</text>`;
    })
    .join("");
  return (
    `<svg class="chart" role="img" aria-label="${escapeXml(title)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" ` +
    `font-family="system-ui, sans-serif"><title>${escapeXml(title)}</title>` +
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>` +
    `<text x="8" y="15" font-size="13" font-weight="600">${escapeXml(title)}</text>${items}${body}</svg>`
  );
}

function yAxis(max: number, format: (v: number) => string): string {
  let out = "";
  for (let i = 0; i <= 5; i++) {
    const v = (max * i) / 5;
    const y = M.top + plotH - (plotH * i) / 5;
    out +=
      `<line x1="${M.left}" y1="${y}" x2="${M.left + plotW}" y2="${y}" stroke="#e5e7eb"/>` +
      `<text x="${M.left - 6}" y="${y + 4}" font-size="10" text-anchor="end">${escapeXml(format(v))}</text>`;
  }
  return out + `<line x1="${M.left}" y1="${M.top + plotH}" x2="${M.left + plotW}" y2="${M.top + plotH}" stroke="#374151"/>`;
}

function noData(title: string, why: string): string {
  return frame(title, `<text x="${W / 2}" y="${H / 2}" font-size="14" text-anchor="middle" fill="#6b7280">${escapeXml(why)}</text>`, []);
}

/** Grouped (or stacked) bars: one group per category, one bar (or segment) per series. */
export function barChart(o: {
  title: string;
  categories: string[];
  series: BarSeries[];
  formatY: (v: number) => string;
  stacked?: boolean;
  /** Shown instead of the bars when there is nothing to draw. Default "no data". */
  emptyText?: string;
}): string {
  const totals = o.categories.map((_, c) =>
    o.stacked ? o.series.reduce((a, s) => a + (s.values[c] ?? 0), 0) : Math.max(0, ...o.series.map((s) => s.values[c] ?? 0)),
  );
  if (o.categories.length === 0 || o.series.length === 0) return noData(o.title, o.emptyText ?? "no data");
  const max = niceMax(Math.max(0, ...totals));
  const band = plotW / o.categories.length;
  const barW = o.stacked ? band * 0.6 : (band * 0.8) / o.series.length;
  let body = yAxis(max, o.formatY);
  const rotate = o.categories.length > 8;
  o.categories.forEach((cat, c) => {
    let stackY = M.top + plotH;
    o.series.forEach((s, i) => {
      const v = s.values[c];
      if (v === null || v === undefined || v <= 0) return;
      const h = (plotH * v) / max;
      const x = o.stacked ? M.left + c * band + band * 0.2 : M.left + c * band + band * 0.1 + i * barW;
      const y = o.stacked ? stackY - h : M.top + plotH - h;
      if (o.stacked) stackY -= h;
      body +=
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${s.color}">` +
        `<title>${escapeXml(`${cat} ${s.name}: ${o.formatY(v)}`)}</title></rect>`;
    });
    const lx = M.left + c * band + band / 2;
    const ly = M.top + plotH + 16;
    body += rotate
      ? `<text x="${lx}" y="${ly}" font-size="10" text-anchor="end" transform="rotate(-35 ${lx} ${ly})">${escapeXml(cat)}</text>`
      : `<text x="${lx}" y="${ly}" font-size="11" text-anchor="middle">${escapeXml(cat)}</text>`;
  });
  return frame(o.title, body, o.series);
}

/** Line chart over a shared x axis (time), one polyline per series. */
export function lineChart(o: {
  title: string;
  series: LineSeries[];
  formatX: (v: number) => string;
  formatY: (v: number) => string;
  emptyText?: string;
}): string {
  const pts = o.series.flatMap((s) => s.points);
  if (pts.length === 0) return noData(o.title, o.emptyText ?? "no data");
  const xs = pts.map((p) => p[0]);
  const minX = Math.min(...xs);
  const spanX = Math.max(1, Math.max(...xs) - minX);
  const max = niceMax(Math.max(0, ...pts.map((p) => p[1])));
  const px = (x: number) => M.left + (plotW * (x - minX)) / spanX;
  const py = (y: number) => M.top + plotH - (plotH * y) / max;
  let body = yAxis(max, o.formatY);
  for (let i = 0; i <= 4; i++) {
    const x = minX + (spanX * i) / 4;
    body += `<text x="${px(x)}" y="${M.top + plotH + 16}" font-size="10" text-anchor="middle">${escapeXml(o.formatX(x))}</text>`;
  }
  for (const s of o.series) {
    if (s.points.length === 0) continue;
    const d = s.points.map((p) => `${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(" ");
    const dash = s.dashed ? ` stroke-dasharray="6 3"` : "";
    body += `<polyline points="${d}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`;
    if (s.points.length === 1) body += `<circle cx="${px(s.points[0]![0])}" cy="${py(s.points[0]![1])}" r="3" fill="${s.color}"/>`;
  }
  return frame(o.title, body, o.series);
}

/** A qualitative palette (colour-blind friendly, Okabe-Ito). */
export const palette = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000", "#999999"];
