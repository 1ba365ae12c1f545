// A `--cycles` top-up orders its new cycles exactly as a study planned with that many cycles from
// the start would have (shuffled included), whatever launcher runs them.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { planStudy } from '../../src/study/plan.ts';
import { appendCycles } from '../../src/runner/top-up.ts';

async function planWith(cycles: number, order: string): Promise<ReturnType<Awaited<ReturnType<typeof planStudy>>['toPlanFile']>> {
  const dir = mkdtempSync(join(tmpdir(), 'llem-topup-'));
  try {
    const yaml = [
      'name: topup',
      'backend: llamacpp',
      'model: builtin:tiny-random',
      'sweep:',
      '  batch_size: [1, 2, 3, 4, 5]',
      '  max_new_tokens: [8, 16]',
      'execution:',
      `  n_cycles: ${cycles}`,
      `  cycle_order: ${order}`,
      '  shuffle_seed: 12345',
    ].join('\n');
    writeFileSync(join(dir, 'study.yaml'), yaml + '\n');
    return (await planStudy(join(dir, 'study.yaml'), { gpuFreeMemoryBytes: null })).toPlanFile();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const order of ['shuffled', 'interleaved'] as const) {
  test(`topping a 1-cycle ${order} study up to 3 cycles gives the 3-cycle plan's order`, async () => {
    const one = await planWith(1, order);
    const three = await planWith(3, order);
    const { plan, added } = appendCycles(one, one.order.length, 1, 3);
    assert.equal(added.length, 2 * one.configs.length);
    assert.deepEqual(plan.order, three.order);
    assert.equal(plan.execution.n_cycles, 3);
    if (order === 'shuffled') {
      const cycle = (c: number) => plan.order.filter((r) => r.cycle === c).map((r) => r.config_hash);
      assert.notDeepEqual(cycle(2), cycle(3), 'each cycle has its own permutation');
    }
  });
}

test('a count not above the current cycles appends nothing', async () => {
  const two = await planWith(2, 'shuffled');
  assert.deepEqual(appendCycles(two, two.order.length, 2, 2).added, []);
  assert.deepEqual(appendCycles(two, two.order.length, 2, 1).added, []);
});
