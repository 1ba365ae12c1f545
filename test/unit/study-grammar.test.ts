import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { planStudy, type StudyPlan } from '../../src/study/plan.ts';
import type { PlannedConfig } from '../../src/study/types.ts';
import { withStudy, inputError } from './study-helpers.ts';

const TINY = 'model: builtin:tiny-random\n';

function configs(plan: StudyPlan): PlannedConfig[] {
  return Array.from({ length: plan.config_count }, (_, i) => plan.configAt(i));
}

async function planOf(yaml: string, extra: Record<string, string> = {}): Promise<StudyPlan> {
  return withStudy({ 'study.yaml': yaml, ...extra }, (dir) => planStudy(join(dir, 'study.yaml'), { gpuFreeMemoryBytes: null }));
}

describe('sweep grammar', () => {
  it('a dotted nested field with a fixed backend sweeps that field and keeps its siblings', async () => {
    const plan = await planOf(`backend: llamacpp\n${TINY}warmup:\n  min_prompts: 2\nsweep:\n  warmup.max_prompts: [5, 10]\n`);
    const cs = configs(plan);
    assert.equal(cs.length, 2);
    assert.deepEqual(cs.map((c) => c.config.warmup.max_prompts), [5, 10]);
    for (const c of cs) {
      assert.equal(c.config.warmup.min_prompts, 2);
      assert.equal(c.config.warmup.cv_threshold, 0.05);
      assert.equal(c.config.backend, 'llamacpp');
      assert.equal('warmup' in c.config.params, false);
    }
  });

  it('two backends with a scoped key each do not cross-contaminate', async () => {
    const plan = await planOf(
      `backend: [llamacpp, llama-server]\n${TINY}sweep:\n  batch_size: [1, 2]\n  llamacpp.threads: [1, 2, 3]\n  llama-server.parallel: [4, 8]\n`,
    );
    const cs = configs(plan);
    const lc = cs.filter((c) => c.config.backend === 'llamacpp');
    const ls = cs.filter((c) => c.config.backend === 'llama-server');
    assert.equal(lc.length, 2 * 3);
    assert.equal(ls.length, 2 * 2);
    assert.deepEqual([...new Set(lc.map((c) => c.config.params.threads))].sort(), [1, 2, 3]);
    assert.ok(lc.every((c) => !('parallel' in c.config.params)));
    assert.deepEqual([...new Set(ls.map((c) => c.config.params.parallel))].sort(), [4, 8]);
    assert.ok(ls.every((c) => c.config.params.threads === null), 'llama-server threads stays its own default');
    assert.deepEqual(plan.by_backend.map((b) => [b.backend, b.configs]), [['llamacpp', 6], ['llama-server', 4]]);
  });

  it('backends can come from scoped keys alone', async () => {
    const plan = await planOf(`${TINY}sweep:\n  llamacpp.threads: [1, 2]\n`);
    assert.equal(plan.config_count, 2);
    assert.ok(configs(plan).every((c) => c.config.backend === 'llamacpp'));
  });

  it('the nested form `<backend>: {param: [...]}` equals the dotted form', async () => {
    const dotted = await planOf(`backend: llamacpp\n${TINY}sweep:\n  llamacpp.threads: [1, 2]\n`);
    const nested = await planOf(`backend: llamacpp\n${TINY}sweep:\n  llamacpp:\n    threads: [1, 2]\n`);
    assert.equal(nested.study_hash, dotted.study_hash);
  });

  it('identical configs are merged with a warning, not a crash', async () => {
    const plan = await planOf(
      `backend: llamacpp\n${TINY}sweep:\n  batch_size: [1, 2, 1]\nexperiments:\n  - batch_size: 2\n`,
    );
    assert.equal(plan.config_count, 2);
    assert.equal(plan.warnings.filter((w) => w.includes('identical')).length, 2);
    assert.equal(new Set(configs(plan).map((c) => c.config_hash)).size, 2);
  });

  it('explicit entries deep-merge nested sections over the top level', async () => {
    const plan = await planOf(
      `backend: llamacpp\n${TINY}warmup:\n  min_prompts: 2\n  max_prompts: 10\nllamacpp:\n  threads: 1\n` +
        `experiments:\n  - warmup:\n      max_prompts: 20\n    llamacpp:\n      flash_attention: true\n`,
    );
    assert.equal(plan.config_count, 1, 'with experiments and no sweep the top level is only defaults');
    const c = plan.configAt(0).config;
    assert.equal(c.warmup.min_prompts, 2);
    assert.equal(c.warmup.max_prompts, 20);
    assert.equal(c.params.threads, 1);
    assert.equal(c.params.flash_attention, true);
  });

  it('explicit entries are added after the grid', async () => {
    const plan = await planOf(`backend: llamacpp\n${TINY}sweep:\n  batch_size: [1, 2]\nexperiments:\n  - batch_size: 7\n`);
    assert.deepEqual(configs(plan).map((c) => c.config.batch_size), [1, 2, 7]);
  });

  it('a base deep-merges nested sections; the study file wins', async () => {
    const plan = await withStudy(
      {
        'shared/base.yaml': `backend: llamacpp\n${TINY}n: 4\nwarmup:\n  min_prompts: 2\n  max_prompts: 10\nllamacpp:\n  threads: 1\n  flash_attention: true\n`,
        'study.yaml': 'base: shared/base.yaml\nwarmup:\n  max_prompts: 20\nllamacpp:\n  threads: 2\n',
      },
      (dir) => planStudy(join(dir, 'study.yaml'), { gpuFreeMemoryBytes: null }),
    );
    const c = plan.configAt(0).config;
    assert.equal(c.n, 4);
    assert.deepEqual([c.warmup.min_prompts, c.warmup.max_prompts], [2, 20]);
    assert.deepEqual([c.params.threads, c.params.flash_attention], [2, true]);
  });

  it('a chain of bases resolves each path relative to its own file', async () => {
    const plan = await withStudy(
      {
        'a/b/root.yaml': `backend: llamacpp\n${TINY}seed: 7\n`,
        'a/mid.yaml': 'base: b/root.yaml\nn: 3\n',
        'study.yaml': 'base: a/mid.yaml\nmax_new_tokens: 9\n',
      },
      (dir) => planStudy(join(dir, 'study.yaml'), { gpuFreeMemoryBytes: null }),
    );
    const c = plan.configAt(0).config;
    assert.deepEqual([c.seed, c.n, c.max_new_tokens], [7, 3, 9]);
  });

  it('a scalar sweep value is one value', async () => {
    const plan = await planOf(`backend: llamacpp\n${TINY}sweep:\n  batch_size: 4\n  max_new_tokens: [8, 16]\n`);
    assert.deepEqual(configs(plan).map((c) => [c.config.batch_size, c.config.max_new_tokens]), [[4, 8], [4, 16]]);
  });

  it('an empty sweep list is an error at its line, not zero experiments', async () => {
    const err = await inputError(planOf(`backend: llamacpp\n${TINY}sweep:\n  batch_size: []\n`));
    assert.match(err.message, /study\.yaml:4:\d+: sweep\.batch_size: .*empty list/);
  });

  it('a scoped key for a backend not in the study is an error naming it', async () => {
    const err = await inputError(planOf(`backend: llamacpp\n${TINY}sweep:\n  vllm.max_num_seqs: [8, 16]\n`));
    assert.match(err.message, /study\.yaml:4:3: sweep\.vllm\.max_num_seqs: .*"vllm".*not in this study/);
  });

  it('a single-experiment file (no sweep) plans as one config', async () => {
    const plan = await planOf(`backend: llamacpp\n${TINY}batch_size: 2\n`);
    assert.equal(plan.config_count, 1);
    assert.equal(plan.configAt(0).config.batch_size, 2);
    assert.equal(plan.run_count, 3, 'default n_cycles is 3');
  });

  it('a backend list without a sweep gives one config per backend', async () => {
    const plan = await planOf(`backend: [llamacpp, llama-server]\n${TINY}`);
    assert.deepEqual(configs(plan).map((c) => c.config.backend), ['llamacpp', 'llama-server']);
  });

  it('sweep values are type-checked where they are written', async () => {
    const err = await inputError(planOf(`backend: llamacpp\n${TINY}sweep:\n  batch_size: [1, "two"]\n`));
    assert.match(err.message, /study\.yaml:4:\d+: sweep\.batch_size\[1\]: batch_size: expected number/);
  });

  it('relative model and dataset paths resolve against the study file', async () => {
    const plan = await withStudy({ 'sub/study.yaml': 'backend: llamacpp\nmodel: ./m.gguf\ndataset: data/p.jsonl\n' }, (dir) =>
      planStudy(join(dir, 'sub/study.yaml'), { gpuFreeMemoryBytes: null }).then((p) => ({ p, dir })),
    );
    const c = plan.p.configAt(0).config;
    assert.equal(c.model, join(plan.dir, 'sub/m.gguf'));
    assert.deepEqual(c.dataset, { kind: 'jsonl', path: join(plan.dir, 'sub/data/p.jsonl') });
  });
});

