// The validity gate's pure core: execution.validity in the grammar, and judgeValidity as a table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_VALIDITY, judgeValidity, resolveValidityPolicy, validityPolicyOf, VALIDITY_RULES, type ValidityPolicy,
} from '../../src/measure/validity.ts';
import { FLAG_CODES, type FlagCode, type ForeignProcessCheck, type RunResult } from '../../src/results/schema.ts';
import { planStudy } from '../../src/study/plan.ts';
import { StudyInputError } from '../../src/study/errors.ts';
import { makeConfig, makeResult } from '../results/fixtures.ts';

const fixture = { hash: 'abcdef0123456789', label: 'fixture', config: makeConfig() };

/** A clean result (no flag, nothing failed) with some fields changed. */
function result(over: { metrics?: Partial<RunResult['metrics']>; flags?: FlagCode[]; gpus?: number; nvml?: boolean; foreign?: RunResult['foreign_gpu'] } = {}): RunResult {
  const r = makeResult(fixture, 0, 1, { requests: 100, requests_failed: 0, output_tokens_failed: 0, throttle_fraction: { thermal: 0, power_cap: 0, power_brake: 0 }, ...over.metrics }, over.flags ?? []);
  if (over.gpus === 0) r.environment.gpus = [];
  if (over.nvml === false) r.environment.nvml = { ...r.environment.nvml, available: false, reason: 'no NVML' };
  if (over.foreign !== undefined) r.foreign_gpu = over.foreign;
  return r;
}

const check = (memMib: number, util: number | null, pids = [4242]): ForeignProcessCheck => ({
  processes: pids.map((pid) => ({ pid, gpu_uuid: 'GPU-x', memory_bytes: (memMib * 2 ** 20) / pids.length })),
  memory_bytes: pids.length ? memMib * 2 ** 20 : 0,
  gpu_util_pct: util,
});

const policy = (over: Parameters<typeof resolveValidityPolicy>[0] = {}): ValidityPolicy => resolveValidityPolicy(over);

