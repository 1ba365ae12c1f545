// The whole measuring child (src/worker/main.ts, spawned as the runner does) running the pytorch
// backend on builtin:tiny-torch under the fake NVML: energy and energy per token as hand-computed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runResultSchema } from '../../src/results/schema.ts';
import { buildRunPrompts } from '../../src/worker/workload.ts';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, writeFakeScript } from '../native/fake.ts';
import { baseConfig, makeRun, runWorkerChild } from '../worker/helpers.ts';
import { TEST_PYTHON, isAlive } from './helpers.ts';

test('the whole child on pytorch/tiny-torch under the fake NVML: 250 W counter energy, per token, versions', { timeout: 600_000 }, async () => {
  await ensureAddonBuilt();
  const libs = await buildFakeLibs();
  const config = baseConfig({
    backend: 'pytorch',
    model: 'builtin:tiny-torch',
    precision: 'fp32',
    n: 4,
    max_new_tokens: 8,
    batch_size: 2,
    warmup: { cv_threshold: 0.5, window: 2, min_prompts: 1, max_prompts: 2 },
    baseline: { enabled: true, duration_seconds: 0.5, reuse_seconds: 0 },
    params: { python: TEST_PYTHON, num_threads: 1, batch_size: null, attn_implementation: null, torch_compile: false, device_map: 'auto' },
  });
  const run = makeRun(config);
  try {
    const script = writeFakeScript(run.root, { devices: [{ power: [[0, 250_000]], temp: [[0, 45]] }] });
    const pythonPids: number[] = [];
    const r = await runWorkerChild(run.specPath, {
      env: { ...fakeGpuEnv(libs, script.path), CUDA_VISIBLE_DEVICES: '' },
    });
    // The worker's log lines reach the runner through the child's stderr (worker.log).
    for (const found of r.stderr.matchAll(/pytorch: Python pid (\d+):/g)) pythonPids.push(Number(found[1]));
    assert.equal(r.exitCode, 0, r.stderr);
    const result = runResultSchema.parse(JSON.parse(readFileSync(run.spec.result_path, 'utf8')));
    const m = result.metrics;
    // Hand-computed: no EOS in tiny-torch's default weights, so 4 requests × 8 tokens; the fake's
    // counter is the exact integral of 250 W, so energy = 250 W × window and the baseline is 250 W.
    assert.equal(m.requests, 4);
    assert.equal(m.output_tokens, 4 * 8);
    assert.ok(m.energy_j !== null, m.energy_unavailable_reason ?? '');
    assert.ok(Math.abs(m.energy_j - 250 * m.window_s) <= 0.01 * 250 * m.window_s + 0.002, `energy ${m.energy_j} J vs 250 W × ${m.window_s} s`);
    assert.equal(m.energy_per_output_token_j, m.energy_j / 32);
    assert.equal(m.energy_per_request_j, m.energy_j / 4);
    // Counter energy ÷ duration: whole mJ over a 0.5 s window, read on other clocks.
    assert.ok(Math.abs(m.baseline_power_w! - 250) < 0.05, `baseline ${m.baseline_power_w}`);
    assert.ok(Math.abs(m.energy_adjusted_j! - (m.energy_j - m.baseline_power_w! * m.window_s)) < 1e-9);
    // Same-time batches of 2: TTFT, ITL and TPOT exist and are non-negative.
    assert.ok((m.ttft_ms.p50 ?? -1) >= 0 && (m.itl_ms.mean ?? -1) >= 0 && (m.tpot_ms.mean ?? -1) >= 0);
    assert.equal(result.backend.name, 'pytorch');
    assert.match(result.backend.version ?? '', /^\d+\.\d+/);
    assert.equal(result.environment.extra.torch, result.backend.version);
    assert.equal(result.environment.extra['torch.cuda_available'], 'false');
    assert.ok(result.model.builtin);
    assert.ok(result.flags.some((f) => f.code === 'builtin_model'));
    // Prompts: exactly the workload builder's measured prompts for this dataset + seed (what every
    // backend, llamacpp included, is given), in order, each UTF-8 bytes + BOS tokens in.
    const requests = readFileSync(`${run.spec.run_dir}/requests.jsonl`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { prompt_index: number; input_tokens: number });
    const { measured } = await buildRunPrompts(config.dataset, config.seed, config.n, config.warmup.max_prompts);
    assert.deepEqual(requests.map((q) => q.prompt_index), measured.map((p) => p.index));
    assert.deepEqual(requests.map((q) => q.input_tokens), measured.map((p) => Buffer.byteLength(p.text, 'utf8') + 1));
    // No Python left behind: the child's group is gone, and so is any worker.py.
    assert.equal(pythonPids.length, 1, 'one Python per run, announced in the log');
    assert.ok(!isAlive(r.pid));
    assert.ok(!isAlive(pythonPids[0]!), `Python ${pythonPids[0]} outlived the child`);
  } finally {
    run.cleanup();
  }
});
