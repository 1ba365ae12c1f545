import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { planStudy } from '../../src/study/plan.ts';
import { defaultRunTimeoutSeconds, estimatePlan, memoryEstimate, runDuration, STUDY_OVERHEAD_SECONDS } from '../../src/study/estimate.ts';
import { CPU_HERE, H100, makeRecord } from './history-helpers.ts';
import { gpuFreeMemoryBytes } from '../../src/study/gpu.ts';
import { withStudy } from './study-helpers.ts';

const now = new Date('2026-03-01T12:00:00Z');
const yaml = 'backend: llamacpp\nmodel: builtin:tiny-random\nsweep:\n  max_new_tokens: [16, 256]\nexecution:\n  n_cycles: 2\n  config_gap_seconds: 10\n  cycle_gap_seconds: 60\n  cycle_order: interleaved\n';

function planOf(text: string, opts: Parameters<typeof planStudy>[1] = {}) {
  return withStudy({ 'study.yaml': text }, (dir) => planStudy(join(dir, 'study.yaml'), { gpuFreeMemoryBytes: null, now, ...opts }));
}

describe('estimate', () => {
  it('has a range around the total, a finish time, and one entry per config', async () => {
    const plan = await planOf(yaml);
    const e = plan.estimate;
    assert.ok(e.low_seconds < e.total_seconds && e.total_seconds < e.high_seconds, JSON.stringify(e));
    assert.equal(Date.parse(e.finish_at), now.getTime() + Math.round(e.total_seconds) * 1000 + (Date.parse(e.finish_at) - now.getTime() - Math.round(e.total_seconds) * 1000));
    assert.ok(Math.abs(Date.parse(e.finish_at) - now.getTime() - e.total_seconds * 1000) < 1000);
    assert.equal(e.per_config.length, 2);
    const [short, long] = e.per_config;
    assert.ok(long!.run_seconds > short!.run_seconds, 'more tokens take longer');
    // 4 runs interleaved over 2 cycles: 2 config gaps + 1 cycle gap are included, and the study's own overhead.
    const runs = 2 * (short!.run_seconds + long!.run_seconds);
    assert.ok(Math.abs(e.total_seconds - (runs + 2 * 10 + 60 + STUDY_OVERHEAD_SECONDS)) <= 1);
    assert.equal(e.source, 'heuristic');
    assert.deepEqual(e.runs, { expected: 4, low: 4, high: 4 });
  });

  it('is a pure function of (plan, history): same inputs, same estimate; history overrides the heuristic', async () => {
    const plan = await planOf(yaml);
    const env = { now, gpuFreeMemoryBytes: null, gpuFreeMemoryReason: 'test', modelBytes: () => null };
    const a = estimatePlan(plan, undefined, env);
    const b = estimatePlan(plan, undefined, env);
    assert.deepEqual(a, b);
    const h = plan.configAt(0).config_hash;
    const past = makeRecord({ config_hash: h, phases_s: { startup: 100, baseline: 0, load: 300, warmup: 100, measure: 500 } });
    const withHistory = estimatePlan(plan, { records: [past] }, { ...env, machine: CPU_HERE });
    assert.equal(withHistory.per_config[0]!.run_seconds, 1000);
    assert.equal(withHistory.per_config[0]!.source, 'history');
    assert.match(withHistory.per_config[0]!.match!, /same config on this machine \(1 run\)/);
    // the other config (256 tokens, not 16) falls back to the same model with a wider range
    const [exact, near] = withHistory.per_config;
    assert.match(near!.match!, /same model/);
    assert.ok(near!.high_seconds / near!.low_seconds > exact!.high_seconds / exact!.low_seconds);
    assert.equal(withHistory.source, 'history');
    // another machine's history is not used
    const elsewhere = estimatePlan(plan, { records: [{ ...past, machine: H100 }] }, { ...env, machine: CPU_HERE });
    assert.equal(elsewhere.source, 'heuristic');
    assert.deepEqual(elsewhere.per_config.map((c) => c.run_seconds), estimatePlan(plan, undefined, { ...env, machine: CPU_HERE }).per_config.map((c) => c.run_seconds));
    assert.deepEqual(withHistory, estimatePlan(plan, { records: [past] }, { ...env, machine: CPU_HERE }));
  });

  it('memory fit is unknown without free memory, and judged against it when given', async () => {
    const unknown = await planOf(yaml);
    assert.ok(unknown.estimate.per_config.every((c) => c.memory_fit === 'unknown'));
    const fits = await planOf(yaml, { gpuFreeMemoryBytes: 80 * 2 ** 30 });
    assert.ok(fits.estimate.per_config.every((c) => c.memory_fit === 'fits'));
    const tooSmall = await planOf(yaml, { gpuFreeMemoryBytes: 100 * 2 ** 20 });
    assert.ok(tooSmall.estimate.per_config.every((c) => c.memory_fit === 'wont_fit'));
    assert.ok(tooSmall.warnings.some((w) => w.includes('not fit')));
  });

  it('reads the model file size when the file is readable', async () => {
    await withStudy({}, async (dir) => {
      const model = join(dir, 'm.gguf');
      writeFileSync(model, Buffer.alloc(4096));
      writeFileSync(join(dir, 'study.yaml'), `backend: llamacpp\nmodel: ./m.gguf\nllamacpp:\n  gpu_layers: max\n`);
      const plan = await planStudy(join(dir, 'study.yaml'), { gpuFreeMemoryBytes: 8 * 2 ** 30, now });
      const c = plan.estimate.per_config[0]!;
      assert.ok(c.memory_need_bytes !== null && c.memory_need_bytes > 4096);
      assert.equal(c.memory_fit, 'fits');
    });
  });

  it('the default run timeout grows with the model size and covers the pessimistic estimate', async () => {
    const plan = await planOf(yaml);
    const config = plan.configAt(1).config;
    const small = defaultRunTimeoutSeconds(config, 1e8);
    const big = defaultRunTimeoutSeconds(config, 1.4e11);
    assert.ok(big > small, `${big} > ${small}`);
    assert.ok(small >= runDuration(config, 1e8).high_seconds);
    assert.ok(small >= 300);
  });

  it('memory for a remote endpoint is not planned here', () => {
    const m = memoryEstimate(
      { backend: 'openai', model: 'x', precision: 'auto', n: 1, max_new_tokens: 1, batch_size: 1 } as never,
      null,
      { gpuFreeMemoryBytes: 1e10, gpuFreeMemoryReason: '' },
    );
    assert.equal(m.memory_fit, 'unknown');
  });

  it('the NVML hook says why it is unknown', () => {
    const free = gpuFreeMemoryBytes();
    assert.equal(free.bytes, null);
    assert.match(free.reason, /NVML/);
  });
});
