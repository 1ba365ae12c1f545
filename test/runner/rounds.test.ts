// n_cycles: auto in the local runner (src/runner/rounds.ts, called from the scheduler): rounds are
// appended until every config stopped, each stop is recorded with its reason in the manifest,
// summary.json and `status --json`, a quit mid-round resumes where the rule stood, failed runs
// spend the budget, the run history is written by the runner, and `--cycles` is refused.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readHistory } from '../../src/history/index.ts';
import { RunnerInputError, StudyRunner, statusJson } from '../../src/runner/index.ts';
import { localRunnerInfo } from '../../src/runner/launchers/local.ts';
import { readManifest, readPlan, readSummary } from '../../src/study-dir/read.ts';
import type { CycleTarget } from '../../src/study/target.ts';
import type { RunnerEvent } from '../../src/runner/events.ts';
import { fixtureWorker, makePlan, tempStudy } from './helpers.ts';

function target(over: Partial<CycleTarget> = {}): CycleTarget {
  return { metric: 'energy_per_output_token_j', ci_half_width: { kind: 'relative', value: 0.05 }, min_cycles: 3, max_cycles: 6, decide: null, notes: [], ...over };
}

const QUIET = { epot_by_cycle: [1.0] };
const NOISY = { epot_by_cycle: [1.0, 1.3, 0.8, 1.2, 0.9, 1.1] };

function autoPlan(params: Array<Record<string, unknown>>, t: CycleTarget = target(), order: 'interleaved' | 'shuffled' = 'interleaved') {
  return makePlan(params, { nCycles: t.min_cycles, order, execution: { target: t } });
}

