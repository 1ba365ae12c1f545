// The validity gate under the slurm launcher, on the real single-node Slurm: a run the gate judges
// invalid is measured again inside the same array task (same node, same GPUs), after the config
// gap, as a new attempt of the same (config, cycle); it ends invalid when its re-measurements are
// spent, and the study then ends failed.
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_VALIDITY } from '../../src/measure/validity.ts';
import { submitStudy } from '../../src/runner/slurm/launcher.ts';
import { readManifest, readSlurmState, readSummary } from '../../src/study-dir/read.ts';
import { commandStudy, fakeGpuStudies } from '../worker/helpers.ts';
import { fixtureWorkerPath, makePlan, tempStudy } from '../runner/helpers.ts';
import { endSlurmStudy, finished, journalEvents, llem, slurmDown, slurmUp, waitForManifest } from './cluster-helpers.ts';

const studies = fakeGpuStudies();

describe('the validity gate with --launcher slurm', { concurrency: true, timeout: 900_000 }, () => {
  before(() => slurmUp());
  after(() => slurmDown());

  it('llem run --launcher slurm: a run invalid on its first attempt is measured again in its task and completes', async () => {
    const root = studies.root();
    const yaml = path.join(root, 'study.yaml');
    writeFileSync(yaml, commandStudy({ n: 8, env: { FIXTURE_FAIL_ONCE: `3:${path.join(root, 'failed-once')}` } }));
    const env: NodeJS.ProcessEnv = { ...process.env, ...studies.gpu(root, [{ power: [[0, 200_000]] }]), LLEM_SLURM_POLL_MS: '1000' };
    delete env.CUDA_VISIBLE_DEVICES;
    const out = path.join(root, 'out');
    const run = await llem(['run', yaml, '--launcher', 'slurm', '--detach', '--yes', '--out', out, '--time', '10'], env);
    assert.equal(run.code, 0, run.stderr);
    const [jobId, dir] = run.stdout.trim().split(' ');
    try {
      const watch = await llem(['watch', dir!, '--no-tui'], env);
      assert.equal(watch.code, 0, watch.stdout + watch.stderr);
      const m = readManifest(dir!);
      const r = m.runs[0]!;
      assert.deepEqual(r.attempts.map((a) => a.status), ['invalid', 'completed']);
      assert.equal(m.status, 'completed');
      assert.match(watch.stdout, /study completed: 1 completed, 0 failed, 0 skipped, 0 interrupted, 0 invalid/);
      assert.deepEqual(r.attempts[0]!.validity!.reasons.map((x) => x.code), ['failed_requests']);
      // both attempts by the one task (its `llem worker` pid) of the one submission: re-measured
      // in-task, not resubmitted
      assert.match(r.attempts[1]!.message ?? '', new RegExp(`Slurm task ${jobId}_0 on `));
      assert.ok(r.attempts[0]!.pid !== null && r.attempts[0]!.pid === r.attempts[1]!.pid, `one task: pids ${r.attempts.map((a) => a.pid)}`);
      assert.equal(readSlurmState(dir!).submissions.length, 1);
      const story = journalEvents(dir!).filter((e) => e.type === 'run_status').map((e) => e.run.status);
      assert.deepEqual(story.slice(-5), ['running', 'invalid', 'pending', 'running', 'completed']);
      // both results on disk; the summary (written by `llem results --recompute`) uses the second
      assert.deepEqual(readdirSync(path.join(dir!, 'runs')).sort(), [path.basename(r.attempts[0]!.run_dir), path.basename(r.attempts[1]!.run_dir)].sort());
      const results = await llem(['results', dir!, '--recompute'], env);
      assert.equal(results.code, 0, results.stderr);
      const summary = readSummary(path.join(dir!, 'summary.json'));
      assert.equal(summary.configs[0]!.runs.length, 1);
      assert.match(summary.configs[0]!.runs[0]!, /-a2$/);
      assert.equal(summary.invalid_attempts.length, 1);
    } finally {
      await endSlurmStudy(dir, () => {}, [jobId!]);
    }
  });

  it('a run invalid on every attempt ends invalid after its re-measurements in one task; the study ends failed; status --json has the reasons', async () => {
    const t = tempStudy(
      makePlan([{ fixture_mode: 'invalid' }, { fixture_mode: 'ok' }], {
        execution: { experiment_timeout_seconds: 600, stall_timeout_seconds: 60, validity: { ...DEFAULT_VALIDITY, max_invalid_retries: 1 } },
      }),
    );
    const jobs: string[] = [];
    try {
      const sub = await submitStudy(t.studyDir, { workerEntry: fixtureWorkerPath, time: '10', maxConcurrent: 2 });
      jobs.push(sub.jobId);
      const m = await waitForManifest(t.studyDir, finished, 400_000, 'both runs');
      assert.equal(m.status, 'failed');
      assert.equal(m.runs[1]!.status, 'completed');
      const r = m.runs[0]!;
      assert.equal(r.status, 'invalid');
      assert.equal(r.result, null);
      assert.deepEqual(r.attempts.map((a) => a.status), ['invalid', 'invalid']);
      for (const a of r.attempts) assert.match(a.message ?? '', /^invalid: failed_requests: 37\.5 %/);
      const status = await llem(['status', t.studyDir, '--json'], process.env);
      const json = JSON.parse(status.stdout);
      assert.equal(json.status, 'failed');
      assert.equal(json.counts.invalid, 1);
      assert.equal(json.runs[0].invalid_attempts, 2);
      assert.deepEqual(json.runs[0].validity.reasons.map((x: { code: string }) => x.code), ['failed_requests']);
      // a poll after the end changes nothing: an invalid run is final for Slurm's account too
      const before = JSON.stringify(readManifest(t.studyDir).runs);
      await llem(['status', t.studyDir], process.env);
      assert.equal(JSON.stringify(readManifest(t.studyDir).runs), before);
    } finally {
      await endSlurmStudy(t.studyDir, t.cleanup, jobs);
    }
  });
});
