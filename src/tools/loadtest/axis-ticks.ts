/**
 * Axis ticks and tick labels for the report's SVG charts: 1-2-5 steps, "nice" maxima and the number and duration
 * formats, with enough precision for the step that the labels of one axis stay distinct.
 */

/** Formats a tick value; `step` is the distance between ticks, for choosing the precision. */
export type TickFormat = (v: number, step: number) => string;

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
export function distinctTicks(ticks: number[], format: (v: number) => string): { v: number; label: string }[] {
  const seen = new Set<string>();
  return ticks.flatMap((v) => {
    const label = format(v);
    if (seen.has(label)) return [];
    seen.add(label);
    return [{ v, label }];
  });
}