describe('invalid combinations', () => {
  const yaml = `backend: llamacpp\n${TINY}max_new_tokens: 60\nsweep:\n  precision: [auto, fp99]\n  llamacpp.context_size: [64, 4096]\n`;

  it('are skipped before anything runs, each with all its reasons, and written to plan.json', async () => {
    const plan = await planOf(yaml);
    assert.equal(plan.config_count, 1);
    assert.equal(plan.skipped.length, 3);
    const both = plan.skipped.find((s) => s.label.includes('fp99') && s.label.includes('64'));
    assert.ok(both, 'the fp99 + context 64 config is skipped');
    assert.equal(both.reasons.length, 2);
    assert.ok(both.reasons.some((r) => r.includes('precision "fp99"')));
    assert.ok(both.reasons.some((r) => r.includes('llamacpp.context_size 64')));
    assert.deepEqual(plan.toPlanFile().skipped, plan.skipped);
    assert.deepEqual(plan.by_backend, [{ backend: 'llamacpp', configs: 1, skipped: 3 }]);
  });

  it('more than half skipped is a warning', async () => {
    const plan = await planOf(yaml);
    assert.ok(plan.warnings.some((w) => w.includes('3 of 4 configs are skipped')));
    const fine = await planOf(`backend: llamacpp\n${TINY}sweep:\n  precision: [auto, fp99, f16]\n`);
    assert.equal(fine.warnings.length, 0);
  });

  it('every config invalid is an error (exit 2) listing the reasons', async () => {
    const err = await inputError(planOf(`backend: llamacpp\n${TINY}sweep:\n  precision: [fp99, int3]\n`));
    assert.match(err.message, /every config is invalid/);
    assert.match(err.message, /precision "fp99"/);
    assert.match(err.message, /precision "int3"/);
  });
});

