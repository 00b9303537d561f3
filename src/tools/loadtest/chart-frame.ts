/**
 * The frame shared by the report's inline SVG charts: the `<svg>` wrapper with title, subtitle and legend, the
 * plot box, the x and y axes, the no-data line, XML escaping and the palette. No external assets and no `xmlns`
 * URL (inline SVG in HTML5 does not need it), so the report has no URLs at all.
 *
 * Conventions the report's tests rely on: every chart is one `<svg class="chart">` holding at least one data
 * mark (`class="mark"`); a chart with nothing to draw is not drawn at all but replaced by one line of text
 * (`<p class="nodata">`); each axis is a `<g class="axis">` whose tick labels are distinct (ticks are multiples of a
 * 1-2-5 step, formatted with enough precision for that step); each cell band is a `<g class="cell-band">` with a
 * `data-cell` attribute and the cell's label as visible text. Every string is escaped with {@link escapeXml}.
 */

import { axisTicks, distinctTicks, type TickFormat } from "./axis-ticks.js";

export interface LegendItem {
  name: string;
  color: string;
  dashed?: boolean;
  shape?: "box" | "line" | "dot" | "cross";
}

/** Escapes text for XML/HTML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** The one-line replacement for a chart with nothing to draw. */
export function noData(title: string, why: string): string {
  return `<p class="nodata"><span class="nodata-title">${escapeXml(title)}</span>: ${escapeXml(why)}</p>`;
}

export interface Box {
  w: number;
  h: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

export const plot = (b: Box) => ({
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

export function crossPath(cx: number, cy: number, r: number, color: string, cls: string): string {
  const d = `M${(cx - r).toFixed(1)} ${(cy - r).toFixed(1)}L${(cx + r).toFixed(1)} ${(cy + r).toFixed(1)}M${(cx - r).toFixed(1)} ${(cy + r).toFixed(1)}L${(cx + r).toFixed(1)} ${(cy - r).toFixed(1)}`;
  return `<path${cls ? ` class="${cls}"` : ""} d="${d}" stroke="${color}" stroke-width="1.6" fill="none"/>`;
}

export function svg(title: string, b: Box, body: string, legend: LegendItem[], subtitle?: string): string {
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
export function yAxis(
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
export const xTickTarget = (width: number) => Math.max(2, Math.round(width / 110));

/** X ticks of a linear axis from 0 to `max` under the plot; returns the markup and the value→x mapping. */
export function xAxis(b: Box, x0: number, x1: number, max: number, format: TickFormat, title?: string) {
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
