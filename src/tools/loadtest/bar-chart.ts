/** Grouped or stacked bar charts for the report: one group per category, one bar (or segment) per series. */

import type { TickFormat } from "./axis-ticks.js";
import { type Box, escapeXml, noData, plot, svg, yAxis } from "./chart-frame.js";

/** A named series of values, one per category (bar) or per point (line). */
export interface BarSeries {
  name: string;
  color: string;
  values: (number | null)[];
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
