import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { flattenConfig, summarizeStudy, sweptFields } from '../../src/results/summarize.ts';
import { studySummarySchema } from '../../src/results/summary-schema.ts';
import { writeSummary } from '../../src/results/summary.ts';
import { readSummary } from '../../src/study-dir/read.ts';
import { makeGrid, makePlan, makeResult, makeSnapshot, writeStudyDir, type RunFixture } from './fixtures.ts';

const NOW = '2026-02-01T00:00:00.000Z';

test('failed, skipped and interrupted runs are listed with reasons and never averaged in', () => {
  const [a, b] = makeGrid([1, 4]);
  const plan = makePlan([a!, b!], 3);
  // a: cycles 1, 2 completed (0.4, 0.6); cycle 3 failed with OOM — and left a result file with an
  // absurd value, which must not reach the mean.
  const statuses = new Map<string, Partial<RunFixture>>([
    [`${a!.hash}:3`, { status: 'failed', errorType: 'OutOfMemory', message: 'CUDA out of memory' }],
    [`${b!.hash}:2`, { status: 'skipped', errorType: 'UserSkipped', message: 'skipped by user' }],
    [`${b!.hash}:3`, { status: 'interrupted', errorType: 'UserInterrupted' }],
  ]);
  const snapshot = makeSnapshot(plan, statuses, 'interrupted');
  const idx = (hash: string, cycle: number) => plan.order.find((o) => o.config_hash === hash && o.cycle === cycle)!.index;
  const results = [
    makeResult(a!, idx(a!.hash, 1), 1, { energy_per_output_token_j: 0.4 }, ['short_window']),
    makeResult(a!, idx(a!.hash, 2), 2, { energy_per_output_token_j: 0.6 }, ['short_window', 'thermal_throttle', 'thermal_throttle']),
    makeResult(a!, idx(a!.hash, 3), 3, { energy_per_output_token_j: 1000 }),
    makeResult(b!, idx(b!.hash, 1), 1, { energy_per_output_token_j: 0.2 }),
  ];
  const s = summarizeStudy({ plan, snapshot, results, now: NOW });
  studySummarySchema.parse(s);

  const ca = s.configs.find((c) => c.config_hash === a!.hash)!;
  assert.equal(ca.metrics.energy_per_output_token_j!.n, 2);
  assert.ok(Math.abs(ca.metrics.energy_per_output_token_j!.mean! - 0.5) < 1e-12);
  assert.deepEqual(ca.counts, { completed: 2, failed: 1, skipped: 0, interrupted: 0, pending: 0, running: 0, invalid: 0 });
  assert.equal(ca.partial, true);
  assert.deepEqual(ca.flags, { short_window: 2, thermal_throttle: 1 });
  assert.equal(ca.runs.length, 2);

  const cb = s.configs.find((c) => c.config_hash === b!.hash)!;
  assert.equal(cb.metrics.energy_per_output_token_j!.n, 1);
  assert.equal(cb.metrics.energy_per_output_token_j!.ci95_bootstrap, null);

  assert.deepEqual(
    s.excluded_runs.map((r) => [r.config_hash, r.cycle, r.status, r.error_type]),
    [
      [a!.hash, 3, 'failed', 'OutOfMemory'],
      [b!.hash, 2, 'skipped', 'UserSkipped'],
      [b!.hash, 3, 'interrupted', 'UserInterrupted'],
    ].sort((x, y) => idx(x[0] as string, x[1] as number) - idx(y[0] as string, y[1] as number)),
  );
  const oom = s.excluded_runs.find((r) => r.status === 'failed')!;
  assert.match(oom.reason, /OutOfMemory: CUDA out of memory/);
  assert.equal(oom.label, a!.label);
  assert.equal(s.study.partial, true);
  assert.equal(s.study.status, 'interrupted');
  assert.deepEqual(s.study.counts, { planned: 6, completed: 3, failed: 1, skipped: 1, interrupted: 1, pending: 0, running: 0, invalid: 0 });
});

test('protocol, environment and statistics settings are recorded once at the top', () => {
  const configs = makeGrid([1, 2]);
  const plan = makePlan(configs, 2);
  const results = plan.order.map((o) => makeResult(configs.find((c) => c.hash === o.config_hash)!, o.index, o.cycle));
  const s = summarizeStudy({ plan, snapshot: makeSnapshot(plan, new Map()), results, now: NOW });
  assert.equal(s.protocol.n_cycles, 2);
  assert.equal(s.protocol.cycle_order, 'shuffled');
  assert.equal(s.protocol.cycle_seed, 12345);
  assert.equal(s.protocol.config_gap_seconds, 5);
  assert.equal(s.protocol.cycle_gap_seconds, 30);
  assert.equal(s.environment?.gpus[0]?.name, 'NVIDIA H100');
  assert.equal(s.environment?.driver_version, '550.54');
  assert.deepEqual(s.environment?.differences, []);
  assert.equal(s.statistics.bootstrap_seed, 12345, 'defaults to the plan cycle seed');
  assert.equal(s.statistics.confidence, 0.95);
  assert.equal(s.study.partial, false);
  assert.deepEqual(s.swept_fields, ['batch_size']);
  assert.deepEqual(s.configs.map((c) => c.swept), [{ batch_size: 1 }, { batch_size: 2 }]);
});

