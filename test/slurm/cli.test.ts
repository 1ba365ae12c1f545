// `llem run --launcher slurm --detach`, `llem watch`, `llem cancel`, `llem resume --launcher slurm`
// as a user types them, against the real single-node Slurm, with the fixture worker.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readManifest } from '../../src/study-dir/read.ts';
import { readSlurmState } from '../../src/study-dir/read.ts';
import { completionLines, endSlurmStudiesUnder, llem, slurmDown, slurmFixtureWorker, slurmUp, waitForManifest } from './cluster-helpers.ts';

const STUDY_YAML = `name: slurm-cli
backend: llamacpp
model: builtin:tiny-random
dataset: builtin
n: 1
max_new_tokens: 1
sweep:
  batch_size: [1, 2]
execution:
  n_cycles: 3
  cycle_order: interleaved
  config_gap_seconds: 0
  cycle_gap_seconds: 0
`;

function setup() {
  const root = mkdtempSync(path.join(os.tmpdir(), 'llem-slurm-cli-'));
  const yaml = path.join(root, 'study.yaml');
  writeFileSync(yaml, STUDY_YAML);
  const completions = path.join(root, 'completions.txt');
  const env = { ...process.env, LLEM_WORKER_ENTRY: slurmFixtureWorker, FIXTURE_COMPLETIONS: completions, LLEM_SLURM_POLL_MS: '1000' };
  return { root, yaml, completions, env, studyDirIn: (out: string) => path.join(out, readdirSync(out)[0]!) };
}

describe('llem commands with --launcher slurm', { concurrency: true, timeout: 900_000 }, () => {
  before(() => slurmUp());
  after(() => slurmDown());

  it('run --detach returns at once; llem watch follows the array to the end', async () => {
    const s = setup();
    try {
      const out = path.join(s.root, 'out');
      const run = await llem(['run', s.yaml, '--launcher', 'slurm', '--detach', '--out', out, '--max-concurrent', '2', '--time', '10'], s.env);
      assert.equal(run.code, 0, run.stderr);
      const [jobId, dir] = run.stdout.trim().split(' ');
      assert.match(jobId!, /^\d+$/);
      assert.equal(dir, s.studyDirIn(out));
      assert.match(run.stderr, /--array=0-5%2/);
      const watch = await llem(['watch', dir!, '--no-tui'], s.env);
      assert.equal(watch.code, 0, watch.stderr);
      const completedLines = watch.stdout.split('\n').filter((l) => / completed/.test(l) && !/^study/.test(l));
      assert.equal(completedLines.length, 6, watch.stdout);
      assert.match(watch.stdout, /study completed: 6 completed/);
      assert.equal(readManifest(dir!).counts.completed, 6);
      assert.equal(completionLines(s.completions).length, 6);
    } finally {
      await endSlurmStudiesUnder(s.root, () => rmSync(s.root, { recursive: true, force: true }));
    }
  });

  it('cancel mid-study, then resume --launcher slurm reruns only what is not completed', async () => {
    const s = setup();
    const env = { ...s.env };
    try {
      const out = path.join(s.root, 'out');
      // slow runs on the first attempt so that cancel finds work in flight
      const yaml = path.join(s.root, 'slow.yaml');
      writeFileSync(yaml, STUDY_YAML.replace('name: slurm-cli', 'name: slurm-cancel'));
      const run = await llem(['run', yaml, '--launcher', 'slurm', '--detach', '--out', out, '--max-concurrent', '1', '--time', '10'], {
        ...env,
        FIXTURE_SLEEP_ATTEMPT1_MS: '6000',
      });
      assert.equal(run.code, 0, run.stderr);
      const dir = run.stdout.trim().split(' ')[1]!;
      await waitForManifest(dir, (m) => m.counts.completed >= 1, 300_000, 'a first completed run');
      const cancel = await llem(['cancel', dir], env);
      assert.equal(cancel.code, 0, cancel.stderr);
      const afterCancel = readManifest(dir);
      assert.equal(afterCancel.counts.pending + afterCancel.counts.running, 0);
      assert.ok(afterCancel.counts.interrupted >= 1, JSON.stringify(afterCancel.counts));
      const completedBefore = afterCancel.runs.filter((r) => r.status === 'completed').map((r) => r.index);

      const resume = await llem(['resume', dir, '--launcher', 'slurm', '--no-tui', '--max-concurrent', '3', '--time', '10'], env);
      assert.equal(resume.code, 0, resume.stderr);
      assert.match(resume.stderr, /study completed/);
      const m = readManifest(dir);
      assert.equal(m.counts.completed, 6);
      assert.equal(m.status, 'completed');
      for (const i of completedBefore) assert.equal(m.runs[i]!.attempts.length, 1, `completed run ${i} was not rerun`);
      const perRun = new Map<string, number>();
      for (const l of completionLines(s.completions)) perRun.set(l.split(':')[0]!, (perRun.get(l.split(':')[0]!) ?? 0) + 1);
      assert.equal(perRun.size, 6);
      assert.ok([...perRun.values()].every((n) => n === 1), 'each run completed exactly once');
      assert.equal(readSlurmState(dir).submissions.length, 2);
    } finally {
      await endSlurmStudiesUnder(s.root, () => rmSync(s.root, { recursive: true, force: true }));
    }
  });

  it('refuses slurm-only flags without --launcher slurm, and a study never sent to Slurm for cancel', async () => {
    const s = setup();
    try {
      const bad = await llem(['run', s.yaml, '--partition', 'debug', '--out', path.join(s.root, 'o')], s.env, 120_000);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--partition needs --launcher slurm/);
      const badTime = await llem(['run', s.yaml, '--launcher', 'slurm', '--time', 'soon', '--out', path.join(s.root, 'o')], s.env, 120_000);
      assert.equal(badTime.code, 2);
      assert.match(badTime.stderr, /--time "soon"/);
      // s.root holds no plan.json: refused as not a study dir (a real local study: test/unit/cli-bad-input.test.ts)
      const cancel = await llem(['cancel', s.root], s.env, 120_000);
      assert.equal(cancel.code, 2);
      assert.match(cancel.stderr, /not a study directory/);
    } finally {
      await endSlurmStudiesUnder(s.root, () => rmSync(s.root, { recursive: true, force: true }));
    }
  });
});
