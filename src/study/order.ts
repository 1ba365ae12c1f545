// Run order over (config, cycle) pairs, computed per index in O(1) so that a huge plan never
// materialises its order. Cycles are numbered 1..n_cycles.
//  - sequential:  A A B B  (every cycle of a config back to back)
//  - interleaved: A B A B  (one pass over the configs per cycle)
//  - shuffled:    each cycle a pass in its own permutation, from (seed, cycle) alone, so adding
//                 cycles later (top-up) keeps the order of the existing ones.
import type { CycleOrder } from './types.ts';

function mix32(x: number): number {
  // murmur3 finaliser: a cheap, well-distributed 32-bit hash.
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * A keyed bijection on [0, size): a balanced Feistel network over the smallest even bit width
 * that covers size, with cycle walking to stay in range (expected < 4 steps).
 */
export function permuteIndex(i: number, size: number, seed: number, cycle: number): number {
  if (size <= 1) return 0;
  let bits = 2;
  while (2 ** bits < size) bits += 2;
  const half = bits / 2;
  const mask = (1 << half) - 1;
  const key = mix32((seed >>> 0) ^ mix32(cycle + 0x9e3779b9));
  let x = i;
  do {
    let left = Math.floor(x / 2 ** half) & mask;
    let right = x & mask;
    for (let round = 0; round < 4; round++) {
      const f = mix32(right ^ mix32(key + round)) & mask;
      const next = left ^ f;
      left = right;
      right = next;
    }
    x = left * 2 ** half + right;
  } while (x >= size);
  return x;
}

/** The (config position, cycle) of run `k` of `configCount × nCycles` runs. */
export function runPosition(
  k: number,
  configCount: number,
  nCycles: number,
  order: CycleOrder,
  seed: number,
): { configIndex: number; cycle: number } {
  if (!Number.isInteger(k) || k < 0 || k >= configCount * nCycles) throw new RangeError(`run index ${k} out of range 0..${configCount * nCycles - 1}`);
  if (order === 'sequential') return { configIndex: Math.floor(k / nCycles), cycle: (k % nCycles) + 1 };
  const cycle = Math.floor(k / configCount) + 1;
  const pos = k % configCount;
  return { configIndex: order === 'interleaved' ? pos : permuteIndex(pos, configCount, seed, cycle), cycle };
}

/**
 * The order of one `n_cycles: auto` round: each entry is a config (by its position in the plan)
 * and the cycle it adds. Entries come out as the same cycle of a fixed plan would order them,
 * with the stopped configs left out: by cycle, then (sequential) by config or (interleaved) by
 * config or (shuffled) by that cycle's permutation of the whole config list, keyed by the
 * recorded seed. So a config's k-th cycle sits where it would have in a plan of k cycles.
 */
export function roundOrder(
  entries: ReadonlyArray<{ configIndex: number; cycle: number }>,
  configCount: number,
  order: CycleOrder,
  seed: number,
): Array<{ configIndex: number; cycle: number }> {
  const positionByCycle = new Map<number, Int32Array>();
  const position = (configIndex: number, cycle: number): number => {
    if (order !== 'shuffled') return configIndex;
    let pos = positionByCycle.get(cycle);
    if (!pos) {
      pos = new Int32Array(configCount);
      for (let p = 0; p < configCount; p++) pos[permuteIndex(p, configCount, seed, cycle)] = p;
      positionByCycle.set(cycle, pos);
    }
    return pos[configIndex]!;
  };
  for (const e of entries) {
    if (!Number.isInteger(e.configIndex) || e.configIndex < 0 || e.configIndex >= configCount) throw new RangeError(`config ${e.configIndex} out of range 0..${configCount - 1}`);
  }
  const keyed = entries.map((e) => ({ e, pos: position(e.configIndex, e.cycle) }));
  keyed.sort((a, b) => (order === 'sequential' ? a.pos - b.pos || a.e.cycle - b.e.cycle : a.e.cycle - b.e.cycle || a.pos - b.pos));
  return keyed.map((k) => ({ configIndex: k.e.configIndex, cycle: k.e.cycle }));
}
