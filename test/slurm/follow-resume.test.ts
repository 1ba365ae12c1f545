// Against the real single-node Slurm: `llem resume --launcher slurm --cycles N` tops up and
// resubmits; `llem status` refreshes once from Slurm (under the shared 30 s poll cache) and says
// so when Slurm is unreachable; `llem watch` polls Slurm while open, so a task cancelled while
// pending (its worker never ran) still ends the view.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readManifest } from '../../src/study-dir/read.ts';
import type { Manifest } from '../../src/study-dir/schema.ts';
import { readPlan } from '../../src/study-dir/read.ts';
import { cancelStudy, submitStudy } from '../../src/runner/slurm/launcher.ts';
import { readSlurmState } from '../../src/study-dir/read.ts';
import { squeue } from '../../src/runner/slurm/commands.ts';
import { makePlan, tempStudy } from '../runner/helpers.ts';
import { completionLines, endSlurmStudy, finished, llem, scancelQuiet, sleep, slurmDown, slurmFixtureWorker, slurmUp, waitForManifest } from './cluster-helpers.ts';

/** Reads the manifest only (no Slurm poll: these tests must leave the poll cache to the command under test). */
async function waitManifestOnly(studyDir: string, done: (m: Manifest) => boolean, timeoutMs: number, what: string): Promise<Manifest> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = readManifest(studyDir);
    if (done(m)) return m;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; counts ${JSON.stringify(m.counts)}`);
    await sleep(500);
  }
}

async function waitTaskGone(jobId: string, taskId: number): Promise<void> {
  const end = Date.now() + 120_000;
  while ((await squeue([jobId])).some((t) => t.taskId === taskId)) {
    if (Date.now() > end) throw new Error(`task ${jobId}_${taskId} still queued`);
    await sleep(500);
  }
}

const pollCacheAt = (studyDir: string) => (JSON.parse(readFileSync(path.join(studyDir, 'slurm-poll.json'), 'utf8')) as { at_ms: number }).at_ms;

function fixtureStudy(params: Array<Record<string, unknown>>) {
  const t = tempStudy(makePlan(params, { execution: { experiment_timeout_seconds: 600, stall_timeout_seconds: 60 } }));
  const completions = path.join(t.root, 'completions.txt');
  const env = { ...process.env, FIXTURE_COMPLETIONS: completions };
  return { ...t, completions, env };
}

const STUDY_YAML = `name: slurm-topup
backend: llamacpp
model: builtin:tiny-random
dataset: builtin
n: 1
max_new_tokens: 1
sweep:
  batch_size: [1, 2]
execution:
  n_cycles: 1
  cycle_order: interleaved
  config_gap_seconds: 0
  cycle_gap_seconds: 0
