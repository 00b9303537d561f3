/**
 * Pure sizing rules of a leased bucket (no I/O, time injected): how fast a key is being used on this process,
 * how much to ask the shared bucket for, and when to ask. See {@link LeaseTuning} for the numbers.
 */

/** Timing of a leased bucket store; every field in ms. Defaults in {@link defaultLeaseTuning}. */
export interface LeaseTuning {
  /** A grant is sized to last this long at the key's recent usage (the brief: 2-5 s). */
  grantTargetMs: number;
  /**
   * A grant is at most this fraction of the burst (beyond what the request at hand needs). The shared bucket
   * refills only while bucket + leases stay under the burst, and it learns what a lease spent only at that
   * holder's next exchange, so a lease near the burst would stall the refill in between.
   */
  maxGrantOfBurst: number;
  /** Refresh in the background when the local grant covers less than this much recent usage. */
  refreshBelowMs: number;
  /** Time constant of the usage average (units/ms decays with e^(-Δt/τ)). */
  usageWindowMs: number;
  /** At most one exchange per key per process this often, unless the shared bucket is known to hold enough. */
  minDrawIntervalMs: number;
  /** A key unused this long hands its grant back. */
  idleReturnMs: number;
  /**
   * A grant not renewed within this time may no longer be spent (the process has lost the database). Leases
   * stale for twice this long are reaped by any process, so stranded tokens come back.
   */
  grantTtlMs: number;
  /** An exchange slower than this counts as a failure (fail-open policy). */
  drawTimeoutMs: number;
  /** Period of the sweep that returns idle grants and reaps stale leases. */
  sweepIntervalMs: number;
}

/** The defaults, documented in README "Rate limits across processes". */
export const defaultLeaseTuning: Readonly<LeaseTuning> = Object.freeze({
  grantTargetMs: 3_000,
  maxGrantOfBurst: 0.5,
  refreshBelowMs: 1_000,
  usageWindowMs: 5_000,
  minDrawIntervalMs: 1_000,
  idleReturnMs: 3_000,
  grantTtlMs: 10_000,
  drawTimeoutMs: 500,
  sweepIntervalMs: 500,
});

/** A decayed usage counter: `units` as of `atMs`, counting since `sinceMs`. */
export interface Usage {
  readonly units: number;
  readonly atMs: number;
  readonly sinceMs: number;
}

/** A counter that starts counting at `nowMs`. */
export function newUsage(nowMs: number): Usage {
  return { units: 0, atMs: nowMs, sinceMs: nowMs };
}

/** The counter decayed to `nowMs` with time constant `windowMs`, plus `units` spent (or wanted) now. */
export function addUsage(u: Usage, units: number, nowMs: number, windowMs: number): Usage {
  const dt = Math.max(0, nowMs - u.atMs);
  return {
    units: u.units * Math.exp(-dt / windowMs) + Math.max(0, units),
    atMs: Math.max(nowMs, u.atMs),
    sinceMs: u.sinceMs,
  };
}

/**
 * Recent usage in units per ms: steady use at r units/ms gives r. A young counter (counting for a < windowMs)
 * holds only r·τ·(1 − e^(−a/τ)), so it is divided by that, not by τ: otherwise a key that just became busy would
 * look τ/a times quieter and draw grants far too small while it ramps up. `a` is at least `minAgeMs`, so one
 * request on a cold key does not look like a flood.
 */
export function usageRate(u: Usage, nowMs: number, windowMs: number, minAgeMs = 1_000): number {
  const age = Math.max(minAgeMs, nowMs - u.sinceMs);
  return addUsage(u, 0, nowMs, windowMs).units / (windowMs * (1 - Math.exp(-age / windowMs)));
}

/**
 * What to ask for: enough for `needUnits` now and `grantTargetMs` of recent usage (at most `maxGrantOfBurst` of
 * the burst), less what is held. `minUnits` is what the request at hand still lacks (0 for a background refresh).
 */
export function grantSize(
  burst: number,
  held: number,
  needUnits: number,
  ratePerMs: number,
  t: Pick<LeaseTuning, "grantTargetMs" | "maxGrantOfBurst">,
): { minUnits: number; wantUnits: number } {
  const have = Math.max(0, held);
  const minUnits = Math.max(0, needUnits - have);
  const target = Math.max(needUnits, Math.min(burst * t.maxGrantOfBurst, ratePerMs * t.grantTargetMs));
  return { minUnits, wantUnits: Math.max(minUnits, target - have) };
}

/** True when the local grant covers less than `refreshBelowMs` of recent usage (refresh in the background). */
export function runningLow(held: number, ratePerMs: number, t: Pick<LeaseTuning, "refreshBelowMs">): boolean {
  return ratePerMs > 0 && held < ratePerMs * t.refreshBelowMs;
}
