/**
 * Shared fast-check settings of the fuzz suite: a fixed seed (so CI is reproducible and a failure can be
 * replayed), run counts scaled by one knob, and a replay path.
 *
 * - `FUZZ_SEED`: the seed (default {@link DEFAULT_SEED}); fast-check prints it, with the failing case's path,
 *   in every failure message.
 * - `FUZZ_PATH`: replays exactly the failing case of that seed (the `path` from the failure message).
 * - `FUZZ_RUNS_SCALE`: multiplies every run count (default 1; e.g. 10 for a long soak run locally).
 */
import fc, { type Parameters } from "fast-check";

/** The seed CI runs with. */
export const DEFAULT_SEED = 20_260_613;

const seed = Number(process.env.FUZZ_SEED ?? DEFAULT_SEED);
const replayPath = process.env.FUZZ_PATH;
const scale = Number(process.env.FUZZ_RUNS_SCALE ?? 1);

/** fast-check parameters for `numRuns` cases (scaled), with the suite's seed. */
export function fuzzParameters<T>(numRuns: number): Parameters<T> {
  return {
    numRuns: Math.max(1, Math.round(numRuns * scale)),
    seed,
    ...(replayPath ? { path: replayPath, endOnFailure: true } : {}),
  };
}

/** A one-line report of a finished property: cases, time, and the seed to replay it. */
export function report(name: string, cases: number, startedMs: number, extra = ""): void {
  const s = ((performance.now() - startedMs) / 1000).toFixed(1);
  process.stdout.write(
    `      fuzz ${name}: ${cases} cases in ${s} s (FUZZ_SEED=${seed})${extra ? `; ${extra}` : ""}\n`,
  );
}

/** Cases sent at once per property run: the coordinator and the generator then share both cores. */
export const MAX_BATCH = 8;

/**
 * A run of 1..`maxBatch` cases, sent concurrently (shrinking narrows a failure to the one case). Latency-bound
 * properties (gRPC streams, registrations) take larger batches.
 */
export function batchOf<T>(arb: fc.Arbitrary<T>, maxBatch = MAX_BATCH): fc.Arbitrary<T[]> {
  return fc.array(arb, { minLength: 1, maxLength: maxBatch });
}

/** Property runs that send about `cases` cases in batches of 1..`maxBatch` (their mean, per run). */
export function runsFor(cases: number, maxBatch = MAX_BATCH): number {
  return Math.ceil(cases / ((1 + maxBatch) / 2));
}

/** Runs `check` on every case of a batch at once; rethrows the first failure. */
export async function allOf<T>(batch: readonly T[], check: (c: T) => Promise<void>): Promise<void> {
  const results = await Promise.allSettled(batch.map(check));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}
