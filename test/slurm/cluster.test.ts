// The slurm launcher against a real single-node Slurm (scripts/slurm/up.sh): job arrays,
// scancel of one task, Slurm's time limit, llem cancel, many tasks finishing together.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { cancelStudy, reconcileStudy, submitStudy } from '../../src/runner/slurm/launcher.ts';
import { readManifest } from '../../src/study-dir/read.ts';
import { readSlurmState } from '../../src/study-dir/read.ts';
import { squeue } from '../../src/runner/slurm/commands.ts';
import { llemBin, makePlan, tempStudy } from '../runner/helpers.ts';
import {
  completionLines,
  finished,
  journalEvents,
  endSlurmStudy,
  scancelQuiet,
  slurmDown,
  slurmFixtureWorker,
  slurmUp,
  waitForManifest,
} from './cluster-helpers.ts';

const execFileAsync = promisify(execFile);

function fixtureStudy(params: Array<Record<string, unknown>>, nCycles = 1) {
  const t = tempStudy(makePlan(params, { nCycles, execution: { experiment_timeout_seconds: 600, stall_timeout_seconds: 60 } }));
  const completions = path.join(t.root, 'completions.txt');
  const env = { ...process.env, FIXTURE_COMPLETIONS: completions };
  const jobs: string[] = [];
  return {
    ...t,
    completions,
    env,
    jobs,
    async submit(extra: Parameters<typeof submitStudy>[1] = {}) {
      const r = await submitStudy(t.studyDir, { workerEntry: slurmFixtureWorker, time: '10', env, ...extra });
      jobs.push(r.jobId);
      return r;
    },
    done: () => endSlurmStudy(t.studyDir, t.cleanup, jobs),
  };
}

