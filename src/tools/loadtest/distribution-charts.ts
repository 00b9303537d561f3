/** Distribution charts for the report: box plots (p5/p25/p50/p75/p95) and side-by-side histograms. */

import { axisTicks, formatCount, type TickFormat } from "./axis-ticks.js";
import { type Box, escapeXml, noData, plot, svg, xAxis, xTickTarget, yAxis } from "./chart-frame.js";

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
