/**
 * The tools' one seeded PRNG. The routing simulator, the simulated Macs and the benches draw from it so a
 * seed always reproduces the same run; the product itself uses no seeded randomness.
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
