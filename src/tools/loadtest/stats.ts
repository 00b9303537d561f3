/** Small statistics helpers for the load-test report. Pure. */

/**
 * The `p`-th percentile (0..100) of `values` by linear interpolation between closest ranks (the "R-7" method,
 * numpy's default): rank = p/100 × (n − 1). Returns null for an empty list. The input is not modified.
 */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const frac = rank - lo;
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * frac;
}

/** Human duration for tables: "42ms", "1.2s", "11.6s", "123s"; "—" for null. */
export function formatDurationMs(ms: number | null): string {
  if (ms === null) return "—";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 100_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.round(ms / 1000)}s`;
}