function journal(studyDir: string): RunnerEvent[] {
  return readFileSync(path.join(studyDir, 'events.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as RunnerEvent);
}

describe('n_cycles: auto rounds (local runner)', () => {
  it('a quiet config stops at min_cycles (target_met), a noisy one gets rounds until max_cycles; every stop recorded', async () => {
    const s = tempStudy(autoPlan([QUIET, NOISY]));
    try {
      const code = await new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000 }).run();
      assert.equal(code, 0);
      const m = readManifest(s.studyDir);
      const plan = readPlan(s.studyDir);
      const [quiet, noisy] = plan.configs.map((c) => c.config_hash) as [string, string];
      assert.equal(m.status, 'completed');
      assert.equal(m.runs.length, 3 + 6, 'quiet: 3 runs; noisy: 3 + 3 rounds');
      assert.equal(plan.order.length, m.runs.length, 'plan.json holds every appended run');
      assert.equal(m.n_cycles, 6);
      assert.deepEqual(m.runs.slice(6).map((r) => [r.config_hash, r.cycle]), [[noisy, 4], [noisy, 5], [noisy, 6]]);
      assert.ok(m.runs.every((r) => r.status === 'completed'));
      const stop = (h: string) => m.rounds!.stops.find((x) => x.config_hash === h)!;
      assert.equal(stop(quiet).reason, 'target_met');
      assert.equal(stop(quiet).cycles, 3);
      assert.equal(stop(quiet).round, 1);
      assert.equal(stop(noisy).reason, 'max_cycles');
      assert.equal(stop(noisy).cycles, 6);
      assert.match(stop(noisy).detail, /max_cycles 6 reached/);
      assert.equal(m.rounds!.decided, 4, 'rounds after cycles 3, 4, 5 and 6');

      // summary.json says which, and why
      const summary = readSummary(path.join(s.studyDir, 'summary.json'));
      assert.deepEqual(summary.protocol.target, { metric: 'energy_per_output_token_j', ci_half_width: '±5 % of the mean', min_cycles: 3, max_cycles: 6, decide: null });
      const byHash = new Map(summary.configs.map((c) => [c.config_hash, c]));
      assert.equal(byHash.get(quiet)!.stopping!.reason, 'target_met');
      assert.equal(byHash.get(noisy)!.stopping!.reason, 'max_cycles');
      assert.equal(byHash.get(noisy)!.metrics.energy_per_output_token_j!.n, 6);
      assert.equal(byHash.get(noisy)!.partial, false, 'every planned run completed');

      // status --json: per config, the reason and the cycles
      const st = statusJson(m, localRunnerInfo(s.studyDir));
      assert.equal(st.status, 'completed');
      assert.deepEqual(
        st.stopping!.configs.map((c) => [c.config_hash, c.reason, c.cycles]),
        [[quiet, 'target_met', 3], [noisy, 'max_cycles', 6]],
      );

      // the journal carries each round's decision and the runs it added (what `llem watch` shows)
      const rounds = journal(s.studyDir).filter((e): e is Extract<RunnerEvent, { type: 'stopping' }> => e.type === 'stopping' && e.round !== null);
      assert.deepEqual(rounds.map((e) => [e.round, e.added.map((r) => r.index)]), [[1, [6]], [2, [7]], [3, [8]], [4, []]]);
      const progress = journal(s.studyDir).filter((e) => e.type === 'stopping' && e.round === null);
      assert.equal(progress.length, 9, 'one interval update per run that ended');
    } finally {
      s.cleanup();
    }
  });

  it('shuffled: each round is ordered by the recorded seed, as that cycle of a fixed plan would be', async () => {
    const params = [NOISY, { epot_by_cycle: [2.0, 2.6, 1.6, 2.4, 1.8, 2.2] }, QUIET, { epot_by_cycle: [3.0, 3.9, 2.4, 3.6, 2.7, 3.3] }];
    const s = tempStudy(autoPlan(params, target(), 'shuffled'));
    try {
      assert.equal(await new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000 }).run(), 0);
      const plan = readPlan(s.studyDir);
      const { permuteIndex } = await import('../../src/study/order.ts');
      for (const cycle of [4, 5, 6]) {
        const got = plan.order.filter((r) => r.cycle === cycle).map((r) => r.config_hash);
        const fixed = plan.configs.map((_, p) => plan.configs[permuteIndex(p, plan.configs.length, plan.cycle_seed, cycle)]!.config_hash);
        assert.deepEqual(got, fixed.filter((h) => got.includes(h)), `cycle ${cycle} in the permutation of the seed`);
        assert.equal(got.length, 3, 'the three noisy configs continue');
      }
    } finally {
      s.cleanup();
    }
  });

  it('failed runs spend the budget: a config with no valid value stops `failed` after min_cycles; the study exits 1', async () => {
    const s = tempStudy(autoPlan([QUIET, { fixture_mode: 'throw' }]));
    try {
      assert.equal(await new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000 }).run(), 1);
      const m = readManifest(s.studyDir);
      assert.equal(m.runs.length, 6, 'no round appended: both configs decided after min_cycles');
      assert.deepEqual(m.rounds!.stops.map((x) => x.reason).sort(), ['failed', 'target_met']);
      assert.equal(m.status, 'failed');
    } finally {
      s.cleanup();
    }
  });

  it('a quit mid-round is resumed where the rule stood: same rounds, same stops, nothing measured twice', async () => {
    const s = tempStudy(autoPlan([QUIET, NOISY]));
    try {
      const first = new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000 });
      // quit once the first appended run (round 2's) has started
      first.subscribe((e) => {
        if (e.type === 'run_status' && e.run.index === 7 && e.run.status === 'running') first.quitAfterCurrent(true);
      });
      assert.equal(await first.run(), 130);
      const mid = readManifest(s.studyDir);
      assert.equal(mid.rounds!.decided, 2);
      assert.equal(mid.status, 'interrupted');
      assert.equal(statusJson(mid, localRunnerInfo(s.studyDir)).stopping!.configs.filter((c) => c.reason).length, 1, 'quiet stopped, noisy still measuring');

      assert.equal(await new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000, resume: {} }).run(), 0);
      const m = readManifest(s.studyDir);
      assert.equal(m.runs.length, 9);
      assert.equal(m.rounds!.decided, 4);
      assert.deepEqual(m.rounds!.stops.map((x) => [x.reason, x.cycles]), [['target_met', 3], ['max_cycles', 6]]);
      for (const r of m.runs) assert.equal(r.attempts.length, 1, `${r.run_id} measured once`);
    } finally {
      s.cleanup();
    }
  });

  it('a runner killed between the last run of a round and the next round: resume decides the same round', async () => {
    const s = tempStudy(autoPlan([QUIET, NOISY]));
    try {
      // run only the first round, as a fixed study would, then put the target back: the manifest
      // is where a runner killed right after the round's last run leaves it
      const plan = readPlan(s.studyDir);
      const { writePlan } = await import('../../src/runner/study-dir.ts');
      writePlan(s.studyDir, { ...plan, execution: { ...plan.execution, target: null } });
      assert.equal(await new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000 }).run(), 0);
      writePlan(s.studyDir, plan);
      const { ManifestStore } = await import('../../src/runner/manifest.ts');
      const store = ManifestStore.open(s.studyDir);
      store.setStatus('running');
      store.commit();
      store.close();
      assert.equal(statusJson(readManifest(s.studyDir), { launcher: 'local', pid: null, host: null, alive: false, since: null, slurm_jobs: [] }).status, 'stopped', 'no stop recorded yet: not completed');

      assert.equal(await new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000, resume: {} }).run(), 0);
      const m = readManifest(s.studyDir);
      assert.equal(m.runs.length, 9);
      assert.deepEqual(m.rounds!.stops.map((x) => x.reason), ['target_met', 'max_cycles']);
    } finally {
      s.cleanup();
    }
  });

  it('the stops live in rounds.json, written when a round changes them, not with every manifest rewrite', async () => {
    const s = tempStudy(autoPlan([QUIET, NOISY]));
    try {
      assert.equal(await new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000 }).run(), 0);
      const header = readFileSync(path.join(s.studyDir, 'manifest.json'), 'utf8').split('\n')[0]!;
      assert.match(header, /"rounds_file":"rounds.json"/);
      assert.doesNotMatch(header, /target_met/);
      const roundsFile = path.join(s.studyDir, 'rounds.json');
      const ino = statSync(roundsFile).ino;
      const { ManifestStore } = await import('../../src/runner/manifest.ts');
      const store = ManifestStore.open(s.studyDir);
      store.updateRun(0, (r) => (r.error_type = null));
      store.commit();
      store.close();
      assert.equal(statSync(roundsFile).ino, ino, 'a run transition leaves rounds.json alone');
      assert.deepEqual(readManifest(s.studyDir).rounds!.stops.map((x) => x.reason), ['target_met', 'max_cycles']);
      writeFileSync(roundsFile, '{"decided": "x"}');
      assert.throws(() => readManifest(s.studyDir), /rounds\.json.*decided/s, 'a damaged rounds.json is named with its field');
    } finally {
      s.cleanup();
    }
  });

  it('resume --cycles is refused for n_cycles: auto (its rule decides the cycles)', async () => {
    const s = tempStudy(autoPlan([QUIET]));
    try {
      await assert.rejects(new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, resume: { cycles: 5 } }).run(), (err: Error) => err instanceof RunnerInputError && /n_cycles: auto/.test(err.message));
    } finally {
      s.cleanup();
    }
  });
});

