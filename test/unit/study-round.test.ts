// n_cycles: auto rounds keep the study's order discipline: a round is ordered as the same cycle of a
// fixed plan (src/study/order.ts roundOrder), and appending one (src/study/round.ts) agrees with the
// `--cycles N` top-up (src/runner/top-up.ts) when every config continues.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { roundOrder, runPosition } from '../../src/study/order.ts';
import { appendRound } from '../../src/study/round.ts';
import { appendCycles } from '../../src/runner/top-up.ts';
import type { CycleOrder } from '../../src/study/types.ts';
import { makeConfig, makePlan, type ConfigFixture } from '../results/fixtures.ts';

const ORDERS: CycleOrder[] = ['sequential', 'interleaved', 'shuffled'];
const SEED = 987654;

describe('roundOrder', () => {
  for (const order of ORDERS) {
    it(`${order}: a round of every config is that cycle of a fixed plan`, () => {
      const C = 7;
      const cycle = 4;
      const round = roundOrder(Array.from({ length: C }, (_, i) => ({ configIndex: i, cycle })), C, order, SEED);
      // the fixed plan's runs of cycle 4, in plan order
      const fixed: Array<{ configIndex: number; cycle: number }> = [];
      for (let k = 0; k < C * 5; k++) {
        const p = runPosition(k, C, 5, order, SEED);
        if (p.cycle === cycle) fixed.push(p);
      }
      assert.deepEqual(round, fixed);
    });
  }

  it('shuffled: a subset keeps the relative order the full cycle gives it, whatever order it is passed in', () => {
    const C = 20;
    const full = roundOrder(Array.from({ length: C }, (_, i) => ({ configIndex: i, cycle: 5 })), C, 'shuffled', SEED).map((e) => e.configIndex);
    const subset = [17, 3, 11, 0, 8];
    const round = roundOrder(subset.map((i) => ({ configIndex: i, cycle: 5 })), C, 'shuffled', SEED).map((e) => e.configIndex);
    assert.deepEqual(round, full.filter((i) => subset.includes(i)));
    assert.notDeepEqual(round, [...subset].sort((a, b) => a - b), 'shuffled, not config order (seeded)');
  });

  it('refuses a config outside the plan', () => {
    assert.throws(() => roundOrder([{ configIndex: 3, cycle: 1 }], 3, 'shuffled', SEED), RangeError);
  });
});

describe('appendRound', () => {
  const configs: ConfigFixture[] = Array.from({ length: 6 }, (_, i) => ({ hash: `c${i}`.padEnd(16, '0'), label: `c${i}`, config: makeConfig({ batch_size: i + 1 }) }));

  for (const order of ORDERS) {
    it(`${order}: every config continuing = the --cycles top-up`, () => {
      const plan = makePlan(configs, 3, {});
      plan.execution.cycle_order = order;
      const viaRound = appendRound(plan, plan.order.length, configs.map((c) => c.hash));
      const viaTopUp = appendCycles(plan, plan.order.length, 3, 4);
      assert.deepEqual(viaRound.added, viaTopUp.added);
      assert.equal(viaRound.plan.execution.n_cycles, 4);
    });
  }

  it('each config gets its own next cycle; runs already planned are untouched; indices continue', () => {
    const plan = makePlan(configs, 3);
    const first = appendRound(plan, plan.order.length, [configs[1]!.hash, configs[4]!.hash]);
    assert.deepEqual(first.plan.order.slice(0, 18), plan.order);
    assert.deepEqual(first.added.map((r) => r.cycle), [4, 4]);
    assert.deepEqual(first.added.map((r) => r.index), [18, 19]);
    const second = appendRound(first.plan, first.plan.order.length, [configs[4]!.hash]);
    assert.deepEqual(second.added.map((r) => [r.config_hash, r.cycle, r.index]), [[configs[4]!.hash, 5, 20]]);
    assert.equal(second.plan.execution.n_cycles, 5);
    assert.throws(() => appendRound(plan, plan.order.length, ['nope']), RangeError);
  });
});
