// Real child processes, one per fixture behaviour, through the whole runner: spawn, IPC, log,
// timeouts, kill by group, and the exit classification of ARCHITECTURE.md.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { StudyRunner } from '../../src/runner/index.ts';
import { pidAlive } from '../../src/runner/lock.ts';
import type { RunSnapshot } from '../../src/runner/events.ts';
import { fixtureWorker, groupMembers, makePlan, tempStudy, waitFor } from './helpers.ts';

async function runModes(modes: string[], execution: Record<string, unknown> = {}) {
  const t = tempStudy(makePlan(modes.map((m) => ({ fixture_mode: m })), { execution }));
  const runner = new StudyRunner(t.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000 });
  const code = await runner.run();
  const runs = runner.snapshot().runs;
  return { t, code, runs, byMode: (m: string): RunSnapshot => runs[modes.indexOf(m)]! };
}

test('fast behaviours are classified as ARCHITECTURE.md says, and a failed run never stops the study', async () => {
  const modes = ['ok', 'throw', 'segv', 'abort', 'no-result', 'bad-result', 'backend-error', 'big-error', 'malformed', 'sigkill-self'];
  const { t, code, runs, byMode } = await runModes(modes);
  try {
    assert.equal(code, 1, 'some runs failed → exit 1');
    assert.ok(runs.every((r) => r.status !== 'pending' && r.status !== 'running'), 'every run was attempted');

    const ok = byMode('ok');
    assert.equal(ok.status, 'completed');
    assert.equal(ok.result, path.join('runs', ok.run_id, 'result.json'));
    assert.equal(ok.headline?.energy_j, 12.5);

    const thrown = byMode('throw');
    assert.equal(thrown.error_type, 'ProcessCrash');
    assert.match(thrown.attempts[0]!.message!, /exited with code 1.*fixture worker failed on purpose/);
    assert.match(thrown.attempts[0]!.stderr_tail!, /fixture worker failed on purpose/);

    assert.equal(byMode('segv').error_type, 'ProcessCrash');
    assert.match(byMode('segv').attempts[0]!.message!, /SIGSEGV/);
    assert.equal(byMode('abort').error_type, 'ProcessCrash');
    assert.match(byMode('abort').attempts[0]!.message!, /SIGABRT/);

    assert.equal(byMode('no-result').error_type, 'InvalidResult');
    assert.match(byMode('no-result').attempts[0]!.message!, /no result file/);
    assert.equal(byMode('bad-result').error_type, 'InvalidResult');
    assert.match(byMode('bad-result').attempts[0]!.message!, /fails its schema/);

    assert.equal(byMode('backend-error').error_type, 'BackendError');
    assert.equal(byMode('backend-error').attempts[0]!.message, 'model file is corrupt');
    assert.equal(byMode('backend-error').attempts[0]!.phase_reached, 'load');

    const big = byMode('big-error');
    assert.equal(big.error_type, 'BackendError');
    assert.match(big.attempts[0]!.message!, /^backend exploded: E+/);
    assert.ok(big.attempts[0]!.message!.length <= 16384, 'a 20 MB message is cut, not stored whole');

    const malformed = byMode('malformed');
    assert.equal(malformed.status, 'completed', 'malformed IPC is logged, not fatal');
    const log = readFileSync(path.join(t.studyDir, malformed.attempts[0]!.run_dir, 'worker.log'), 'utf8');
    assert.match(log, /ignored malformed IPC message/);

    assert.equal(byMode('sigkill-self').error_type, 'OutOfMemory', 'a SIGKILL we did not send is suspected OOM');

    const manifest = JSON.parse(readFileSync(path.join(t.studyDir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.status, 'failed');
    assert.equal(manifest.counts.completed, 2);
    assert.equal(manifest.counts.failed, modes.length - 2);
  } finally {
    t.cleanup();
  }
});

test('a child that hangs and ignores SIGTERM is killed on the total timeout, phase recorded', async () => {
  const { t, runs } = await runModes(['hang-ignore-term'], { experiment_timeout_seconds: 12 });
  try {
    const r = runs[0]!;
    assert.equal(r.status, 'failed');
    assert.equal(r.error_type, 'TimeoutError');
    assert.equal(r.attempts[0]!.phase_reached, 'warmup');
    assert.match(r.attempts[0]!.message!, /SIGTERM, then SIGKILL/);
    assert.deepEqual(groupMembers(r.attempts[0]!.pid!), []);
  } finally {
    t.cleanup();
  }
});

test('a child that stops heartbeating is killed on the stall timeout', async () => {
  const { t, runs } = await runModes(['stall'], { stall_timeout_seconds: 2, experiment_timeout_seconds: 120 });
  try {
    const r = runs[0]!;
    assert.equal(r.error_type, 'StallTimeout');
    assert.equal(r.attempts[0]!.phase_reached, 'baseline');
  } finally {
    t.cleanup();
  }
});

test('grandchildren that ignore SIGTERM do not survive their run', async () => {
  const { t, runs } = await runModes(['grandchildren'], { experiment_timeout_seconds: 10 });
  try {
    const r = runs[0]!;
    assert.equal(r.error_type, 'TimeoutError');
    const grandchildren = JSON.parse(readFileSync(path.join(t.studyDir, r.attempts[0]!.run_dir, 'grandchildren.json'), 'utf8')) as number[];
    assert.equal(grandchildren.length, 2);
    await waitFor(() => grandchildren.every((p) => !pidAlive(p)), 10_000, 'grandchildren to be gone');
    assert.deepEqual(groupMembers(r.attempts[0]!.pid!), [], 'no process left in the child group');
  } finally {
    t.cleanup();
  }
});

test('a 200 MB stdout flood lands in worker.log; only 64 KiB stay in memory', async () => {
  const { t, runs } = await runModes(['flood', 'throw'], { experiment_timeout_seconds: 300 });
  try {
    const r = runs[0]!;
    assert.equal(r.status, 'completed');
    const logPath = path.join(t.studyDir, r.attempts[0]!.run_dir, 'worker.log');
    assert.ok(statSync(logPath).size >= 200 * 1024 * 1024, 'the whole flood is in worker.log');
    // the failed run after it still gets a short tail (the flood did not break the runner)
    const failed = runs[1]!;
    assert.equal(failed.error_type, 'ProcessCrash');
    assert.ok(failed.attempts[0]!.stderr_tail!.length <= 64 * 1024);
    assert.ok(existsSync(path.join(t.studyDir, 'events.jsonl')));
  } finally {
    t.cleanup();
  }
});