describe('more grammar forms', () => {
  it('`backend` may be swept; scoped keys still stay with their backend', async () => {
    const plan = await planOf(`${TINY}sweep:\n  backend: [llamacpp, llama-server]\n  llama-server.ubatch_size: [128, 256]\n`);
    assert.deepEqual(plan.by_backend.map((b) => [b.backend, b.configs]), [['llamacpp', 1], ['llama-server', 2]]);
  });

  it('whole backend sections can be swept as alternatives, deep-merged over the top level', async () => {
    const plan = await planOf(`backend: llamacpp\n${TINY}llamacpp:\n  threads: 1\nsweep:\n  llamacpp:\n    - {flash_attention: true}\n    - {use_mmap: false}\n`);
    const cs = configs(plan);
    assert.deepEqual(cs.map((c) => [c.config.params.threads, c.config.params.flash_attention, c.config.params.use_mmap]), [[1, true, true], [1, false, false]]);
  });

  it('with several backends each explicit entry names one', async () => {
    const err = await inputError(planOf(`backend: [llamacpp, llama-server]\n${TINY}experiments:\n  - batch_size: 2\n`));
    assert.match(err.message, /study\.yaml:4:5: experiments\[0\]\.backend: required field is missing/);
  });

  it('the default precision is auto where the backend accepts it, else its first precision', async () => {
    const { registerBackendSpec, unregisterBackendSpec } = await import('../../src/backends/registry.ts');
    const { z } = await import('zod');
    registerBackendSpec({
      name: 'noauto', description: 'test backend without auto precision', params: z.object({}).strict(),
      precisions: ['fp16', 'fp32'], invalidReasons: () => [], estimateTokensPerSecond: () => 1, estimateLoadSeconds: () => 1,
      memory: () => ({ kind: 'weights' }), doctor: async () => ({ name: 'noauto', status: 'ok', detail: 'test' }),
      loadBackend: () => Promise.reject(new Error('noauto has no child side')),
    });
    try {
      const plan = await planOf(`backend: noauto\nmodel: m\n`);
      assert.equal(plan.configAt(0).config.precision, 'fp16');
      assert.equal(plan.skipped.length, 0);
    } finally {
      unregisterBackendSpec('noauto');
    }
    const lc = await planOf(`backend: llamacpp\n${TINY}`);
    assert.equal(lc.configAt(0).config.precision, 'auto');
  });
});