describe('run history written by the runner', () => {
  it('every completed run of a study is recorded (per host file under LLEM_STATE_DIR), failed ones are not', async () => {
    const state = mkdtempSync(path.join(os.tmpdir(), 'llem-history-runner-'));
    const before = process.env.LLEM_STATE_DIR;
    process.env.LLEM_STATE_DIR = state;
    const s = tempStudy(makePlan([{ fixture_mode: 'ok' }, { fixture_mode: 'throw' }], { nCycles: 2 }));
    try {
      assert.equal(await new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000 }).run(), 1);
      const h = readHistory(path.join(state, 'history'));
      assert.deepEqual(h.problems, []);
      assert.equal(h.records.length, 2, 'the two completed runs');
      const okHash = readPlan(s.studyDir).configs[0]!.config_hash;
      for (const r of h.records) {
        assert.equal(r.config_hash, okHash);
        assert.equal(r.study_hash, readPlan(s.studyDir).study_hash);
        assert.ok(r.run_wall_s !== null && r.run_wall_s > 0, 'the parent saw the run take time');
      }
    } finally {
      if (before === undefined) delete process.env.LLEM_STATE_DIR;
      else process.env.LLEM_STATE_DIR = before;
      s.cleanup();
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('a history that cannot be written is a warning; the run still completes', async () => {
    const before = process.env.LLEM_STATE_DIR;
    // a file where the state dir should be: nothing can be created under it
    const blocker = path.join(mkdtempSync(path.join(os.tmpdir(), 'llem-history-blocked-')), 'file');
    (await import('node:fs')).writeFileSync(blocker, 'not a dir');
    process.env.LLEM_STATE_DIR = blocker;
    const s = tempStudy(makePlan([{ fixture_mode: 'ok' }], { nCycles: 1 }));
    try {
      const runner = new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000 });
      const warnings: string[] = [];
      runner.subscribe((e) => e.type === 'warning' && warnings.push(e.message));
      assert.equal(await runner.run(), 0);
      assert.equal(readManifest(s.studyDir).counts.completed, 1);
      assert.ok(warnings.some((w) => /history/.test(w)), `warned: ${warnings.join(' | ')}`);
      assert.ok(!existsSync(path.join(blocker, 'history')));
    } finally {
      if (before === undefined) delete process.env.LLEM_STATE_DIR;
      else process.env.LLEM_STATE_DIR = before;
      s.cleanup();
      rmSync(path.dirname(blocker), { recursive: true, force: true });
    }
  });
});
