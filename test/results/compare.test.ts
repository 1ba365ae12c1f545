import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { summarizeStudy } from '../../src/results/summarize.ts';
import { compareSummaries } from '../../src/results/compare.ts';
import { compareText } from '../../src/cli/compare.ts';
import { makeConfig, makeGrid, makePlan, makeResult, writeStudyDir, type ConfigFixture } from './fixtures.ts';

const NOW = '2026-02-01T00:00:00.000Z';

function studyOf(configs: ConfigFixture[], tps: (c: ConfigFixture, cycle: number) => number) {
  const plan = makePlan(configs, 3);
  const results = plan.order.map((o) => {
    const c = configs.find((x) => x.hash === o.config_hash)!;
    return makeResult(c, o.index, o.cycle, { output_tokens_per_s: tps(c, o.cycle) });
  });
  return { plan, results, summary: summarizeStudy({ plan, snapshot: null, results, now: NOW }) };
}

test('compare matches configs by hash, then by label, and says whether the CIs overlap', () => {
  const [a1, a2, a3] = makeGrid([1, 2, 3]);
  // B: config bs=1 identical hash; bs=2 re-hashed (a default changed) but same label; bs=3 absent; bs=9 new.
  const b2: ConfigFixture = { ...a2!, hash: 'ffffffffffffffff', config: makeConfig({ batch_size: 2, seed: 7 }) };
  const b9: ConfigFixture = { hash: '9999999999999999', label: 'llamacpp bs=9', config: makeConfig({ batch_size: 9 }) };
  const A = studyOf([a1!, a2!, a3!], (c, cycle) => 10 * c.config.batch_size + cycle); // bs1: 11,12,13
  const B = studyOf([a1!, b2, b9], (c, cycle) => (c.config.batch_size === 1 ? 12 + cycle : 10 * c.config.batch_size + 50 + cycle));
  const r = compareSummaries(A, B, ['output_tokens_per_s']);
  assert.equal(r.matched, 2);
  assert.deepEqual(r.onlyA, ['llamacpp bs=3']);
  assert.deepEqual(r.onlyB, ['llamacpp bs=9']);
  const [bs1, bs2] = r.table.rows;
  assert.equal(bs1!.matched_by, 'hash');
  assert.equal(bs1!.a_mean, 12);
  assert.equal(bs1!.b_mean, 14);
  assert.equal(bs1!.change, 2);
  assert.ok(Math.abs((bs1!.change_pct as number) - (100 * 2) / 12) < 1e-9);
  // 11..13 and 13..15: bootstrap intervals both contain 13 → overlap
  assert.equal(bs1!.ci_overlap, true);
  assert.equal(bs2!.matched_by, 'label');
  assert.equal(bs2!.change, 50);
  assert.equal(bs2!.ci_overlap, false);
});

test('llem compare on two study dirs, CSV on stdout', async () => {
  const dirA = await mkdtemp(path.join(os.tmpdir(), 'llem-cmpA-'));
  const dirB = await mkdtemp(path.join(os.tmpdir(), 'llem-cmpB-'));
  try {
    const configs = makeGrid([1, 4]);
    const A = studyOf(configs, (c, cycle) => c.config.batch_size * 10 + cycle);
    const B = studyOf(configs, (c, cycle) => c.config.batch_size * 12 + cycle);
    await writeStudyDir(dirA, A.plan, A.results);
    await writeStudyDir(dirB, B.plan, B.results);
    const out = await compareText(dirA, dirB, { format: 'csv', where: ['metric=output_tokens_per_s'], sort: '-change' });
    const rows = parse(out.stdout, { columns: true }) as Array<Record<string, string>>;
    assert.deepEqual(rows.map((r) => [r.label, Number(r.change)]), [
      ['llamacpp bs=4', 8],
      ['llamacpp bs=1', 2],
    ]);
    assert.match(out.stderr, /2 configs in both/);
  } finally {
    await rm(dirA, { recursive: true, force: true });
    await rm(dirB, { recursive: true, force: true });
  }
});

test('llem compare on two studies that share no config is bad input (exit 2), not an empty table', async () => {
  const dirA = await mkdtemp(path.join(os.tmpdir(), 'llem-cmpA-'));
  const dirB = await mkdtemp(path.join(os.tmpdir(), 'llem-cmpB-'));
  try {
    const A = studyOf(makeGrid([1, 2]), (c, cycle) => c.config.batch_size * 10 + cycle);
    const B = studyOf(makeGrid([8]), (c, cycle) => c.config.batch_size * 10 + cycle);
    await writeStudyDir(dirA, A.plan, A.results);
    await writeStudyDir(dirB, B.plan, B.results);
    await assert.rejects(compareText(dirA, dirB, { format: 'table', where: [] }), (err: Error & { exitCode?: number }) => {
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /share no config, nothing to compare .*only in A: llamacpp bs=1, llamacpp bs=2; only in B: llamacpp bs=8/);
      return true;
    });
  } finally {
    await rm(dirA, { recursive: true, force: true });
    await rm(dirB, { recursive: true, force: true });
  }
});

