import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planStudy, confirmationNeeded, FULL_EXPANSION_LIMIT } from '../../src/study/plan.ts';
import { permuteIndex, runPosition } from '../../src/study/order.ts';
import { withStudy, inputError } from './study-helpers.ts';

const TINY = 'model: builtin:tiny-random\n';
const examplesDir = fileURLToPath(new URL('../../examples/', import.meta.url));

function planOf(yaml: string) {
  return withStudy({ 'study.yaml': yaml }, (dir) => planStudy(join(dir, 'study.yaml'), { gpuFreeMemoryBytes: null, now: new Date('2026-01-01T00:00:00Z') }));
}

describe('examples', () => {
  const files = readdirSync(examplesDir).filter((f) => f.endsWith('.yaml'));
  it('has the three examples the README points to', () => {
    for (const f of ['quickstart.yaml', 'batch-size-sweep.yaml', 'multi-backend.yaml']) assert.ok(files.includes(f), f);
  });
  for (const f of files) {
    it(`${f} plans as written`, async () => {
      const plan = await planStudy(join(examplesDir, f), { gpuFreeMemoryBytes: null });
      assert.ok(plan.config_count > 0);
      assert.equal(plan.expansion, 'full');
      const file = plan.toPlanFile();
      assert.equal(file.order.length, plan.run_count);
      assert.equal(file.configs.length, plan.config_count);
    });
  }
  it('quickstart is the small CPU study the README promises', async () => {
    const plan = await planStudy(join(examplesDir, 'quickstart.yaml'), { gpuFreeMemoryBytes: null });
    assert.equal(plan.config_count, 4);
    assert.equal(plan.cycles, 2);
    assert.equal(plan.needs_confirmation, false);
    assert.ok(plan.estimate.high_seconds < 180, `estimate high ${plan.estimate.high_seconds}s`);
    const c = plan.configAt(0).config;
    assert.equal(c.backend, 'llamacpp');
    assert.equal(c.model, 'builtin:tiny-random');
    assert.ok((c.params.threads as number) <= 2);
  });
  it('multi-backend keeps scoped keys in their own backend', async () => {
    const plan = await planStudy(join(examplesDir, 'multi-backend.yaml'), { gpuFreeMemoryBytes: null });
    for (let i = 0; i < plan.config_count; i++) {
      const c = plan.configAt(i).config;
      if (c.backend === 'llamacpp') assert.equal('gpu_memory_utilization' in c.params, false);
      else assert.equal('flash_attention' in c.params, false);
    }
    assert.deepEqual(plan.by_backend.map((b) => b.backend).sort(), ['llamacpp', 'vllm']);
  });
});

describe('cycle order', () => {
  it('sequential is A A B B and interleaved is A B A B', () => {
    const seq = Array.from({ length: 6 }, (_, k) => runPosition(k, 3, 2, 'sequential', 1));
    assert.deepEqual(seq.map((r) => `${r.configIndex}${r.cycle}`), ['01', '02', '11', '12', '21', '22']);
    const inter = Array.from({ length: 6 }, (_, k) => runPosition(k, 3, 2, 'interleaved', 1));
    assert.deepEqual(inter.map((r) => `${r.configIndex}${r.cycle}`), ['01', '11', '21', '02', '12', '22']);
  });

  for (const size of [1, 2, 3, 7, 16, 17, 100, 1000, 4097]) {
    it(`shuffled: each cycle is a permutation of ${size} configs, deterministic per seed`, () => {
      for (const cycle of [1, 2, 3]) {
        const perm = Array.from({ length: size }, (_, i) => permuteIndex(i, size, 12345, cycle));
        assert.deepEqual([...perm].sort((a, b) => a - b), Array.from({ length: size }, (_, i) => i));
        assert.deepEqual(Array.from({ length: size }, (_, i) => permuteIndex(i, size, 12345, cycle)), perm);
      }
    });
  }

  it('shuffled: cycles and seeds give different orders', () => {
    const order = (seed: number, cycle: number) => Array.from({ length: 50 }, (_, i) => permuteIndex(i, 50, seed, cycle)).join(',');
    assert.notEqual(order(1, 1), order(1, 2));
    assert.notEqual(order(1, 1), order(2, 1));
    assert.notEqual(order(1, 1), Array.from({ length: 50 }, (_, i) => i).join(','));
  });

  it('the shuffle seed is derived from the study hash when not given, recorded, and explicit seeds are used', async () => {
    const yaml = `backend: llamacpp\n${TINY}sweep:\n  batch_size: [1, 2, 3, 4, 5, 6, 7, 8]\nexecution:\n  n_cycles: 3\n  cycle_order: shuffled\n`;
    const a = await planOf(yaml);
    assert.equal(a.cycle_seed, parseInt(a.study_hash.slice(0, 8), 16));
    assert.equal(a.toPlanFile().cycle_seed, a.cycle_seed);
    const b = await planOf(yaml.replace('cycle_order: shuffled', 'cycle_order: shuffled\n  shuffle_seed: 99'));
    assert.equal(b.cycle_seed, 99);
    assert.equal(b.study_hash, a.study_hash, 'execution settings are not part of the study hash');
    const runs = b.toPlanFile().order;
    for (let c = 1; c <= 3; c++) {
      const hashes = runs.filter((r) => r.cycle === c).map((r) => r.config_hash).sort();
      assert.deepEqual(hashes, [...b.toPlanFile().configs.map((x) => x.config_hash)].sort());
    }
    assert.deepEqual(runs.map((r) => r.index), runs.map((_, i) => i));
  });

  it('adding cycles keeps the order of the existing ones (top-up)', async () => {
    const yaml = `backend: llamacpp\n${TINY}sweep:\n  batch_size: [1, 2, 3, 4, 5]\nexecution:\n  n_cycles: N\n`;
    const two = (await planOf(yaml.replace('N', '2'))).toPlanFile().order;
    const four = (await planOf(yaml.replace('N', '4'))).toPlanFile().order;
    assert.deepEqual(four.slice(0, two.length), two);
  });
});