test('judgeValidity: one row per situation, defaults and overrides', () => {
  const cases: Array<{ name: string; r: RunResult; p?: ValidityPolicy; codes: FlagCode[]; wait?: boolean }> = [
    { name: 'clean', r: result(), codes: [] },
    { name: '1 of 100 failed is not above 1 %', r: result({ metrics: { requests: 99, requests_failed: 1 } }), codes: [] },
    { name: '2 of 100 failed', r: result({ metrics: { requests: 98, requests_failed: 2 } }), codes: ['failed_requests'] },
    { name: '3 of 8 failed', r: result({ metrics: { requests: 5, requests_failed: 3 } }), codes: ['failed_requests'] },
    { name: 'failed requests off', r: result({ metrics: { requests: 5, requests_failed: 3 } }), p: policy({ failed_requests: false }), codes: [] },
    { name: 'any failure with true', r: result({ metrics: { requests: 99, requests_failed: 1 } }), p: policy({ failed_requests: true }), codes: ['failed_requests'] },
    { name: 'divergence 12 %', r: result({ metrics: { energy_divergence: 0.12 } }), codes: ['energy_divergence'] },
    { name: 'divergence 7 % under a 5 % policy', r: result({ metrics: { energy_divergence: 0.07 } }), p: policy({ energy_divergence: 0.05 }), codes: ['energy_divergence'] },
    { name: 'thermal 4 % of the window', r: result({ metrics: { throttle_fraction: { thermal: 0.04, power_cap: 0, power_brake: 0 } } }), codes: [] },
    { name: 'thermal the whole window', r: result({ metrics: { throttle_fraction: { thermal: 1, power_cap: 0, power_brake: 0 } }, flags: ['thermal_throttle'] }), codes: ['thermal_throttle'] },
    { name: 'power brake 6 %', r: result({ metrics: { throttle_fraction: { thermal: 0, power_cap: 0, power_brake: 0.06 } } }), codes: ['power_brake'] },
    {
      name: 'older result: throttle from throttle_s ÷ window_s',
      r: result({ metrics: { throttle_fraction: undefined, throttle_s: { thermal: 5, power_cap: 0, power_brake: 0 }, window_s: 10 } }),
      codes: ['thermal_throttle'],
    },
    { name: 'power cap never invalidates (not a flag)', r: result({ metrics: { throttle_fraction: { thermal: 0, power_cap: 1, power_brake: 0 } } }), codes: [] },
    { name: 'temperature drift', r: result({ flags: ['temperature_drift'] }), codes: ['temperature_drift'] },
    { name: 'energy method fallback', r: result({ flags: ['energy_method_fallback'] }), codes: ['energy_method_fallback'] },
    { name: 'baseline above load', r: result({ flags: ['baseline_above_load'] }), codes: ['baseline_above_load'] },
    { name: 'energy unavailable on a GPU machine', r: result({ flags: ['energy_unavailable'] }), codes: ['energy_unavailable'] },
    { name: 'energy unavailable without NVML', r: result({ flags: ['energy_unavailable'], nvml: false, gpus: 0 }), codes: [] },
    { name: 'energy unavailable without GPUs', r: result({ flags: ['energy_unavailable'], gpus: 0 }), codes: [] },
    { name: 'energy unavailable forced', r: result({ flags: ['energy_unavailable'], nvml: false, gpus: 0 }), p: policy({ energy_unavailable: true }), codes: ['energy_unavailable'] },
    { name: 'flag-only codes by default', r: result({ flags: ['short_window', 'few_samples', 'warmup_not_converged', 'persistence_mode_off', 'baseline_stale', 'counter_reset', 'builtin_model', 'mig_whole_gpu'] }), codes: [] },
    { name: 'a flag-only code made invalidating', r: result({ flags: ['warmup_not_converged'] }), p: policy({ warmup_not_converged: true }), codes: ['warmup_not_converged'] },
    { name: 'temperature drift allowed', r: result({ flags: ['temperature_drift'] }), p: policy({ temperature_drift: false }), codes: [] },
    { name: 'small idle foreign process', r: result({ flags: ['foreign_gpu_process'], foreign: { preflight: check(300, 0), window_start: check(300, 90), window_stop: null } }), codes: [] },
    { name: 'foreign process with 2 GiB', r: result({ flags: ['foreign_gpu_process'], foreign: { preflight: null, window_start: check(2048, 50), window_stop: null } }), codes: ['foreign_gpu_process'] },
    { name: 'GPU busy at preflight', r: result({ flags: ['foreign_gpu_process'], foreign: { preflight: check(100, 40), window_start: null, window_stop: null } }), codes: ['foreign_gpu_process'] },
    { name: 'GPU busy at preflight, no process visible', r: result({ foreign: { preflight: check(0, 40, []), window_start: null, window_stop: null } }), codes: ['foreign_gpu_process'] },
    { name: 'foreign policy flag', r: result({ flags: ['foreign_gpu_process'], foreign: { preflight: check(4096, 99), window_start: null, window_stop: null } }), p: policy({ foreign_gpu_process: { policy: 'flag' } }), codes: [] },
    { name: 'foreign policy wait', r: result({ flags: ['foreign_gpu_process'], foreign: { preflight: check(4096, 0), window_start: null, window_stop: null } }), p: policy({ foreign_gpu_process: { policy: 'wait' } }), codes: ['foreign_gpu_process'], wait: true },
    { name: 'older result: no counts, nothing to judge', r: result({ metrics: { requests_failed: undefined } }), codes: [] },
    {
      name: 'every reason at once',
      r: result({ metrics: { requests: 5, requests_failed: 3, energy_divergence: 0.5 }, flags: ['temperature_drift', 'baseline_above_load'] }),
      codes: ['energy_divergence', 'temperature_drift', 'failed_requests', 'baseline_above_load'],
    },
  ];
  for (const c of cases) {
    const v = judgeValidity(c.r, c.p ?? DEFAULT_VALIDITY);
    assert.deepEqual(v.reasons.map((x) => x.code).sort(), [...c.codes].sort(), c.name);
    assert.equal(v.valid, c.codes.length === 0, c.name);
    assert.equal(v.wait_before_retry, c.wait ?? false, c.name);
    for (const reason of v.reasons) assert.ok(reason.detail.length > 0, `${c.name}: ${reason.code} has a detail`);
  }
  const detail = judgeValidity(result({ metrics: { requests: 5, requests_failed: 3 } }), DEFAULT_VALIDITY).reasons[0]!.detail;
  assert.equal(detail, '37.5 % of the measured requests failed (more than 1.0 %)');
});