test('compare refuses (exit 2) when the driver differs, naming it; --allow-env-diff puts the difference above the table', async () => {
  const dirA = await mkdtemp(path.join(os.tmpdir(), 'llem-cmpA-'));
  const dirB = await mkdtemp(path.join(os.tmpdir(), 'llem-cmpB-'));
  try {
    const configs = makeGrid([1, 4]);
    const A = studyOf(configs, (c, cycle) => c.config.batch_size * 10 + cycle);
    const B = studyOf(configs, (c, cycle) => c.config.batch_size * 10 + cycle);
    for (const r of B.results) r.environment.nvml.driver_version = '560.28';
    // A reading that differs (clock at run start) is listed but does not refuse.
    for (const r of B.results) r.environment.gpus[0]!.sm_clock_mhz = 1410;
    await writeStudyDir(dirA, A.plan, A.results);
    await writeStudyDir(dirB, B.plan, B.results);
    await assert.rejects(compareText(dirA, dirB, { format: 'table', where: [] }), (err: Error & { exitCode?: number }) => {
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /driver \(NVIDIA driver\): A 550\.54 · B 560\.28/);
      assert.doesNotMatch(err.message, /sm_clock/);
      assert.match(err.message, /--allow-env-diff/);
      return true;
    });
    const out = await compareText(dirA, dirB, { format: 'table', where: [], allowEnvDiff: true }, 200);
    const [header] = out.stdout.split('┌');
    assert.match(header!, /ENVIRONMENTS DIFFER/);
    assert.match(header!, /! driver \(NVIDIA driver\): A 550\.54 · B 560\.28/);
    assert.match(header!, /· sm_clock_mhz .*A 1980 · B 1410/);
    const csv = await compareText(dirA, dirB, { format: 'csv', where: [], allowEnvDiff: true });
    const rows = parse(csv.stdout, { columns: true }) as Array<Record<string, string>>;
    assert.equal(rows[0]!.env_differences, 'driver: 550.54 → 560.28');
    assert.match(csv.stderr, /ENVIRONMENTS DIFFER/);
    // Only a reading differs: no refusal.
    for (const r of B.results) r.environment.nvml.driver_version = '550.54';
    await writeStudyDir(dirB, B.plan, B.results);
    const ok = await compareText(dirA, dirB, { format: 'table', where: [] }, 200);
    assert.match(ok.stdout, /Environment differences \(readings, not settings\)/);
  } finally {
    await rm(dirA, { recursive: true, force: true });
    await rm(dirB, { recursive: true, force: true });
  }
});

test('B/A ratio with its interval (the wider of bootstrap and delta-method t) over both studies\' cycles; distinguishable only when it excludes 1', () => {
  const configs = makeGrid([1, 2]);
  // bs=1: A 10,11,12 vs B 20,22,24 → ratio of means 2, every resample ratio within [20/12, 24/10].
  // bs=2: A 10,20,30 vs B 11,21,31 → overlapping spreads: not distinguishable.
  const A = studyOf(configs, (c, cycle) => (c.config.batch_size === 1 ? 9 + cycle : 10 * cycle));
  const B = studyOf(configs, (c, cycle) => (c.config.batch_size === 1 ? 18 + 2 * cycle : 10 * cycle + 1));
  const r = compareSummaries(A, B, ['output_tokens_per_s']);
  const [bs1, bs2] = r.table.rows;
  assert.equal(bs1!.ratio, 2);
  assert.ok((bs1!.ratio_bootstrap_ci_low as number) >= 20 / 12 && (bs1!.ratio_bootstrap_ci_high as number) <= 24 / 10);
  // the shown interval is the wider one (at 3 cycles the t interval), and contains the bootstrap's
  assert.equal(bs1!.ratio_ci_low, bs1!.ratio_t_ci_low);
  assert.ok((bs1!.ratio_ci_low as number) <= (bs1!.ratio_bootstrap_ci_low as number) && (bs1!.ratio_ci_high as number) >= (bs1!.ratio_bootstrap_ci_high as number));
  assert.equal(bs1!.verdict, 'B higher');
  assert.equal(bs2!.ratio, 21 / 20);
  assert.ok((bs2!.ratio_ci_low as number) < 1 && (bs2!.ratio_ci_high as number) > 1);
  assert.equal(bs2!.verdict, 'not distinguishable');
  // Seeded: the same inputs give the same interval.
  assert.deepEqual(compareSummaries(A, B, ['output_tokens_per_s']).table.rows, r.table.rows);
  assert.deepEqual(r.differences, []);
});
