// The pytorch spec: params, valid combinations, and the grammar planning a pytorch study with it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBackendSpec } from '../../src/backends/registry.ts';
import { pytorchSpec } from '../../src/backends/specs/pytorch.ts';
import { planStudy } from '../../src/study/plan.ts';
import { tinyConfig } from './helpers.ts';
import type { ExperimentConfig } from '../../src/study/types.ts';

function config(over: Partial<ExperimentConfig>, params: Record<string, unknown> = {}): ExperimentConfig {
  return { ...tinyConfig(over), params: pytorchSpec.params.parse(params) as Record<string, unknown> };
}

describe('pytorch spec', () => {
  test('registered under "pytorch"', () => {
    assert.equal(getBackendSpec('pytorch'), pytorchSpec);
  });

  test('params: defaults applied, unknown keys and bad values rejected', () => {
    assert.deepEqual(pytorchSpec.params.parse({}), {
      python: null,
      batch_size: null,
      attn_implementation: null,
      torch_compile: false,
      num_threads: null,
      device_map: 'auto',
    });
    for (const bad of [{ threads: 2 }, { device_map: 'gpu0' }, { attn_implementation: 'flash' }, { batch_size: 0 }, { num_threads: 1.5 }]) {
      assert.throws(() => pytorchSpec.params.parse(bad), Error, JSON.stringify(bad));
    }
    assert.equal(pytorchSpec.params.parse({ device_map: 'cuda:1' }).device_map, 'cuda:1');
  });

  const table: Array<[string, Partial<ExperimentConfig>, Record<string, unknown>, RegExp[]]> = [
    ['tiny-torch fp32', {}, {}, []],
    ['tiny-torch with options', { model: 'builtin:tiny-torch@hidden=1024,layers=24,heads=16', precision: 'bf16' }, {}, []],
    ['HF id, int8', { model: 'org/model', precision: 'int8' }, {}, []],
    ['HF id, bf16, flash_attention_2, compile', { model: 'org/model', precision: 'bf16' }, { attn_implementation: 'flash_attention_2', torch_compile: true }, []],
    ['llamacpp builtin', { model: 'builtin:tiny-random' }, {}, [/not a pytorch builtin/]],
    ['a GGUF file', { model: '/m/q.gguf' }, {}, [/GGUF file/]],
    ['int4 on tiny-torch', { precision: 'int4' }, {}, [/builtin:tiny-torch runs in fp32, fp16 or bf16/]],
    ['int8 on the CPU', { model: 'org/model', precision: 'int8' }, { device_map: 'cpu' }, [/needs a CUDA device, but pytorch.device_map is cpu/]],
    ['flash_attention_2 in fp32 on tiny-torch on the CPU', {}, { attn_implementation: 'flash_attention_2', device_map: 'cpu' },
      [/fp16 or bf16 only, not precision fp32/, /eager or sdpa, not flash_attention_2/, /flash_attention_2 needs a CUDA device/]],
    ['tiny-torch split across devices', {}, { device_map: 'balanced' }, [/runs on one device/]],
    ['HF model split across devices', { model: 'org/model' }, { device_map: 'balanced' }, []],
    ['pytorch.batch_size overriding batch_size 1', {}, { batch_size: 8 }, []],
    ['pytorch.batch_size against batch_size 4', { batch_size: 4 }, { batch_size: 8 }, [/pytorch.batch_size 8 conflicts with batch_size 4/]],
  ];
  for (const [name, over, params, expected] of table) {
    test(`combination: ${name}`, () => {
      const reasons = pytorchSpec.invalidReasons(config(over, params));
      assert.equal(reasons.length, expected.length, reasons.join(' | '));
      expected.forEach((re, i) => assert.match(reasons[i]!, re));
    });
  }

  test('estimates: positive, larger batches faster, compile and bigger checkpoints load longer', () => {
    const one = pytorchSpec.estimateTokensPerSecond(config({ model: 'org/model' }));
    const eight = pytorchSpec.estimateTokensPerSecond(config({ model: 'org/model', batch_size: 8 }));
    assert.ok(one > 0 && eight > one);
    assert.ok(pytorchSpec.estimateTokensPerSecond(config({ model: 'org/model' }, { batch_size: 8 })) > one, 'pytorch.batch_size counts');
    const plain = pytorchSpec.estimateLoadSeconds(config({ model: 'org/model' }), 1e9);
    assert.ok(pytorchSpec.estimateLoadSeconds(config({ model: 'org/model' }), 16e9) > plain);
    assert.ok(pytorchSpec.estimateLoadSeconds(config({ model: 'org/model' }, { torch_compile: true }), 1e9) > plain);
  });
});

describe('pytorch in a study', () => {
  test('scoped keys sweep only the pytorch grid; invalid combinations are skipped with their reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llem-pytorch-study-'));
    try {
      const path = join(dir, 'study.yaml');
      writeFileSync(
        path,
        [
          'name: pytorch-tiny',
          'backend: pytorch',
          'model: builtin:tiny-torch',
          'n: 4',
          'max_new_tokens: 8',
          'pytorch:',
          '  python: /usr/bin/python3',
          '  num_threads: 1',
          'sweep:',
          '  precision: [fp32, int8]',
          '  pytorch.attn_implementation: [eager, sdpa]',
          '',
        ].join('\n'),
      );
      const plan = await planStudy(path, { gpuFreeMemoryBytes: null });
      assert.equal(plan.config_count, 2, 'fp32 × {eager, sdpa}');
      const configs = [0, 1].map((i) => plan.configAt(i).config);
      assert.deepEqual(configs.map((c) => c.params.attn_implementation).sort(), ['eager', 'sdpa']);
      for (const c of configs) {
        assert.equal(c.precision, 'fp32');
        assert.equal(c.params.python, '/usr/bin/python3');
        assert.equal(c.params.device_map, 'auto', 'defaults applied');
      }
      assert.equal(plan.skipped.length, 2);
      for (const s of plan.skipped) assert.match(s.reasons.join(' '), /precision int8 goes through bitsandbytes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
