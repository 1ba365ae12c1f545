// Against the real single-node Slurm: n_cycles: auto submits one round at a time. The array task
// that records a round's last run decides the round (src/runner/rounds.ts, in the same critical
// section as its record) and submits the next as a new job array with the options of the study's
// latest submission (src/runner/slurm/launcher.ts submitNextRound); nothing else has to follow the
// study. When that submission fails, the round's runs are recorded interrupted with the reason, the
// study settles, and `llem resume --launcher slurm` continues the rule to the same decisions.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readHistory } from '../../src/history/index.ts';
import { readManifest, readSlurmState } from '../../src/study-dir/read.ts';
import type { Manifest } from '../../src/study-dir/schema.ts';
import { submitStudy } from '../../src/runner/slurm/launcher.ts';
import type { CycleTarget } from '../../src/study/target.ts';
import { makePlan, tempStudy } from '../runner/helpers.ts';
import { endSlurmStudy, llem, sleep, slurmDown, slurmFixtureWorker, slurmUp, waitForManifest, finished } from './cluster-helpers.ts';

const target: CycleTarget = { metric: 'energy_per_output_token_j', ci_half_width: { kind: 'relative', value: 0.05 }, min_cycles: 3, max_cycles: 5, decide: null, notes: [] };
const QUIET = { epot_by_cycle: [1.0] };
const NOISY = { epot_by_cycle: [1.0, 1.3, 0.8, 1.2, 0.9] };

function autoStudy() {
  return tempStudy(makePlan([QUIET, NOISY], { nCycles: 3, execution: { target, experiment_timeout_seconds: 600, stall_timeout_seconds: 60 } }));
}

/** The manifest only: no Slurm poll, so whatever submits the rounds here is the array tasks themselves. */
async function waitManifestOnly(studyDir: string, done: (m: Manifest) => boolean, timeoutMs: number, what: string): Promise<Manifest> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = readManifest(studyDir);
    if (done(m)) return m;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; counts ${JSON.stringify(m.counts)}, runs ${m.runs.length}`);
    await sleep(500);
  }
}

describe('n_cycles: auto on Slurm: one round at a time', { concurrency: true, timeout: 900_000 }, () => {
  before(() => slurmUp());
  after(() => slurmDown());

  it('the task that ends a round submits the next one; the rule runs to its end with no follower', async () => {
    const s = autoStudy();
    try {
      // the run history of this study's tasks (the next rounds' tasks inherit it from the task that submits them)
      const state = path.join(s.root, 'state');
      const first = await submitStudy(s.studyDir, { workerEntry: slurmFixtureWorker, time: '10', env: { ...process.env, LLEM_STATE_DIR: state } });
      assert.deepEqual(first.indices, [0, 1, 2, 3, 4, 5]);
      const m = await waitManifestOnly(s.studyDir, (x) => x.status === 'completed', 600_000, 'every round');
      const plan = JSON.parse(readFileSync(path.join(s.studyDir, 'plan.json'), 'utf8')) as { configs: Array<{ config_hash: string }> };
      const [quiet, noisy] = plan.configs.map((c) => c.config_hash);
      assert.equal(m.runs.length, 3 + 5);
      assert.ok(m.runs.every((r) => r.status === 'completed' && r.attempts.length === 1));
      assert.deepEqual(
        m.rounds!.stops.map((x) => [x.config_hash, x.reason, x.cycles]),
        [[quiet, 'target_met', 3], [noisy, 'max_cycles', 5]],
      );
      // one job array per round: the first from here, each later one from a task, with its options
      const subs = readSlurmState(s.studyDir).submissions;
      assert.deepEqual(subs.map((x) => x.indices), [[0, 1, 2, 3, 4, 5], [6], [7]]);
      for (const sub of subs.slice(1)) {
        assert.equal(sub.worker_entry, slurmFixtureWorker);
        assert.equal(sub.time_limit, first.timeLimit);
      }
      // the tasks recorded their runs in the run history (the same attempt path as the local runner)
      assert.equal(readHistory(path.join(state, 'history')).records.length, 8);
      const status = await llem(['status', s.studyDir, '--json'], { ...process.env }, 120_000);
      const st = JSON.parse(status.stdout) as { status: string; stopping: { rounds: number; configs: Array<{ reason: string }> } };
      assert.equal(st.status, 'completed');
      assert.deepEqual(st.stopping.configs.map((c) => c.reason), ['target_met', 'max_cycles']);
    } finally {
      await endSlurmStudy(s.studyDir, s.cleanup);
    }
  });

  it('a round that cannot be submitted is recorded interrupted; resume --launcher slurm continues the rule', async () => {
    const s = autoStudy();
    try {
      // the tasks of this array find no sbatch on their PATH: the next round cannot be submitted from them
      await submitStudy(s.studyDir, { workerEntry: slurmFixtureWorker, time: '10', sbatchArgs: ['--export=ALL,PATH=/nonexistent'] });
      const stuck = await waitForManifest(s.studyDir, finished, 600_000, 'the first round and the failed submission');
      assert.equal(stuck.runs.length, 7, 'the next round was appended');
      assert.equal(stuck.runs[6]!.status, 'interrupted');
      assert.equal(stuck.status, 'interrupted');
      const events = readFileSync(path.join(s.studyDir, 'events.jsonl'), 'utf8');
      assert.match(events, /the next round of n_cycles: auto could not be submitted/);

      const env = { ...process.env, LLEM_WORKER_ENTRY: slurmFixtureWorker };
      const resumed = await llem(['resume', s.studyDir, '--launcher', 'slurm', '--detach', '--time', '10'], env, 120_000);
      assert.equal(resumed.code, 0, resumed.stderr);
      const m = await waitManifestOnly(s.studyDir, (x) => x.status === 'completed', 600_000, 'the remaining rounds');
      assert.equal(m.runs.length, 8);
      assert.deepEqual(m.rounds!.stops.map((x) => [x.reason, x.cycles]), [['target_met', 3], ['max_cycles', 5]]);
    } finally {
      await endSlurmStudy(s.studyDir, s.cleanup);
    }
  });
});
