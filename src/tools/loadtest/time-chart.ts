/**
 * Time-series charts for the report: the matrix cells as shaded, labelled bands, with lines and scattered points
 * over seconds since the start of the run.
 */

import { formatCount, type TickFormat } from "./axis-ticks.js";
import { type Box, crossPath, escapeXml, type LegendItem, noData, plot, svg, xAxis, yAxis } from "./chart-frame.js";

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
