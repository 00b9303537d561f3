/**
 * Apple-Silicon hardware profiles for the simulated fleet, and a deterministic way to hand them out.
 *
 * Numbers are Apple's published figures for one common memory configuration of each chip (unified memory in
 * GB, memory bandwidth in GB/s, GPU cores of the full-GPU bin). There is no M4 Ultra; the newest Ultra is the
 * M3 Ultra, so the "Ultra" tier of the M4 generation is absent on purpose.
 */

/** One machine configuration. */
export interface ChipProfile {
  /** Short key used on the command line, e.g. "m4-max-128". */
  key: string;
  /** Marketing name sent as `Hardware.chip_name`, e.g. "Apple M4 Max". */
  chipName: string;
  /** Generation sent as `Hardware.chip_family`, e.g. "M4". */
  chipFamily: string;
  memoryGb: number;
  memoryBandwidthGbs: number;
  gpuCores: number;
}

function p(key: string, chipName: string, memoryGb: number, memoryBandwidthGbs: number, gpuCores: number): ChipProfile {
  const chipFamily = chipName.split(" ")[1] ?? "M1";
  return Object.freeze({ key, chipName, chipFamily, memoryGb, memoryBandwidthGbs, gpuCores });
}

/** Every known profile, oldest first. */
export const chipProfiles: readonly ChipProfile[] = Object.freeze([
  p("m1-16", "Apple M1", 16, 68, 8),
  p("m1-pro-32", "Apple M1 Pro", 32, 200, 16),
  p("m1-max-64", "Apple M1 Max", 64, 400, 32),
  p("m1-ultra-128", "Apple M1 Ultra", 128, 800, 64),
  p("m2-24", "Apple M2", 24, 100, 10),
  p("m2-pro-32", "Apple M2 Pro", 32, 200, 19),
  p("m2-max-96", "Apple M2 Max", 96, 400, 38),
  p("m2-ultra-192", "Apple M2 Ultra", 192, 800, 76),
  p("m3-24", "Apple M3", 24, 100, 10),
  p("m3-pro-36", "Apple M3 Pro", 36, 150, 18),
  p("m3-max-64", "Apple M3 Max", 64, 400, 40),
  p("m3-max-128", "Apple M3 Max", 128, 400, 40),
  p("m3-ultra-256", "Apple M3 Ultra", 256, 819, 80),
  p("m4-32", "Apple M4", 32, 120, 10),
  p("m4-pro-48", "Apple M4 Pro", 48, 273, 20),
  p("m4-pro-64", "Apple M4 Pro", 64, 273, 20),
  p("m4-max-64", "Apple M4 Max", 64, 546, 40),
  p("m4-max-128", "Apple M4 Max", 128, 546, 40),
]);

/**
 * The default pool for a serving fleet: machines with at least 48 GB, because the provider's load rule
 * (weights × 3 must fit) keeps smaller Macs from loading the catalog's 12-16 GB models at all.
 */
export const servingChipProfiles: readonly ChipProfile[] = Object.freeze(chipProfiles.filter((c) => c.memoryGb >= 48));

/** Looks a profile up by key ("m4-max-128"); undefined when unknown. */
export function chipProfile(key: string): ChipProfile | undefined {
  return chipProfiles.find((c) => c.key === key);
}

/**
 * The profile of the Mac at `index` in a fleet: a seeded rotation of `pool`, so the same (seed, index) always
 * gives the same machine and consecutive indices cover the pool evenly.
 */
export function assignChip(index: number, seed = 0, pool: readonly ChipProfile[] = servingChipProfiles): ChipProfile {
  if (pool.length === 0) throw new Error("assignChip: empty chip pool");
  const offset = Math.abs(Math.trunc(seed)) % pool.length;
  return pool[(index + offset) % pool.length]!;
}
