import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { z } from 'zod';
import { backendSpecs, getBackendSpec, registerBackendSpec, unregisterBackendSpec } from '../../src/backends/registry.ts';
import { planStudy } from '../../src/study/plan.ts';
import { DEFAULT_BASELINE, DEFAULT_ENERGY, DEFAULT_WARMUP } from '../../src/study/schema.ts';
import type { ExperimentConfig } from '../../src/study/types.ts';
import { withStudy } from './study-helpers.ts';

function configFor(backend: string, over: Partial<ExperimentConfig> = {}, params: Record<string, unknown> = {}): ExperimentConfig {
  const spec = getBackendSpec(backend)!;
  return {
    model: 'org/model',
    backend,
    precision: 'auto',
    n: 10,
    max_new_tokens: 64,
    batch_size: 1,
    dataset: { kind: 'builtin', name: 'default' },
    seed: 42,
    warmup: DEFAULT_WARMUP,
    baseline: DEFAULT_BASELINE,
    energy: DEFAULT_ENERGY,
    ...over,
    params: spec.params.parse(params) as Record<string, unknown>,
  };
}

describe('backend registry', () => {
  it('registers every backend ARCHITECTURE.md names', () => {
    const names = backendSpecs().map((s) => s.name);
    for (const b of ['llamacpp', 'vllm', 'sglang', 'trtllm', 'llama-server', 'openai', 'command']) assert.ok(names.includes(b), b);
    assert.equal(getBackendSpec('nope'), undefined);
  });

  for (const spec of backendSpecs()) {
    it(`${spec.name}: strict params with defaults, precisions, heuristics`, () => {
      assert.ok(spec.precisions.length > 0);
      assert.throws(() => spec.params.parse({ definitely_not_a_flag: 1 }));
      assert.ok(spec.description.length > 10);
    });
  }

  it('a new backend is one registration away: the grammar needs no change', async () => {
    registerBackendSpec({
      name: 'fakeengine',
      description: 'a test backend registered at runtime',
      params: z.object({ knob: z.number().int().default(1) }).strict(),
      precisions: ['auto'],
      invalidReasons: (c) => ((c.params.knob as number) > 2 ? ['fakeengine.knob above 2'] : []),
      estimateTokensPerSecond: () => 10,
      estimateLoadSeconds: () => 1,
      memory: () => ({ kind: 'weights' }),
      doctor: async () => ({ name: 'fakeengine', status: 'ok', detail: 'test' }),
      loadBackend: () => Promise.reject(new Error('fakeengine has no child side')),
    });
    try {
      const plan = await withStudy({ 'study.yaml': 'model: m\nsweep:\n  fakeengine.knob: [1, 2, 3]\n' }, (dir) =>
        planStudy(join(dir, 'study.yaml'), { gpuFreeMemoryBytes: null }),
      );
      assert.equal(plan.config_count, 2);
      assert.deepEqual(plan.skipped.map((s) => s.reasons), [['fakeengine.knob above 2']]);
    } finally {
      unregisterBackendSpec('fakeengine');
    }
  });
});

describe('valid combinations per backend', () => {
  const table: Array<{ name: string; config: ExperimentConfig; expect: RegExp | null }> = [
    { name: 'vllm default', config: configFor('vllm'), expect: null },
    { name: 'vllm batch above max_num_seqs', config: configFor('vllm', { batch_size: 64 }, { max_num_seqs: 32 }), expect: /max_num_seqs 32/ },
    { name: 'vllm max_model_len too short', config: configFor('vllm', { max_new_tokens: 512 }, { max_model_len: 256 }), expect: /max_model_len 256/ },
    { name: 'vllm fp8 vs awq', config: configFor('vllm', { precision: 'fp8' }, { quantization: 'awq' }), expect: /conflicts with vllm.quantization awq/ },
    { name: 'vllm cannot load the builtin', config: configFor('vllm', { model: 'builtin:tiny-random' }), expect: /cannot load it/ },
    { name: 'sglang above max_running_requests', config: configFor('sglang', { batch_size: 9 }, { max_running_requests: 8 }), expect: /max_running_requests 8/ },
    { name: 'trtllm int4 on pytorch backend', config: configFor('trtllm', { precision: 'int4' }), expect: /pre-quantized/ },
    { name: 'trtllm above max_batch_size', config: configFor('trtllm', { batch_size: 16 }, { max_batch_size: 8 }), expect: /max_batch_size 8/ },
    { name: 'llama-server quantized V cache needs flash attention', config: configFor('llama-server', { model: 'm.gguf' }, { cache_type_v: 'q8_0', flash_attn: 'off' }), expect: /requires llama-server.flash_attn/ },
    { name: 'llama-server slots split the context', config: configFor('llama-server', { model: 'm.gguf', batch_size: 64, max_new_tokens: 128 }, { ctx_size: 4096 }), expect: /split over 64 slots/ },
    { name: 'llama-server default', config: configFor('llama-server', { model: 'm.gguf' }), expect: null },
    { name: 'llamacpp needs GGUF', config: configFor('llamacpp'), expect: /GGUF/ },
    { name: 'llamacpp builtin on CPU', config: configFor('llamacpp', { model: 'builtin:tiny-random' }, { gpu: false, gpu_layers: 0 }), expect: null },
    { name: 'llamacpp CPU with GPU layers', config: configFor('llamacpp', { model: 'builtin:tiny-random' }, { gpu: false, gpu_layers: 10 }), expect: /CPU only/ },
    { name: 'command unknown placeholder', config: configFor('command', {}, { argv: ['run', '{modle}'] }), expect: /unknown placeholder \{modle\}/ },
    { name: 'command known placeholders', config: configFor('command', {}, { argv: ['run', '--model={model}', '{records_file}'] }), expect: null },
    { name: 'openai', config: configFor('openai', {}, { base_url: 'http://localhost:8000/v1' }), expect: null },
  ];
  for (const row of table) {
    it(row.name, () => {
      const reasons = getBackendSpec(row.config.backend)!.invalidReasons(row.config);
      if (row.expect === null) assert.deepEqual(reasons, []);
      else assert.ok(reasons.some((r) => row.expect!.test(r)), `reasons: ${JSON.stringify(reasons)}`);
    });
  }

  it('every conflicting field is reported, not the first', () => {
    const c = configFor('vllm', { batch_size: 64, max_new_tokens: 512, model: 'builtin:tiny-random' }, { max_num_seqs: 8, max_model_len: 256 });
    assert.equal(getBackendSpec('vllm')!.invalidReasons(c).length, 3);
  });
});

after(() => {
  assert.equal(getBackendSpec('fakeengine'), undefined);
});