describe('slurm launcher on a real single-node cluster', { concurrency: true, timeout: 900_000 }, () => {
  before(() => slurmUp());
  after(() => slurmDown());

  it('runs a 6-run study through one job array, every run completed exactly once', async () => {
    const s = fixtureStudy([{ sleep_ms: 200 }, { sleep_ms: 200 }], 3);
    try {
      const sub = await s.submit({ maxConcurrent: 3 });
      assert.deepEqual(sub.indices, [0, 1, 2, 3, 4, 5]);
      assert.equal(sub.array, '0-5%3');
      assert.equal(readSlurmState(s.studyDir).submissions[0]!.job_id, sub.jobId);
      const m = await waitForManifest(s.studyDir, finished, 400_000, 'the 6 runs');
      assert.equal(m.status, 'completed');
      assert.equal(m.counts.completed, 6);
      for (const r of m.runs) {
        assert.equal(r.attempts.length, 1, `run ${r.index} attempts`);
        assert.match(r.attempts[0]!.message ?? '', new RegExp(`Slurm task ${sub.jobId}_${r.index}`));
        assert.ok(r.result && r.headline, `run ${r.index} has its result and headline`);
      }
      const lines = completionLines(s.completions).sort();
      assert.deepEqual(lines, ['0:1:', '1:1:', '2:1:', '3:1:', '4:1:', '5:1:']);
      const ends = journalEvents(s.studyDir).filter((e) => e.type === 'run_status' && e.run.status === 'completed');
      assert.equal(ends.length, 6);
      assert.equal(journalEvents(s.studyDir).filter((e) => e.type === 'study_finished' && e.status === 'completed').length, 1);
    } finally {
      await s.done();
    }
  });

  it('never loses a manifest update when many tasks finish together', async () => {
    const s = fixtureStudy([{}, {}, {}, {}], 4);
    try {
      await s.submit({ maxConcurrent: 8 });
      const m = await waitForManifest(s.studyDir, finished, 500_000, 'the 16 runs');
      assert.equal(m.counts.completed, 16, JSON.stringify(m.counts));
      assert.equal(m.status, 'completed');
      assert.ok(m.runs.every((r) => r.status === 'completed' && r.attempts.length === 1 && r.result !== null));
      assert.equal(new Set(completionLines(s.completions)).size, 16);
      assert.equal(completionLines(s.completions).length, 16);
      const ends = journalEvents(s.studyDir).filter((e) => e.type === 'run_status' && e.run.status === 'completed');
      assert.equal(ends.length, 16);
    } finally {
      await s.done();
    }
  });

  it('scancel of one task mid-run: that run interrupted, the rest complete, a resubmission finishes it', async () => {
    const s = fixtureStudy([{ sleep_ms_attempt1: 300_000 }, { sleep_ms: 100 }, { sleep_ms: 100 }]);
    try {
      const sub = await s.submit({ maxConcurrent: 3 });
      await waitForManifest(s.studyDir, (m) => m.runs[0]!.status === 'running', 300_000, 'run 0 to start');
      // give the fixture child time to reach its measure phase
      await waitForManifest(
        s.studyDir,
        () => journalEvents(s.studyDir).some((e) => e.type === 'phase' && e.index === 0 && e.phase === 'measure'),
        120_000,
        'run 0 to measure',
      );
      scancelQuiet([`${sub.jobId}_0`]);
      const m = await waitForManifest(s.studyDir, finished, 300_000, 'the study to settle');
      const r0 = m.runs[0]!;
      assert.equal(r0.status, 'interrupted');
      assert.equal(r0.error_type, 'UserInterrupted');
      assert.match(r0.attempts[0]!.message ?? '', /CANCELLED/);
      assert.equal(m.runs[1]!.status, 'completed');
      assert.equal(m.runs[2]!.status, 'completed');
      assert.equal(m.status, 'interrupted');

      const again = await s.submit();
      assert.deepEqual(again.indices, [0]);
      const m2 = await waitForManifest(s.studyDir, finished, 300_000, 'the resubmitted run');
      assert.equal(m2.status, 'completed');
      assert.equal(m2.runs[0]!.status, 'completed');
      assert.equal(m2.runs[0]!.attempts.length, 2);
      assert.deepEqual(completionLines(s.completions).sort(), ['0:2:', '1:1:', '2:1:']);
    } finally {
      await s.done();
    }
  });

  it('a task over its Slurm time limit is recorded as TimeoutError from Slurm', async () => {
    const s = fixtureStudy([{ sleep_ms: 600_000 }]);
    try {
      await s.submit({ time: '1' });
      const m = await waitForManifest(s.studyDir, finished, 400_000, 'the time limit');
      const r = m.runs[0]!;
      assert.equal(r.status, 'failed');
      assert.equal(r.error_type, 'TimeoutError');
      assert.match(r.attempts[0]!.message ?? '', /TIMEOUT/);
      assert.equal(m.status, 'failed');
      assert.deepEqual(completionLines(s.completions), []);
    } finally {
      await s.done();
    }
  });

  it('llem cancel scancels the array and marks every unfinished run interrupted', async () => {
    const s = fixtureStudy([{ sleep_ms: 300_000 }, { sleep_ms: 300_000 }, { sleep_ms: 300_000 }]);
    try {
      const sub = await s.submit({ maxConcurrent: 1 });
      await waitForManifest(s.studyDir, (m) => m.counts.running === 1, 300_000, 'the first run to start');
      const { stdout } = await execFileAsync(process.execPath, [llemBin, 'cancel', s.studyDir], { env: process.env, timeout: 120_000 });
      assert.match(stdout, new RegExp(`cancelled Slurm job ${sub.jobId}`));
      const m = readManifest(s.studyDir);
      assert.deepEqual(m.runs.map((r) => r.status), ['interrupted', 'interrupted', 'interrupted']);
      assert.ok(m.runs.every((r) => r.error_type === 'UserInterrupted'));
      assert.equal(m.status, 'interrupted');
      assert.deepEqual(await squeue([sub.jobId]), []);
      assert.ok(readSlurmState(s.studyDir).submissions[0]!.cancelled_at);
    } finally {
      await s.done();
    }
  });

  it('a task cancelled while still pending is recorded by the poller', async () => {
    const s = fixtureStudy([{ sleep_ms: 300_000 }, { sleep_ms: 300_000 }]);
    try {
      const sub = await s.submit({ maxConcurrent: 1 });
      await waitForManifest(s.studyDir, (m) => m.runs[0]!.status === 'running', 300_000, 'run 0 to start');
      scancelQuiet([`${sub.jobId}_1`]);
      const m = await waitForManifest(s.studyDir, (x) => x.runs[1]!.status !== 'pending', 120_000, 'run 1 recorded');
      assert.equal(m.runs[1]!.status, 'interrupted');
      assert.equal(m.runs[1]!.attempts.length, 0);
      assert.equal(m.runs[0]!.status, 'running');
      const r = await reconcileStudy(s.studyDir, { minIntervalMs: 0 });
      assert.deepEqual(r.active, [0]);
      await cancelStudy(s.studyDir);
    } finally {
      await s.done();
    }
  });
});