test('a run on another GPU or driver is reported as an environment difference', () => {
  const [a] = makeGrid([1]);
  const plan = makePlan([a!], 2);
  const r1 = makeResult(a!, 0, 1);
  const r2 = makeResult(a!, 1, 2);
  r2.environment.nvml.driver_version = '560.1';
  const s = summarizeStudy({ plan, snapshot: null, results: [r1, r2], now: NOW });
  assert.equal(s.environment?.differences.length, 1);
  assert.match(s.environment!.differences[0]!, /560\.1/);
});

test('the summary is identical for the same inputs and seed (bootstrap determinism end to end)', () => {
  const configs = makeGrid([1, 2, 8]);
  const plan = makePlan(configs, 4);
  const results = plan.order.map((o) =>
    makeResult(configs.find((c) => c.hash === o.config_hash)!, o.index, o.cycle, { output_tokens_per_s: 20 + ((o.index * 7) % 5) }),
  );
  const one = summarizeStudy({ plan, snapshot: null, results, now: NOW });
  const two = summarizeStudy({ plan, snapshot: null, results: [...results].reverse(), now: NOW });
  assert.deepEqual(one, two);
  const other = summarizeStudy({ plan, snapshot: null, results, now: NOW, options: { bootstrapSeed: 1 } });
  assert.notDeepEqual(
    one.configs.map((c) => c.metrics.output_tokens_per_s!.ci95_bootstrap),
    other.configs.map((c) => c.metrics.output_tokens_per_s!.ci95_bootstrap),
  );
});

test('without a manifest, runs with no result are pending and the study is partial', () => {
  const [a] = makeGrid([1]);
  const plan = makePlan([a!], 3);
  const s = summarizeStudy({ plan, snapshot: null, results: [makeResult(a!, 0, 1)], now: NOW });
  assert.equal(s.study.status, 'unknown');
  assert.equal(s.study.partial, true);
  assert.equal(s.configs[0]!.counts.pending, 2);
  assert.equal(s.excluded_runs.length, 0, 'pending runs are not failures');
});

test('a completed run whose result is missing is excluded and warned about', () => {
  const [a] = makeGrid([1]);
  const plan = makePlan([a!], 2);
  const s = summarizeStudy({ plan, snapshot: makeSnapshot(plan, new Map()), results: [makeResult(a!, 0, 1)], now: NOW });
  assert.equal(s.configs[0]!.counts.completed, 1);
  assert.equal(s.excluded_runs[0]?.error_type, 'InvalidResult');
  assert.equal(s.warnings.length, 1);
});

test('high_variance is set per metric above 10 % CV', () => {
  const [a] = makeGrid([1]);
  const plan = makePlan([a!], 3);
  const tps = [10, 20, 30];
  const results = [1, 2, 3].map((c, i) => makeResult(a!, i, c, { output_tokens_per_s: tps[i]!, power_mean_w: 150 + i }));
  const s = summarizeStudy({ plan, snapshot: null, results, now: NOW });
  const c = s.configs[0]!;
  assert.equal(c.metrics.output_tokens_per_s!.high_variance, true);
  assert.equal(c.metrics.power_mean_w!.high_variance, false);
  assert.ok(c.high_variance_metrics.includes('output_tokens_per_s'));
  assert.ok(!c.high_variance_metrics.includes('power_mean_w'));
});

test('flattenConfig names backend params by backend and sweptFields keeps a stable order', () => {
  const [a, b] = makeGrid([1, 4], ['llamacpp']);
  const fa = flattenConfig(a!.config);
  assert.equal(fa['llamacpp.n_gpu_layers'], 99);
  assert.equal(fa.dataset, 'builtin:default');
  assert.equal(fa['warmup.window'], 5);
  const fb = { ...flattenConfig(b!.config), model: 'other' };
  assert.deepEqual(sweptFields([fa, fb]), ['model', 'batch_size']);
  assert.deepEqual(sweptFields([fa]), []);
});

test('writeSummary writes a summary.json that reads back through the zod schema', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'llem-summary-'));
  try {
    const configs = makeGrid([1, 2]);
    const plan = makePlan(configs, 2);
    const results = plan.order.map((o) => makeResult(configs.find((c) => c.hash === o.config_hash)!, o.index, o.cycle));
    await writeStudyDir(dir, plan, results);
    // One corrupt result: reported in warnings, not fatal.
    await writeFile(path.join(dir, 'runs', results[3]!.run_id, 'result.json'), '{"schema_version": 1, "run_id": 5}');
    await writeSummary(dir);
    const back = readSummary(path.join(dir, 'summary.json'));
    assert.equal(back.configs.length, 2);
    assert.equal(back.study.counts.completed, 3);
    assert.equal(back.warnings.length, 1);
    assert.match(back.warnings[0]!, /result\.json.*field "run_id"/);

    await writeFile(path.join(dir, 'summary.json'), JSON.stringify({ ...back, configs: 'x' }));
    assert.throws(() => readSummary(path.join(dir, 'summary.json')), /summary\.json: field "configs"/);
    const text = await readFile(path.join(dir, 'plan.json'), 'utf8');
    await writeFile(path.join(dir, 'plan.json'), text.replace('"configs"', '"konfigs"'));
    await assert.rejects(writeSummary(dir), /plan\.json: field "configs"/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
