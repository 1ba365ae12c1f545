// The validity gate in the runner (issue 17 phase 2), through the real run-attempt path with
// fixture children: an invalid run is measured again as a new attempt before any later run, after
// the gap; it ends invalid when its re-measurements are spent; every surface of the runner (exit
// code, study status, retry, resume, repair-manifest, per-GPU slots under `policy: wait`) knows it.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_VALIDITY, type ValidityPolicy } from '../../src/measure/validity.ts';
import { StudyRunner, repairManifest } from '../../src/runner/index.ts';
import type { RunnerEvent } from '../../src/runner/events.ts';
import { readManifest } from '../../src/study-dir/read.ts';
import { readSummary } from '../../src/study-dir/read.ts';
import { fixtureWorker, makePlan, tempStudy } from './helpers.ts';

const policy = (over: Partial<ValidityPolicy> = {}): ValidityPolicy => ({ ...DEFAULT_VALIDITY, ...over });

/** What the journal says happened, one word per run transition and gap. */
function story(events: RunnerEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (e.type === 'run_status') out.push(`${e.run.index}:${e.run.status}`);
    if (e.type === 'gap_end') out.push(`${e.kind}-gap`);
  }
  return out;
}

test('an invalid run is measured again at once, before the later runs, after the config gap; the valid attempt completes it', async () => {
  const t = tempStudy(
    makePlan([{ fixture_mode: 'invalid', invalid_attempts: 1 }, { fixture_mode: 'ok' }], {
      order: 'sequential',
      execution: { config_gap_seconds: 1, validity: policy() },
    }),
  );
  try {
    const events: RunnerEvent[] = [];
    const runner = new StudyRunner(t.studyDir, { workerCommand: fixtureWorker, secondMs: 20 });
    runner.subscribe((e) => events.push(e));
    assert.equal(await runner.run(), 0);
    assert.deepEqual(story(events), ['0:running', '0:invalid', '0:pending', 'config-gap', '0:running', '0:completed', 'config-gap', '1:running', '1:completed']);
    const m = readManifest(t.studyDir);
    assert.equal(m.status, 'completed');
    const r0 = m.runs[0]!;
    assert.equal(r0.status, 'completed');
    assert.deepEqual(r0.attempts.map((a) => a.status), ['invalid', 'completed']);
    const [bad, good] = r0.attempts;
    assert.equal(bad!.validity?.valid, false);
    assert.deepEqual(bad!.validity?.reasons.map((r) => r.code), ['failed_requests']);
    assert.match(bad!.message ?? '', /^invalid: failed_requests: 37\.5 % of the measured requests failed/);
    assert.deepEqual(good!.validity, { valid: true, reasons: [], wait_before_retry: false });
    // the invalid result stays where its attempt wrote it; the run's result is the valid attempt's
    assert.ok(existsSync(path.join(t.studyDir, bad!.run_dir, 'result.json')));
    assert.equal(r0.result, path.join(good!.run_dir, 'result.json'));
    const summary = readSummary(path.join(t.studyDir, 'summary.json'));
    assert.deepEqual(summary.configs[0]!.runs, [JSON.parse(readFileSync(path.join(t.studyDir, good!.run_dir, 'result.json'), 'utf8')).run_id]);
    assert.equal(summary.invalid_attempts.length, 1);
    assert.equal(summary.invalid_attempts[0]!.run_status, 'completed');
    assert.equal(summary.excluded_runs.length, 0);
  } finally {
    t.cleanup();
  }
});

test('a run invalid every time ends invalid after max_invalid_retries re-measurements: study failed, exit 1; resume --retry-failed measures it once more', async () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'invalid' }, { fixture_mode: 'ok' }], { execution: { validity: policy({ max_invalid_retries: 2 }) } }));
  try {
    const events: RunnerEvent[] = [];
    const runner = new StudyRunner(t.studyDir, { workerCommand: fixtureWorker });
    runner.subscribe((e) => events.push(e));
    assert.equal(await runner.run(), 1);
    assert.deepEqual(story(events).filter((s) => s.startsWith('0:')), ['0:running', '0:invalid', '0:pending', '0:running', '0:invalid', '0:pending', '0:running', '0:invalid']);
    let m = readManifest(t.studyDir);
    assert.equal(m.status, 'failed');
    assert.equal(m.counts.invalid, 1);
    assert.equal(m.counts.completed, 1);
    assert.deepEqual(m.runs[0]!.attempts.map((a) => a.status), ['invalid', 'invalid', 'invalid']);
    assert.equal(m.runs[0]!.result, null);
    assert.equal(m.runs[0]!.headline, null);
    for (const a of m.runs[0]!.attempts) assert.ok(existsSync(path.join(t.studyDir, a.run_dir, 'result.json')), a.run_dir);
    const summary = readSummary(path.join(t.studyDir, 'summary.json'));
    assert.equal(summary.study.counts.invalid, 1);
    assert.equal(summary.configs[0]!.counts.invalid, 1);
    assert.deepEqual(summary.configs[0]!.runs, []);
    assert.equal(summary.configs[0]!.metrics.energy_j!.n, 0, 'no statistic from an invalid result');
    const excluded = summary.excluded_runs.find((r) => r.index === 0)!;
    assert.equal(excluded.status, 'invalid');
    assert.equal(excluded.invalid_attempts.length, 3);
    assert.deepEqual(excluded.invalid_attempts[2]!.reasons.map((r) => r.code), ['failed_requests']);

    // a plain resume leaves the verdict alone
    assert.equal(await new StudyRunner(t.studyDir, { workerCommand: fixtureWorker, resume: {} }).run(), 1);
    assert.equal(readManifest(t.studyDir).runs[0]!.attempts.length, 3);
    // --retry-failed measures it once more: one attempt, the automatic ones are spent
    assert.equal(await new StudyRunner(t.studyDir, { workerCommand: fixtureWorker, resume: { retryFailed: true } }).run(), 1);
    m = readManifest(t.studyDir);
    assert.deepEqual(m.runs[0]!.attempts.map((a) => a.status), ['invalid', 'invalid', 'invalid', 'invalid']);
    assert.equal(m.runs[0]!.status, 'invalid');
    assert.equal(m.runs[1]!.attempts.length, 1, 'the completed run is never measured again');
  } finally {
    t.cleanup();
  }
});