describe('hash stability', () => {
  const base = `backend: llamacpp\n${TINY}n: 8\nbatch_size: 2\nwarmup:\n  window: 4\n  min_prompts: 1\n`;

  it('key order and written-out defaults do not change a hash', async () => {
    const a = await planOf(base);
    const reordered = await planOf(`warmup:\n  min_prompts: 1\n  window: 4\nbatch_size: 2\nn: 8\n${TINY}backend: llamacpp\n`);
    const withDefaults = await planOf(`${base}precision: auto\nseed: 42\nmax_new_tokens: 128\nllamacpp:\n  threads: 2\n  flash_attention: false\nenergy:\n  sample_interval_ms: 100\n`);
    assert.equal(reordered.configAt(0).config_hash, a.configAt(0).config_hash);
    assert.equal(withDefaults.configAt(0).config_hash, a.configAt(0).config_hash);
    assert.equal(withDefaults.study_hash, a.study_hash);
  });

  it('the name, execution settings and config order do not change the study hash', async () => {
    const a = await planOf(`${base}sweep:\n  max_new_tokens: [8, 16]\n`);
    const b = await planOf(`name: other\n${base}sweep:\n  max_new_tokens: [16, 8]\nexecution:\n  n_cycles: 5\n  config_gap_seconds: 0\n`);
    assert.equal(b.study_hash, a.study_hash);
  });

  const measured: Array<[string, string]> = [
    ['n', 'n: 9\n'],
    ['batch_size', 'batch_size: 3\n'],
    ['max_new_tokens', 'max_new_tokens: 64\n'],
    ['precision', 'precision: f16\n'],
    ['seed', 'seed: 1\n'],
    ['dataset', 'dataset: synthetic:256\n'],
    ['warmup.cv_threshold', 'warmup:\n  cv_threshold: 0.1\n'],
    ['baseline.duration_seconds', 'baseline:\n  duration_seconds: 5\n'],
    ['energy.sample_interval_ms', 'energy:\n  sample_interval_ms: 50\n'],
    ['llamacpp.threads', 'llamacpp:\n  threads: 1\n'],
    ['model', 'model: builtin:other\n'],
  ];
  for (const [field, overlay] of measured) {
    it(`changing ${field} changes the config and study hash`, async () => {
      const a = await planOf(base);
      const yaml = field === 'model' ? base.replace(TINY, overlay) : base.split('\n').filter((l) => !l.startsWith(`${field}:`)).join('\n') + overlay;
      const b = await planOf(field.startsWith('warmup') ? base.replace('warmup:\n', 'warmup:\n  cv_threshold: 0.1\n') : yaml);
      assert.notEqual(b.configAt(0).config_hash, a.configAt(0).config_hash);
      assert.notEqual(b.study_hash, a.study_hash);
    });
  }

  it('config hashes are 16 hex characters', async () => {
    const a = await planOf(base);
    assert.match(a.configAt(0).config_hash, /^[0-9a-f]{16}$/);
    assert.match(a.study_hash, /^[0-9a-f]{16}$/);
  });
});

