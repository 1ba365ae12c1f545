// The estimate that learns: history matches (nearest first, wider ranges farther out), the
// heuristic's corrected constants, baseline reuse, and n_cycles: auto as a range of runs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planStudy } from '../../src/study/plan.ts';
import { estimatePlan, PILOT_ASSUMED_CV, runDuration } from '../../src/study/estimate.ts';
import { cyclesForCv } from '../../src/results/stopping-rule.ts';
import { canonicalJson, sha256Hex16 } from '../../src/study/hash.ts';
import type { HistoryRecord } from '../../src/history/schema.ts';
import { CPU_HERE, H100, makeRecord } from './history-helpers.ts';
import { withStudy } from './study-helpers.ts';

const now = new Date('2026-03-01T12:00:00Z');
const root = fileURLToPath(new URL('../../', import.meta.url));
const env = { now, gpuFreeMemoryBytes: null, gpuFreeMemoryReason: 'test', modelBytes: () => 8 * 2 ** 20 };

function planOf(yaml: string, opts: Parameters<typeof planStudy>[1] = {}) {
  return withStudy({ 'study.yaml': yaml }, (dir) => planStudy(join(dir, 'study.yaml'), { gpuFreeMemoryBytes: null, now, ...opts }));
}

describe('the heuristic, corrected where it was simply wrong', () => {
  it('the quickstart on this CPU machine is estimated near its measured 11–16 s (was 58 s)', async () => {
    const plan = await planStudy(join(root, 'examples/quickstart.yaml'), { gpuFreeMemoryBytes: null, now, machine: CPU_HERE });
    const e = plan.estimate;
    assert.equal(e.source, 'heuristic');
    assert.ok(e.total_seconds <= 2 * 16 && e.total_seconds >= 11 / 2, `estimate ${e.total_seconds} s against 11–16 s measured`);
    assert.ok(e.low_seconds <= 11 && e.high_seconds >= 16, `range ${e.low_seconds}–${e.high_seconds} s contains the measured times`);
    assert.ok(e.notes!.some((n) => /skips the idle baseline/.test(n)));
  });

  it('a measured baseline is shared across runs through reuse_seconds, not paid by every run', async () => {
    const yaml = 'backend: llamacpp\nmodel: builtin:tiny-random\nbaseline:\n  duration_seconds: 30\n  reuse_seconds: 300\nexecution:\n  n_cycles: 10\n';
    const plan = await planOf(yaml, { machine: H100 });
    const c = plan.estimate.per_config[0]!;
    const single = runDuration(plan.configAt(0).config, 8 * 2 ** 20);
    assert.ok(c.run_seconds < single.run_seconds - 5, `${c.run_seconds} s per run, ${single.run_seconds} s with its own baseline`);
    assert.ok(c.high_seconds >= single.high_seconds - 1e-9, 'the high end still allows a baseline every run');
    const off = await planOf(yaml.replace('reuse_seconds: 300', 'reuse_seconds: 0'), { machine: H100 });
    assert.ok(off.estimate.per_config[0]!.run_seconds >= single.run_seconds - 1e-9, 'no reuse: every run measures it');
  });
});