test('max_invalid_retries 0: the first invalid verdict stands; retry (r) and R include invalid runs', async () => {
  const gate = mkdtempSync(path.join(os.tmpdir(), 'llem-gate-'));
  const t = tempStudy(makePlan([{ fixture_mode: 'invalid', invalid_attempts: 1 }, { fixture_mode: 'ok' }], { execution: { validity: policy({ max_invalid_retries: 0 }) } }));
  try {
    const runner = new StudyRunner(t.studyDir, { workerCommand: fixtureWorker, env: { ...process.env, FIXTURE_GATE_DIR: gate } });
    const events: RunnerEvent[] = [];
    runner.subscribe((e) => events.push(e));
    const done = runner.run();
    writeFileSync(path.join(gate, 'token-1'), '');
    await waitForEvent(events, (e) => e.type === 'run_status' && e.run.index === 0 && e.run.status === 'invalid');
    // run 1 waits at the gate while run 0 is invalid: R sends it back, it is measured again (valid now)
    runner.retryAll();
    writeFileSync(path.join(gate, 'token-2'), '');
    writeFileSync(path.join(gate, 'token-3'), '');
    assert.equal(await done, 0);
    const m = readManifest(t.studyDir);
    assert.deepEqual(m.runs[0]!.attempts.map((a) => a.status), ['invalid', 'completed']);
    assert.equal(m.status, 'completed');
  } finally {
    t.cleanup();
    rmSync(gate, { recursive: true, force: true });
  }
});

test('per-GPU slots: a retry under foreign_gpu_process policy wait waits the config gap first; under policy invalid it does not', async () => {
  for (const foreign of ['wait', 'invalid'] as const) {
    const t = tempStudy(
      makePlan([{ fixture_mode: 'invalid', invalid_attempts: 1, invalid_reason: 'foreign' }], {
        execution: {
          parallel: 'per_gpu',
          config_gap_seconds: 1,
          validity: policy({ foreign_gpu_process: { ...DEFAULT_VALIDITY.foreign_gpu_process, policy: foreign } }),
        },
      }),
    );
    try {
      const events: RunnerEvent[] = [];
      const slots = [
        { cudaVisibleDevices: 'GPU-a', label: 'GPU 0' },
        { cudaVisibleDevices: 'GPU-b', label: 'GPU 1' },
      ];
      const runner = new StudyRunner(t.studyDir, { workerCommand: fixtureWorker, secondMs: 20, gpuSlots: async () => ({ slots, reason: null }) });
      runner.subscribe((e) => events.push(e));
      assert.equal(await runner.run(), 0, foreign);
      const m = readManifest(t.studyDir);
      assert.deepEqual(m.runs[0]!.attempts.map((a) => a.status), ['invalid', 'completed'], foreign);
      assert.equal(m.runs[0]!.attempts[0]!.validity!.wait_before_retry, foreign === 'wait');
      assert.deepEqual(
        story(events),
        foreign === 'wait' ? ['0:running', '0:invalid', '0:pending', 'config-gap', '0:running', '0:completed'] : ['0:running', '0:invalid', '0:pending', '0:running', '0:completed'],
        foreign,
      );
    } finally {
      t.cleanup();
    }
  }
});

test('repair-manifest judges a result the journal never recorded: invalid, not completed', async () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'invalid' }], { execution: { validity: policy({ max_invalid_retries: 0 }) } }));
  try {
    assert.equal(await new StudyRunner(t.studyDir, { workerCommand: fixtureWorker }).run(), 1);
    const before = readManifest(t.studyDir).runs[0]!;
    assert.equal(before.status, 'invalid');
    // the runner died before any of it reached the journal or the manifest
    rmSync(path.join(t.studyDir, 'events.jsonl'));
    writeFileSync(path.join(t.studyDir, 'manifest.json'), '{ truncated');
    await repairManifest(t.studyDir);
    const r = readManifest(t.studyDir).runs[0]!;
    assert.equal(r.status, 'invalid');
    assert.equal(r.result, null);
    assert.equal(r.attempts[0]!.status, 'invalid');
    assert.deepEqual(r.attempts[0]!.validity?.reasons.map((x) => x.code), ['failed_requests']);
    assert.equal(readManifest(t.studyDir).status, 'failed');
  } finally {
    t.cleanup();
  }
});

async function waitForEvent(events: RunnerEvent[], match: (e: RunnerEvent) => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!events.some(match)) {
    if (Date.now() > end) throw new Error('timed out waiting for an event');
    await new Promise((r) => setTimeout(r, 50));
  }
}