`;

describe('Slurm follow-up: resume --cycles, status, watch', { concurrency: true, timeout: 900_000 }, () => {
  before(() => slurmUp());
  after(() => slurmDown());

  it('resume --launcher slurm --cycles 3 appends two cycles and runs only the new runs as an array', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'llem-slurm-topup-'));
    let dir = '';
    try {
      const yaml = path.join(root, 'study.yaml');
      writeFileSync(yaml, STUDY_YAML);
      const completions = path.join(root, 'completions.txt');
      const env = { ...process.env, LLEM_WORKER_ENTRY: slurmFixtureWorker, FIXTURE_COMPLETIONS: completions, LLEM_SLURM_POLL_MS: '1000' };
      const out = path.join(root, 'out');
      const run = await llem(['run', yaml, '--launcher', 'slurm', '--detach', '--out', out, '--time', '10'], env);
      assert.equal(run.code, 0, run.stderr);
      dir = path.join(out, readdirSync(out)[0]!);
      await waitForManifest(dir, finished, 300_000, 'the first cycle');
      assert.equal(readManifest(dir).counts.completed, 2);

      const resume = await llem(['resume', dir, '--launcher', 'slurm', '--cycles', '3', '--no-tui', '--max-concurrent', '2', '--time', '10'], env);
      assert.equal(resume.code, 0, resume.stderr);
      assert.match(resume.stderr, /topped up from 1 to 3 cycles: 4 run\(s\) added/);
      assert.match(resume.stderr, /--array=2-5%2/);
      assert.match(resume.stderr, /study completed/);
      const m = readManifest(dir);
      assert.equal(m.n_cycles, 3);
      assert.equal(m.counts.completed, 6);
      assert.equal(m.status, 'completed');
      assert.deepEqual(m.runs.map((r) => r.cycle), [1, 1, 2, 2, 3, 3]);
      assert.deepEqual(m.runs.map((r) => r.attempts.length), [1, 1, 1, 1, 1, 1]);
      const plan = readPlan(dir);
      assert.equal(plan.execution.n_cycles, 3);
      assert.deepEqual(plan.order.map((r) => `${r.index}:${r.cycle}:${r.config_hash}`), m.runs.map((r) => `${r.index}:${r.cycle}:${r.config_hash}`));
      const subs = readSlurmState(dir).submissions;
      assert.deepEqual(subs.map((s) => s.indices), [[0, 1], [2, 3, 4, 5]]);
      assert.deepEqual(completionLines(completions).map((l) => l.split(':')[0]).sort(), ['0', '1', '2', '3', '4', '5']);

      // a count not above the study's: a warning, nothing submitted
      const same = await llem(['resume', dir, '--launcher', 'slurm', '--cycles', '2', '--no-tui'], env);
      assert.equal(same.code, 0, same.stderr);
      assert.match(same.stderr, /--cycles 2 is below the study's 3 cycles; nothing removed/);
      assert.match(same.stderr, /nothing to submit/);
      assert.equal(readSlurmState(dir).submissions.length, 2);
    } finally {
      await endSlurmStudy(dir, () => rmSync(root, { recursive: true, force: true }));
    }
  });

  it('llem status records a task cancelled while pending, once per poll interval, and says when Slurm is unreachable', async () => {
    const s = fixtureStudy([{ sleep_ms: 300_000 }, { sleep_ms: 100 }]);
    let jobId = '';
    try {
      const sub = await submitStudy(s.studyDir, { workerEntry: slurmFixtureWorker, time: '10', env: s.env, maxConcurrent: 1 });
      jobId = sub.jobId;
      await waitManifestOnly(s.studyDir, (m) => m.runs[0]!.status === 'running', 300_000, 'run 0 to start');
      scancelQuiet([`${jobId}_1`]);
      await waitTaskGone(jobId, 1);
      assert.equal(readManifest(s.studyDir).runs[1]!.status, 'pending', 'nothing but llem status polls in this test');

      const first = await llem(['status', s.studyDir], { ...process.env }, 120_000);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /1 interrupted, 1 running, 0 pending/);
      assert.match(first.stdout, /0001-\S+  interrupted  UserInterrupted/);
      assert.equal(readManifest(s.studyDir).runs[1]!.status, 'interrupted');
      const polledAt = pollCacheAt(s.studyDir);

      // within the interval: the shared cache answers, no squeue
      const second = await llem(['status', s.studyDir, '--json'], { ...process.env, LLEM_SLURM_POLL_MS: '600000' }, 120_000);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(JSON.parse(second.stdout).counts.interrupted, 1);
      assert.equal(pollCacheAt(s.studyDir), polledAt);

      // past the interval: polls again
      await sleep(1500);
      const third = await llem(['status', s.studyDir], { ...process.env, LLEM_SLURM_POLL_MS: '1000' }, 120_000);
      assert.equal(third.code, 0, third.stderr);
      assert.ok(pollCacheAt(s.studyDir) > polledAt);

      // no Slurm commands on this machine: the manifest as recorded, and a note why
      await sleep(1500);
      const blind = await llem(['status', s.studyDir], { ...process.env, PATH: '/nonexistent', LLEM_SLURM_POLL_MS: '1000' }, 120_000);
      assert.equal(blind.code, 0, blind.stderr);
      assert.match(blind.stderr, /note: Slurm not reachable from here \(squeue: .*\); showing the manifest as recorded/);
      assert.match(blind.stdout, /1 interrupted, 1 running/);
      await cancelStudy(s.studyDir);
    } finally {
      await endSlurmStudy(s.studyDir, s.cleanup);
    }
  });

  it('llem watch polls Slurm while open: a task cancelled while pending ends the view', async () => {
    const s = fixtureStudy([{ sleep_ms: 4000 }, { sleep_ms: 100 }]);
    let jobId = '';
    try {
      const sub = await submitStudy(s.studyDir, { workerEntry: slurmFixtureWorker, time: '10', env: s.env, maxConcurrent: 1 });
      jobId = sub.jobId;
      scancelQuiet([`${jobId}_1`]);
      await waitTaskGone(jobId, 1);
      const watch = await llem(['watch', s.studyDir, '--no-tui'], { ...process.env, LLEM_SLURM_POLL_MS: '1000' }, 400_000);
      assert.equal(watch.code, 130, watch.stdout + watch.stderr);
      assert.match(watch.stdout, /study interrupted: 1 completed, 0 failed, 0 skipped, 1 interrupted/);
      const m = readManifest(s.studyDir);
      assert.equal(m.runs[0]!.status, 'completed');
      assert.equal(m.runs[1]!.status, 'interrupted');
      assert.equal(m.runs[1]!.attempts.length, 0);
      assert.deepEqual(completionLines(s.completions).map((l) => l.split(':')[0]), ['0']);
    } finally {
      await endSlurmStudy(s.studyDir, s.cleanup);
    }
  });
});
