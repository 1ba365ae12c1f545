// The one seeded PRNG of llem (mulberry32: small, well known, 32-bit state). Everything seeded —
// random weights, prompt order, arrival times, bootstrap resamples — draws from it, so a seed in a
// study file or a result means the same sequence everywhere.
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
