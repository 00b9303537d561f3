/**
 * Seeded randomness for the routing simulator: mulberry32 plus the few distributions a workload needs.
 * Deterministic by seed, so a scenario + seed always prints the same table.
 */

/** mulberry32: a tiny 32-bit PRNG with good statistical quality for simulation; returns [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A length distribution: log-normal around a median, clamped to [min, max]. */
export interface LogNormal {
  median: number;
  /** Standard deviation of ln(x). */
  sigma: number;
  min: number;
  max: number;
}

/** Standard normal via Box-Muller. */
export function normal(random: () => number): number {
  const u = Math.max(1e-12, random());
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** An integer sample of a clamped log-normal. */
export function sampleLogNormal(random: () => number, d: LogNormal): number {
  const x = d.median * Math.exp(d.sigma * normal(random));
  return Math.round(Math.min(d.max, Math.max(d.min, x)));
}

/** Exponential inter-arrival time for a Poisson process of `ratePerS`, ms. */
export function exponentialMs(random: () => number, ratePerS: number): number {
  return (-Math.log(Math.max(1e-12, 1 - random())) / ratePerS) * 1000;
}
