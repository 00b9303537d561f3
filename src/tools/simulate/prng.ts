/**
 * The few distributions a simulated workload needs, drawn from a seeded source (the tools' mulberry32,
 * src/tools/shared/mulberry32.ts), so a scenario + seed always prints the same table.
 */

import { mulberry32 } from "../shared/mulberry32.js";

/**
 * Source `k`'s own random stream in a run seeded with `seed` (each arrival source of a simulation has one, so
 * one source's draws never shift another's). The two are mixed (murmur3's finalizer) rather than added:
 * mulberry32 walks a counter, so seeds a multiple of its step apart would give one stream shifted.
 */
export function randomStream(seed: number, k: number): () => number {
  let h = (seed ^ Math.imul(k + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return mulberry32((h ^ (h >>> 16)) >>> 0);
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
