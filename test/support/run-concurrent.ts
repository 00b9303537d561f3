/** A closed-loop load driver for integration tests: `total` jobs with at most `concurrency` in flight. */

export interface ConcurrentRun<T> {
  /** Results in job-index order. */
  results: T[];
  /** Wall-clock time of the whole run, ms. */
  elapsedMs: number;
  /** Largest number of jobs observed in flight at once. */
  peakInFlight: number;
}

/** Runs `job(0..total-1)` with `concurrency` workers pulling the next index; rejects if any job throws. */
export async function runConcurrent<T>(
  total: number,
  concurrency: number,
  job: (i: number) => Promise<T>,
): Promise<ConcurrentRun<T>> {
  const results = new Array<T>(total);
  let next = 0;
  let inFlight = 0;
  let peakInFlight = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      for (let i = next++; i < total; i = next++) {
        inFlight++;
        peakInFlight = Math.max(peakInFlight, inFlight);
        try {
          results[i] = await job(i);
        } finally {
          inFlight--;
        }
      }
    }),
  );
  return { results, elapsedMs: performance.now() - started, peakInFlight };
}

/** The q-quantile (0..1) of `values` by nearest rank; NaN for an empty list. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}
