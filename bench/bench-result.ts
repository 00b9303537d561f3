/**
 * The shape every benchmark returns, plus the small helpers they share: percentiles, Markdown tables and
 * target checks. Benchmarks report ratios against a baseline measured in the same run, because absolute
 * timings on a noisy 2-core machine are not comparable between runs.
 */

/** A target from the issue, checked against a measured value. */
export interface BenchTarget {
  /** What is compared, e.g. "non-streaming throughput vs direct (c=32)". */
  name: string;
  /** The measured value (NaN when it could not be measured). */
  value: number;
  /** ">=": value must be at least `threshold`; "<" / "<=": value must stay below it / at most it. */
  comparator: Comparator;
  threshold: number;
  unit: string;
  met: boolean;
}

/** One benchmark's outcome: a printable table, its targets, and machine-readable rows for the history. */
export interface BenchResult {
  name: "gateway" | "ledger" | "scheduler" | "capacity" | "routing" | "flood" | "cluster";
  title: string;
  /** Markdown (one or more tables, plus notes). */
  markdown: string;
  targets: BenchTarget[];
  /** Structured measurements (rows, ratios, parameters) appended to the results history. */
  data: Record<string, unknown>;
}

export type Comparator = ">=" | "<" | "<=";

/** Builds a target and decides whether it is met. */
export function target(
  name: string,
  value: number,
  comparator: Comparator,
  threshold: number,
  unit: string,
): BenchTarget {
  const met =
    Number.isFinite(value) &&
    (comparator === ">=" ? value >= threshold : comparator === "<" ? value < threshold : value <= threshold);
  return { name, value, comparator, threshold, unit, met };
}

/** Nearest-rank percentile of an ascending-sorted array (0 for none). */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Sorts a copy (numerically) and returns p50/p99. */
export function p50p99(values: readonly number[]): { p50: number; p99: number } {
  const s = Float64Array.from(values).sort();
  return { p50: percentileSorted(s, 50), p99: percentileSorted(s, 99) };
}

/** A Markdown table from a header row and body rows. */
export function markdownTable(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/** "1.23×" (or "n/a" when the denominator is zero). */
export function ratio(a: number, b: number): string {
  return b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}×` : "n/a";
}

/** One line per target: "met" / "NOT MET". */
export function formatTargets(targets: readonly BenchTarget[]): string {
  return targets
    .map(
      (t) =>
        `- ${t.met ? "met" : "NOT MET"}: ${t.name} = ${Number.isFinite(t.value) ? round(t.value) : "n/a"} ${t.unit} (target ${t.comparator} ${t.threshold} ${t.unit})`,
    )
    .join("\n");
}

/** Rounds for display: 3 significant-ish decimals for small numbers, integers for large ones. */
export function round(v: number): number {
  if (!Number.isFinite(v)) return v;
  if (Math.abs(v) >= 100) return Math.round(v);
  if (Math.abs(v) >= 1) return Math.round(v * 100) / 100;
  return Math.round(v * 1000) / 1000;
}