test('every flag code has a validity rule; defaults are those of the issue', () => {
  assert.deepEqual(Object.keys(VALIDITY_RULES).sort(), [...FLAG_CODES].sort());
  assert.equal(DEFAULT_VALIDITY.max_invalid_retries, 2);
  assert.equal(DEFAULT_VALIDITY.failed_requests, 0.01);
  assert.equal(DEFAULT_VALIDITY.energy_divergence, 0.1);
  assert.equal(DEFAULT_VALIDITY.thermal_throttle, 0.05);
  assert.equal(DEFAULT_VALIDITY.power_brake, 0.05);
  assert.equal(DEFAULT_VALIDITY.energy_unavailable, 'when_gpu');
  assert.deepEqual(DEFAULT_VALIDITY.foreign_gpu_process, { policy: 'invalid', memory_mib: 1024, utilization_pct: 5 });
  for (const code of ['temperature_drift', 'energy_method_fallback', 'baseline_above_load'] as const) assert.equal(DEFAULT_VALIDITY[code], true);
  assert.deepEqual(validityPolicyOf({}), DEFAULT_VALIDITY, 'a plan.json from before the gate runs under the defaults');
});

test('execution.validity in a study: merged over the defaults, recorded in the plan, bad values exit 2 with file, line and field', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llem-validity-'));
  try {
    const file = join(dir, 'study.yaml');
    const base = 'backend: llamacpp\nmodel: builtin:tiny-random\n';
    writeFileSync(file, `${base}execution:\n  validity:\n    max_invalid_retries: 5\n    failed_requests: 0.05\n    warmup_not_converged: true\n    foreign_gpu_process: {memory_mib: 256}\n`);
    const plan = await planStudy(file, { gpuFreeMemoryBytes: null });
    const v = plan.toPlanFile().execution.validity!;
    assert.equal(v.max_invalid_retries, 5);
    assert.equal(v.failed_requests, 0.05);
    assert.equal(v.warmup_not_converged, true);
    assert.deepEqual(v.foreign_gpu_process, { policy: 'invalid', memory_mib: 256, utilization_pct: 5 });
    assert.equal(v.energy_divergence, 0.1, 'untouched keys keep their defaults');
    const bad = async (yaml: string, re: RegExp) => {
      writeFileSync(file, `${base}execution:\n  validity:\n${yaml}`);
      await assert.rejects(planStudy(file, { gpuFreeMemoryBytes: null }), (err: unknown) => {
        assert.ok(err instanceof StudyInputError, String(err));
        const text = (err as Error).message;
        assert.match(text, re);
        assert.match(text, /study\.yaml:\d+/);
        return true;
      });
    };
    await bad('    failed_requests: 2\n', /execution\.validity\.failed_requests/);
    await bad('    foreign_gpu_process: {policy: later}\n', /execution\.validity\.foreign_gpu_process\.policy: expected one of flag, invalid, wait, got "later"/);
    await bad('    thermal_throtle: 0.1\n', /unknown field "thermal_throtle" \(did you mean "thermal_throttle"\?\)/);
    await bad('    max_invalid_retries: -1\n', /execution\.validity\.max_invalid_retries/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