describe('scale', () => {
  it('a 10^7-run grid is planned without materialising it, and needs confirmation', async () => {
    const values = (n: number) => `[${Array.from({ length: n }, (_, i) => i + 1).join(', ')}]`;
    const yaml = `backend: llamacpp\n${TINY}sweep:\n  n: ${values(100)}\n  max_new_tokens: ${values(100)}\n  seed: ${values(10)}\n  batch_size: ${values(10)}\nexecution:\n  n_cycles: 10\n`;
    const before = process.memoryUsage().heapUsed;
    const plan = await planOf(yaml);
    assert.equal(plan.run_count, 10 ** 7);
    assert.equal(plan.expansion, 'lazy');
    assert.ok(plan.config_count > FULL_EXPANSION_LIMIT);
    assert.equal(plan.needs_confirmation, true);
    assert.equal(confirmationNeeded(plan), true);
    assert.ok(plan.warnings.some((w) => w.includes('upper bounds')));
    const last = plan.runAt(10 ** 7 - 1);
    assert.equal(last.index, 10 ** 7 - 1);
    assert.match(last.config_hash, /^[0-9a-f]{16}$/);
    assert.equal(plan.configAt(10 ** 6 - 1).config.batch_size, 10);
    assert.ok(plan.estimate.total_seconds > 0);
    assert.ok(process.memoryUsage().heapUsed - before < 200 * 2 ** 20, 'nothing proportional to the run count is kept');
    assert.throws(() => plan.toPlanFile(), /split the sweep/);
  });

  it('max_runs_without_confirmation decides the confirmation', async () => {
    const yaml = `backend: llamacpp\n${TINY}sweep:\n  batch_size: [1, 2, 3]\nexecution:\n  n_cycles: 2\n  max_runs_without_confirmation: M\n`;
    assert.equal((await planOf(yaml.replace('M', '6'))).needs_confirmation, false);
    assert.equal((await planOf(yaml.replace('M', '5'))).needs_confirmation, true);
  });

  it('configAt and runAt reject out-of-range indices', async () => {
    const plan = await planOf(`backend: llamacpp\n${TINY}`);
    assert.throws(() => plan.configAt(1), RangeError);
    assert.throws(() => plan.runAt(plan.run_count), RangeError);
  });
});

describe('plan file', () => {
  it('has the contract shape', async () => {
    const plan = await planOf(`name: demo\nbackend: llamacpp\n${TINY}sweep:\n  batch_size: [1, 2]\n`);
    const f = plan.toPlanFile();
    assert.equal(f.schema_version, 1);
    assert.equal(f.study_name, 'demo');
    assert.equal(f.study_hash, plan.study_hash);
    assert.equal(f.created_at, '2026-01-01T00:00:00.000Z');
    assert.equal(f.order.length, 6);
    assert.equal(f.estimate.per_config.length, 2);
    assert.deepEqual(JSON.parse(JSON.stringify(f)), f, 'plain JSON');
  });

  it('a study without a name takes the file name', async () => {
    const plan = await planOf(`backend: llamacpp\n${TINY}`);
    assert.equal(plan.study_name, 'study');
  });

  it('all-invalid plans never reach the plan file', async () => {
    await inputError(planOf(`backend: vllm\n${TINY}`));
  });
});

describe('canonical JSON', () => {
  it('configs built by the grammar serialise canonically, so the fast hash equals configHash', async () => {
    const { canonicalJson, configHash, configHashOfSorted } = await import('../../src/study/hash.ts');
    const plan = await planOf(
      `backend: [llamacpp, openai, command]\nmodel: m.gguf\ndataset: {path: d.jsonl, kind: jsonl}\nopenai:\n  base_url: http://localhost:1/v1\n  extra_body: {zeta: 1, alpha: {b: 2, a: 1}}\ncommand:\n  argv: [x, "{model}"]\n  env: {Z: "1", A: "2"}\nwarmup:\n  window: 3\n  cv_threshold: 0.1\n`,
    );
    assert.equal(plan.config_count, 3);
    for (let i = 0; i < plan.config_count; i++) {
      const c = plan.configAt(i);
      assert.equal(JSON.stringify(c.config), canonicalJson(c.config));
      assert.equal(configHashOfSorted(c.config), configHash(c.config));
      assert.equal(c.config_hash, configHash(c.config));
    }
    const swept = await planOf(`backend: llamacpp\nsweep:\n  model: [a.gguf, b.gguf]\n  batch_size: [1, 2]\n  warmup.window: [2, 3]\n  dataset: [builtin, synthetic:64]\n  llamacpp.threads: [1, 2]\n`);
    assert.equal(swept.config_count, 32);
    for (let i = 0; i < swept.config_count; i++) {
      const c = swept.configAt(i);
      assert.equal(JSON.stringify(c.config), canonicalJson(c.config));
      assert.equal(c.config_hash, configHash(c.config));
    }
    assert.equal(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }], u: undefined }), '{"a":[{"c":2,"d":1}],"b":1}');
  });
});

describe('parallel execution', () => {
  it('warns that per_gpu runs share the machine, and says nothing when off', async () => {
    const base = 'name: p\nbackend: llamacpp\nmodel: builtin:tiny-random\n';
    const par = await planOf(base + 'execution:\n  parallel: per_gpu\n');
    assert.ok(par.warnings.some((w) => /per_gpu/.test(w) && /heat/.test(w)), par.warnings.join('\n'));
    const seq = await planOf(base);
    assert.ok(!seq.warnings.some((w) => /per_gpu/.test(w)));
  });
});
