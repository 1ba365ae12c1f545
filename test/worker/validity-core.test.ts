// The validity gate's pure core on results the real `llem run` wrote under the fake NVML: what the
// runner calls after each run (judgeValidity with the plan's policy), and the verdict it recorded
// (these studies measure once: max_invalid_retries 0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FakeDevice } from '../native/fake.ts';
import { commandStudy, fakeGpuStudies, runStudy } from './helpers.ts';
import { judgeValidity, validityPolicyOf } from '../../src/measure/validity.ts';
import { readManifest } from '../../src/study-dir/read.ts';
import type { PlanFile } from '../../src/study/types.ts';

const studies = fakeGpuStudies();

async function judged(devices: FakeDevice[], env: (root: string) => Record<string, string> = () => ({}), validity = '') {
  const root = studies.root();
  const s = await runStudy(root, commandStudy({ n: 8, env: env(root), validity: `{max_invalid_retries: 0${validity ? `, ${validity}` : ''}}` }), studies.gpu(root, devices));
  const plan = JSON.parse(readFileSync(join(s.studyDir, 'plan.json'), 'utf8')) as PlanFile;
  const result = s.runs[0]!.result!;
  const verdict = judgeValidity(result, validityPolicyOf(plan.execution));
  // the runner judged the same, and a study whose run ended invalid exits 1
  assert.equal(s.code, verdict.valid ? 0 : 1, s.stderr);
  const attempt = readManifest(s.studyDir).runs[0]!.attempts[0]!;
  assert.equal(attempt.status, verdict.valid ? 'completed' : 'invalid');
  assert.deepEqual(attempt.validity?.reasons, verdict.reasons);
  return { result, verdict };
}

test('a GPU that throttles for the whole window: thermal throttling recorded as a fraction, the run judged invalid', { timeout: 300_000 }, async () => {
  const { result, verdict } = await judged([{ power: [[0, 200_000]], throttle: [[0, 0x40]] }], () => ({ FIXTURE_STEPS: 'sleep:300' }));
  assert.ok(result.metrics.throttle_fraction!.thermal! > 0.999, `thermal fraction ${result.metrics.throttle_fraction?.thermal}`);
  assert.ok(result.flags.some((f) => f.code === 'thermal_throttle'));
  assert.equal(verdict.valid, false);
  assert.deepEqual(verdict.reasons.map((r) => r.code), ['thermal_throttle']);
  assert.match(verdict.reasons[0]!.detail, /thermal throttling during 100\.0 % of the window/);
});

test('3 of 8 requests failed: invalid under the defaults; valid under a study policy that tolerates it', { timeout: 300_000 }, async () => {
  const strict = await judged([{ power: [[0, 200_000]] }], (root) => ({ FIXTURE_FAIL_ONCE: `3:${join(root, 'failed-once')}` }));
  assert.equal(strict.result.metrics.requests_failed, 3);
  assert.deepEqual(strict.verdict.reasons.map((r) => r.code), ['failed_requests']);
  assert.match(strict.verdict.reasons[0]!.detail, /37\.5 % of the measured requests failed/);
  const lenient = await judged([{ power: [[0, 200_000]] }], (root) => ({ FIXTURE_FAIL_ONCE: `3:${join(root, 'failed-once')}` }), 'failed_requests: 0.5');
  assert.equal(lenient.result.metrics.requests_failed, 3);
  assert.equal(lenient.verdict.valid, true, JSON.stringify(lenient.verdict.reasons));
});

test('a foreign process holding 2 GiB: recorded at preflight and both window edges, the run judged invalid', { timeout: 300_000 }, async () => {
  const { result, verdict } = await judged([{ power: [[0, 200_000]], processes: [{ pid: 999_999, bytes: 2 * 2 ** 30 }], utilGpuPct: 0 }]);
  for (const at of ['preflight', 'window_start', 'window_stop'] as const) {
    assert.deepEqual(result.foreign_gpu?.[at]?.processes.map((p) => p.pid), [999_999], at);
    assert.equal(result.foreign_gpu?.[at]?.memory_bytes, 2 * 2 ** 30, at);
  }
  assert.deepEqual(verdict.reasons.map((r) => r.code), ['foreign_gpu_process']);
  assert.match(verdict.reasons[0]!.detail, /2048 MiB/);
});