describe('history matches, nearest first', () => {
  const yaml = 'backend: llamacpp\nmodel: builtin:tiny-random\nn: 8\nmax_new_tokens: 32\nexecution:\n  n_cycles: 2\n';

  async function ladder() {
    const plan = await planOf(yaml);
    const pc = plan.configAt(0);
    const params = sha256Hex16(canonicalJson(pc.config.params));
    const key = { ...makeRecord().key, max_new_tokens: 32, n: 8, params_hash: params, precision: pc.config.precision };
    const rec = (over: Partial<HistoryRecord>) => makeRecord({ key, phases_s: { startup: 0.3, baseline: 0, load: 0.8, warmup: 0.2, measure: 0.4 }, ...over });
    const runs = {
      exact: [rec({ config_hash: pc.config_hash }), rec({ config_hash: pc.config_hash }), rec({ config_hash: pc.config_hash })],
      otherDriver: [rec({ config_hash: pc.config_hash, machine: { ...H100, driver: '535.1' } })],
      knobs: [rec({ config_hash: 'other', key: { ...key, max_new_tokens: 16 }, phases_s: { startup: 0.3, baseline: 0, load: 0.8, warmup: 0.1, measure: 0.2 } })],
      model: [rec({ config_hash: 'other2', key: { ...key, params_hash: 'x', batch_size: 1 } })],
      backend: [rec({ config_hash: 'other3', key: { ...key, model: '/m/other.gguf' }, phases_s: { startup: 0.9, baseline: 0, load: 50, warmup: 5, measure: 9 } })],
    };
    return { plan, runs };
  }

  it('same config on this machine: the measured phase times, a narrow range', async () => {
    const { plan, runs } = await ladder();
    const e = estimatePlan(plan, { records: [...runs.exact, ...runs.knobs, ...runs.backend] }, { ...env, machine: CPU_HERE });
    const c = e.per_config[0]!;
    assert.ok(Math.abs(c.run_seconds - 1.7) < 1e-9, String(c.run_seconds));
    assert.match(c.match!, /same config on this machine \(3 runs\)/);
    assert.ok(c.low_seconds >= 1.7 * 0.8 && c.high_seconds <= 1.7 * 1.25);
    assert.equal(e.source, 'history');
    assert.ok(e.notes!.some((n) => /run history of this machine/.test(n)));
  });

  it('farther matches give wider ranges, and the token phases scale with prompts × tokens', async () => {
    const { plan, runs } = await ladder();
    const gpuEnv = { ...env, machine: { ...H100 } };
    const width = (c: { low_seconds: number; high_seconds: number }) => c.high_seconds / c.low_seconds;
    const hw = estimatePlan(plan, { records: runs.otherDriver }, gpuEnv).per_config[0]!;
    assert.match(hw.match!, /same hardware, driver 535.1/);
    const knobs = estimatePlan(plan, { records: runs.knobs }, { ...env, machine: CPU_HERE }).per_config[0]!;
    assert.match(knobs.match!, /same model and knobs/);
    const model = estimatePlan(plan, { records: runs.model }, { ...env, machine: CPU_HERE }).per_config[0]!;
    assert.match(model.match!, /same model with other knobs/);
    const backend = estimatePlan(plan, { records: runs.backend }, { ...env, machine: CPU_HERE }).per_config[0]!;
    assert.match(backend.match!, /start-up of llamacpp/);
    const exact = estimatePlan(plan, { records: runs.exact }, { ...env, machine: CPU_HERE }).per_config[0]!;
    assert.ok(width(exact) < width(knobs) && width(knobs) < width(model), `${width(exact)} < ${width(knobs)} < ${width(model)}`);
    // 0.3 start-up + 0.8 load + warmup 10 prompts × 32 tokens at 0.1 s / (4 × 16) + measure 8 × 32 at 0.2 s / (8 × 16)
    assert.ok(Math.abs(knobs.run_seconds - (0.3 + 0.8 + 0.5 + 0.4)) < 1e-9, `scaled: ${knobs.run_seconds}`);
    // start-up only: the rest stays the heuristic's, not the other model's 50 s load
    assert.ok(backend.run_seconds < 10, String(backend.run_seconds));
  });

  it('no machine identity: history unused, and said so', async () => {
    const { plan, runs } = await ladder();
    const e = estimatePlan(plan, { records: runs.exact, problems: ['/x/runs-a.jsonl: 2 line(s) unreadable'] }, env);
    assert.equal(e.source, 'heuristic');
    assert.ok(e.notes!.some((n) => /machine unknown/.test(n)));
    assert.ok(e.notes!.some((n) => /history: \/x\/runs-a.jsonl/.test(n)));
  });
});

describe('n_cycles: auto in the estimate', () => {
  const yaml = 'backend: llamacpp\nmodel: builtin:tiny-random\nsweep:\n  batch_size: [1, 2, 3]\nexecution:\n  n_cycles: auto\n  target:\n    metric: output_tokens_per_s\n    ci_half_width: 0.02\n';

  it('without history: a range of runs from min to max cycles, the pilot assumption stated', async () => {
    const plan = await planOf(yaml, { machine: CPU_HERE });
    const e = plan.estimate;
    assert.equal(plan.run_count, 9, 'the plan starts with min_cycles');
    assert.equal(plan.max_run_count, 36);
    const expected = cyclesForCv(PILOT_ASSUMED_CV, 0.02, 3, 12);
    assert.deepEqual(e.runs, { expected: 3 * expected, low: 9, high: 36 });
    assert.ok(e.notes!.some((n) => /pilot assumption of a 3 % per-cycle CV/.test(n)), e.notes!.join('\n'));
    assert.ok(e.low_seconds < e.total_seconds && e.total_seconds < e.high_seconds);
    const fixed = await planOf(yaml.replace(/n_cycles: auto[\s\S]*/, 'n_cycles: 3\n'), { machine: CPU_HERE });
    assert.ok(e.high_seconds > fixed.estimate.high_seconds, 'max_cycles widens the high end');
  });

  it('with history: expected cycles from the per-cycle spread of the target metric', async () => {
    const plan = await planOf(yaml, { machine: CPU_HERE });
    const records: HistoryRecord[] = [];
    for (let i = 0; i < 3; i++) {
      const pc = plan.configAt(i);
      const cv = [0.001, 0.02, 0.2][i]!;
      for (const z of [-1, 0, 1, 0.5, -0.5]) records.push(makeRecord({ config_hash: pc.config_hash, metrics: { output_tokens_per_s: 1000 * (1 + cv * z) } }));
    }
    const e = estimatePlan(plan, { records }, { ...env, machine: CPU_HERE });
    const cycles = e.per_config.map((c) => c.cycles!.expected);
    assert.equal(cycles[0], 3, 'quiet: min_cycles');
    assert.ok(cycles[1]! > 3 && cycles[1]! < 12, String(cycles[1]));
    assert.equal(cycles[2], 12, 'very noisy: max_cycles');
    assert.equal(e.runs!.expected, cycles.reduce((a, b) => a + b, 0));
    assert.ok(e.notes!.some((n) => /from the spread in the history/.test(n)));
  });
});
