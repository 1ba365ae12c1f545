// plan.json through its one schema (src/study/plan-schema.ts) and readPlan: what the planner
// writes reads back unchanged (same canonical config, same hash), damage is refused naming the
// file and the field, and plan.json files of earlier versions still read with their defaults.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planStudy } from '../../src/study/plan.ts';
import { configHash } from '../../src/study/hash.ts';
import { writePlan } from '../../src/runner/study-dir.ts';
import { StudyDirError, readPlan } from '../../src/study-dir/read.ts';
import { DEFAULT_VALIDITY } from '../../src/measure/validity.ts';
import { withStudy } from './study-helpers.ts';

function withDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'llem-plan-file-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const STUDY = `name: plan-file
experiments:
  - backend: llamacpp
    model: builtin:tiny-random
    dataset: synthetic:64
    gpu: {power_limit_w: 300}
  - backend: openai
    model: m
    openai: {base_url: "http://127.0.0.1:8000/v1"}
    request_rate: 5
    arrival: gamma(0.5)
    warmup: {max_prompts: 4}
slo: 'ttft_p95_ms<=200'
execution:
  n_cycles: auto
  cooldown: {target_temp_c: 60}
  validity: {failed_requests: true}
`;

/** A plan.json as an early llem wrote it: no validity, no target, no slo, a bare estimate. */
const OLD_PLAN = {
  schema_version: 1,
  study_name: 'old',
  study_hash: '0123456789abcdef',
  source_path: '/studies/old.yaml',
  created_at: '2025-01-01T00:00:00.000Z',
  execution: {
    n_cycles: 2,
    cycle_order: 'sequential',
    shuffle_seed: null,
    config_gap_seconds: 1,
    cycle_gap_seconds: 2,
    cooldown: null,
    experiment_timeout_seconds: null,
    stall_timeout_seconds: 60,
    max_runs_without_confirmation: 100,
    parallel: 'off',
  },
  cycle_seed: 7,
  configs: [
    {
      config_hash: 'aaaaaaaaaaaaaaaa',
      label: 'llamacpp',
      config: {
        backend: 'llamacpp',
        baseline: { duration_seconds: 30, enabled: true, reuse_seconds: 300 },
        batch_size: 1,
        dataset: { kind: 'builtin', name: 'default' },
        energy: { live_interval_ms: 500, rapl: true, sample_interval_ms: 100 },
        max_new_tokens: 128,
        model: 'builtin:tiny-random',
        n: 100,
        params: { n_gpu_layers: 99 },
        precision: 'q8_0',
        seed: 42,
        warmup: { cv_threshold: 0.05, max_prompts: 30, min_prompts: 3, window: 5 },
      },
    },
  ],
  skipped: [],
  order: [
    { index: 0, config_hash: 'aaaaaaaaaaaaaaaa', cycle: 1 },
    { index: 1, config_hash: 'aaaaaaaaaaaaaaaa', cycle: 2 },
  ],
  warnings: [],
  estimate: {
    total_seconds: 100,
    low_seconds: 80,
    high_seconds: 150,
    finish_at: '2025-01-01T00:01:40.000Z',
    per_config: [
      {
        config_hash: 'aaaaaaaaaaaaaaaa',
        run_seconds: 50,
        low_seconds: 40,
        high_seconds: 75,
        memory_need_bytes: null,
        memory_free_bytes: null,
        memory_fit: 'unknown',
        memory_reason: 'GPU free memory unknown',
      },
    ],
  },
};

/** plan.json written from `plan` after `damage`; the StudyDirError readPlan throws for it. */
function refusal(damage: (plan: typeof OLD_PLAN & Record<string, unknown>) => void): StudyDirError {
  return withDir((dir) => {
    const plan = structuredClone(OLD_PLAN) as typeof OLD_PLAN & Record<string, unknown>;
    damage(plan);
    writeFileSync(join(dir, 'plan.json'), JSON.stringify(plan));
    try {
      readPlan(dir);
    } catch (err) {
      assert.ok(err instanceof StudyDirError, `expected a StudyDirError, got ${String(err)}`);
      assert.equal(err.exitCode, 2);
      assert.equal(err.file, join(dir, 'plan.json'));
      return err;
    }
    assert.fail('expected plan.json to be refused');
  });
}

describe('plan.json', () => {
  it('what the planner writes reads back unchanged: same canonical configs, same hashes', async () => {
    const file = await withStudy({ 'study.yaml': STUDY }, async (dir) => (await planStudy(join(dir, 'study.yaml'), { gpuFreeMemoryBytes: null })).toPlanFile());
    // what this study exercises: open-loop fields, gpu settings, a target, a policy, slo
    assert.equal(file.configs.length, 2);
    assert.ok(file.configs.some((c) => c.config.gpu?.power_limit_w === 300 && c.config.dataset.kind === 'synthetic'));
    assert.ok(file.configs.some((c) => c.config.request_rate === 5 && c.config.arrival !== undefined));
    assert.ok(file.execution.target && file.execution.validity && file.slo);
    withDir((dir) => {
      writePlan(dir, file);
      const read = readPlan(dir);
      assert.deepEqual(read, JSON.parse(JSON.stringify(file)));
      for (const [i, c] of read.configs.entries()) {
        // key order too: the config as read is the canonical JSON the hash was computed over
        assert.equal(JSON.stringify(c.config), JSON.stringify(file.configs[i]!.config));
        assert.equal(configHash(c.config), c.config_hash);
      }
    });
  });

  it('an early plan.json (no validity, target, slo; estimate without source, match, cycles, timeout) reads with the defaults', () => {
    withDir((dir) => {
      writeFileSync(join(dir, 'plan.json'), JSON.stringify(OLD_PLAN, null, 2));
      const plan = readPlan(dir);
      assert.deepEqual(plan.execution, { ...OLD_PLAN.execution, target: null, validity: DEFAULT_VALIDITY });
      assert.equal(plan.slo, undefined);
      assert.equal('slo' in plan, false);
      assert.deepEqual(plan.estimate, OLD_PLAN.estimate);
      assert.equal('source' in plan.estimate.per_config[0]!, false);
      // nothing added to a config: its hash is over exactly what was written
      assert.deepEqual(plan.configs[0]!.config, OLD_PLAN.configs[0]!.config);
      assert.equal(Object.keys(plan.configs[0]!.config).join(), Object.keys(OLD_PLAN.configs[0]!.config).join());
    });
  });

  it('an execution missing fields of later versions, and a policy without gpu_setting_drift, take the defaults', () => {
    withDir((dir) => {
      const plan = structuredClone(OLD_PLAN) as Record<string, unknown> & typeof OLD_PLAN;
      const { gpu_setting_drift: _, ...olderPolicy } = DEFAULT_VALIDITY;
      plan.execution = { n_cycles: 2, validity: olderPolicy } as unknown as typeof OLD_PLAN.execution;
      writeFileSync(join(dir, 'plan.json'), JSON.stringify(plan));
      const read = readPlan(dir);
      assert.equal(read.execution.n_cycles, 2);
      assert.equal(read.execution.cycle_order, 'shuffled');
      assert.equal(read.execution.stall_timeout_seconds, 120);
      assert.deepEqual(read.execution.validity, DEFAULT_VALIDITY);
    });
  });

  it('a config whose warmup.window is a string is refused, naming plan.json and the field', () => {
    const err = refusal((p) => {
      (p.configs[0]!.config.warmup as Record<string, unknown>).window = '5';
    });
    assert.equal(err.field, 'configs.0.config.warmup.window');
    assert.match(err.message, /plan\.json: field "configs\.0\.config\.warmup\.window": Expected number, received string/);
    assert.match(err.message, /start the study again/);
  });

  it('a run of the order without its cycle is refused, naming plan.json and the field', () => {
    const err = refusal((p) => {
      p.order.push({ index: 2, config_hash: 'aaaaaaaaaaaaaaaa', cycle: 3 }, { index: 3, config_hash: 'aaaaaaaaaaaaaaaa' } as never);
    });
    assert.equal(err.field, 'order.3.cycle');
    assert.match(err.message, /plan\.json: field "order\.3\.cycle": Required/);
  });

  it('a config with a field this llem does not know is refused rather than dropped from what is measured', () => {
    const err = refusal((p) => {
      (p.configs[0]!.config as Record<string, unknown>).tensor_parallel = 2;
    });
    assert.equal(err.field, 'configs.0.config');
    assert.match(err.message, /Unrecognized key.*tensor_parallel/);
  });

  it('a bad dataset, execution or estimate field is named', () => {
    assert.equal(refusal((p) => ((p.configs[0]!.config as Record<string, unknown>).dataset = { kind: 'jsonl' })).field, 'configs.0.config.dataset.path');
    assert.equal(refusal((p) => ((p.execution as Record<string, unknown>).cycle_order = 'random')).field, 'execution.cycle_order');
    assert.equal(refusal((p) => ((p.estimate.per_config[0] as Record<string, unknown>).memory_fit = 'maybe')).field, 'estimate.per_config.0.memory_fit');
  });
});
