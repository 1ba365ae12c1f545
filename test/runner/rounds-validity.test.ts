// n_cycles: auto rounds (src/runner/rounds.ts) together with the validity gate, a retry and the
// cycle gap, through the local runner and the fixture worker: an invalid attempt never gives the
// stopping rule a value and does not end its round while it waits to be measured again; a run
// that stays invalid is a cycle spent without a value (toward max_cycles) and fails the study;
// a retried config's recorded stop is released and decided again (resume --retry-failed, and R
// while the study runs); each appended round starts after the cycle gap.
//
// The fixture's `invalid` mode reports `invalid_epot` (50) as the target metric of its invalid
// results, against scripted valid values around 1: a stop whose mean or n saw one is visibly off.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_VALIDITY, type ValidityPolicy } from '../../src/measure/validity.ts';
import { StudyRunner, statusJson } from '../../src/runner/index.ts';
import type { RunnerEvent } from '../../src/runner/events.ts';
import { localRunnerInfo } from '../../src/runner/launchers/local.ts';
import { finalStudyStatus } from '../../src/runner/transitions.ts';
import { readManifest, readPlan, readSummary } from '../../src/study-dir/read.ts';
import type { ConfigStop, Manifest } from '../../src/study-dir/schema.ts';
import type { CycleTarget } from '../../src/study/target.ts';
import type { ExecutionConfig } from '../../src/study/types.ts';
import { fixtureWorker, makePlan, tempStudy, waitFor } from './helpers.ts';

const target = (over: Partial<CycleTarget> = {}): CycleTarget => ({
  metric: 'energy_per_output_token_j',
  ci_half_width: { kind: 'relative', value: 0.05 },
  min_cycles: 3,
  max_cycles: 6,
  decide: null,
  notes: [],
  ...over,
});
const policy = (over: Partial<ValidityPolicy> = {}): ValidityPolicy => ({ ...DEFAULT_VALIDITY, ...over });

const QUIET = { epot_by_cycle: [1.0] };
const NOISY_VALUES = [1.0, 1.3, 0.8, 1.2, 0.9, 1.1];
const NOISY = { epot_by_cycle: NOISY_VALUES };
/** Invalid on the first attempt of `cycle` only, with a value far from the valid ones. */
const invalidOnceAt = (cycle: number) => ({ fixture_mode: 'invalid', invalid_attempts: 1, invalid_cycles: [cycle], invalid_epot: 50 });

function autoPlan(params: Array<Record<string, unknown>>, t: CycleTarget, execution: Partial<ExecutionConfig> = {}) {
  return makePlan(params, { nCycles: t.min_cycles, order: 'interleaved', execution: { target: t, validity: policy(), ...execution } });
}

function journal(studyDir: string): RunnerEvent[] {
  return readFileSync(path.join(studyDir, 'events.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as RunnerEvent);
}

/** One word per run transition, round decision (`round N+added`) and gap start / end. */
function story(events: RunnerEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (e.type === 'run_status') out.push(`${e.run.index}:${e.run.status}`);
    if (e.type === 'stopping' && e.round !== null) out.push(`round ${e.round}+${e.added.map((r) => r.index).join(',')}`);
    if (e.type === 'gap') out.push(`${e.kind}-gap`);
    if (e.type === 'gap_end') out.push(`${e.kind}-gap-end`);
  }
  return out;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const stopOf = (m: Manifest, hash: string): ConfigStop | undefined => m.rounds?.stops.find((s) => s.config_hash === hash);

describe('n_cycles: auto with the validity gate', () => {
  it('an invalid attempt is measured again before its round is decided, and its value never reaches the rule', async () => {
    // [noisy, quiet] interleaved: the quiet config's cycle 3 is the last run of round 1 (index 5),
    // the noisy config's cycle 4 the only run of round 2 (index 6); both invalid on their first attempt
    const s = tempStudy(autoPlan([{ ...NOISY, ...invalidOnceAt(4) }, { ...QUIET, ...invalidOnceAt(3) }], target()));
    try {
      const [noisy, quiet] = readPlan(s.studyDir).configs.map((c) => c.config_hash) as [string, string];
      const runner = new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000 });
      // the manifest on disk at each return to pending after an invalid attempt
      const whilePending: Array<{ index: number; m: Manifest }> = [];
      runner.subscribe((e) => {
        if (e.type === 'run_status' && e.run.status === 'pending' && e.run.attempts.at(-1)?.status === 'invalid') whilePending.push({ index: e.run.index, m: readManifest(s.studyDir) });
      });
      assert.equal(await runner.run(), 0);

      // re-measured at once; the round is decided only after the valid attempt
      assert.deepEqual(story(journal(s.studyDir)), [
        '0:running', '0:completed', '1:running', '1:completed', '2:running', '2:completed',
        '3:running', '3:completed', '4:running', '4:completed',
        '5:running', '5:invalid', '5:pending', '5:running', '5:completed',
        'round 1+6', '6:pending',
        '6:running', '6:invalid', '6:pending', '6:running', '6:completed',
        'round 2+7', '7:pending', '7:running', '7:completed',
        'round 3+8', '8:pending', '8:running', '8:completed',
        'round 4+',
      ]);
      assert.deepEqual(whilePending.map((p) => p.index), [5, 6]);
      const [at5, at6] = whilePending.map((p) => p.m) as [Manifest, Manifest];
      // run 5 pending again: round 1 not decided, nothing appended, no stop for the quiet config
      assert.equal(at5.rounds?.decided ?? 0, 0);
      assert.deepEqual(at5.rounds?.stops ?? [], []);
      assert.equal(at5.runs.length, 6);
      // run 6 pending again: round 2 not decided, the noisy config not stopped, nothing appended
      assert.equal(at6.rounds!.decided, 1);
      assert.deepEqual(at6.rounds!.stops.map((x) => x.config_hash), [quiet]);
      assert.equal(at6.runs.length, 7);

      const m = readManifest(s.studyDir);
      assert.equal(m.status, 'completed');
      assert.equal(m.runs.length, 9, 'quiet 3 cycles, noisy 6: a re-measured run is one cycle, not two');
      assert.equal(m.n_cycles, 6);
      for (const r of m.runs) assert.deepEqual(r.attempts.map((a) => a.status), r.index === 5 || r.index === 6 ? ['invalid', 'completed'] : ['completed'], `run ${r.index}`);
      assert.equal(m.rounds!.decided, 4);

      // the quiet config met the target on its three valid 1.0s (with the 50 it could not)
      const q = stopOf(m, quiet)!;
      assert.equal(q.reason, 'target_met');
      assert.deepEqual([q.cycles, q.n, q.mean, q.round], [3, 3, 1, 1]);
      assert.equal(q.half_width, 0);
      // the noisy config: six cycles toward max_cycles, six valid values, none of them the 50
      const n = stopOf(m, noisy)!;
      assert.equal(n.reason, 'max_cycles');
      assert.deepEqual([n.cycles, n.n, n.round], [6, 6, 4]);
      assert.ok(Math.abs(n.mean! - mean(NOISY_VALUES)) < 1e-9, `noisy mean ${n.mean}`);

      // no interval the runner published along the way (one per run that ended) saw an invalid value
      const progress = journal(s.studyDir).flatMap((e) => (e.type === 'stopping' ? e.configs : []));
      assert.ok(progress.length >= 9);
      for (const c of progress) assert.ok(c.mean === null || c.mean < 2, `${c.config_hash}: mean ${c.mean} (n ${c.n})`);

      const summary = readSummary(path.join(s.studyDir, 'summary.json'));
      const byHash = new Map(summary.configs.map((c) => [c.config_hash, c]));
      assert.equal(byHash.get(noisy)!.metrics.energy_per_output_token_j!.n, 6);
      assert.ok(Math.abs(byHash.get(noisy)!.metrics.energy_per_output_token_j!.mean! - mean(NOISY_VALUES)) < 1e-9);
      assert.equal(byHash.get(quiet)!.stopping!.reason, 'target_met');
      assert.equal(summary.invalid_attempts.length, 2);
    } finally {
      s.cleanup();
    }
  });

  it('a run still invalid after max_invalid_retries is a cycle spent without a value: it counts toward max_cycles, and the study ends failed', async () => {
    // the second config's cycle 2 (index 3) is invalid on every attempt; max_cycles 4
    const bValues = [1.0, 1.3, 0.8, 1.2];
    const s = tempStudy(
      autoPlan([QUIET, { epot_by_cycle: bValues, fixture_mode: 'invalid', invalid_cycles: [2], invalid_epot: 50 }], target({ max_cycles: 4 }), {
        validity: policy({ max_invalid_retries: 1 }),
      }),
    );
    try {
      const [quiet, b] = readPlan(s.studyDir).configs.map((c) => c.config_hash) as [string, string];
      assert.equal(await new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000 }).run(), 1);
      assert.deepEqual(story(journal(s.studyDir)).filter((x) => x.startsWith('3:') || x.startsWith('round')), [
        '3:running', '3:invalid', '3:pending', '3:running', '3:invalid',
        'round 1+6', 'round 2+',
      ]);
      const m = readManifest(s.studyDir);
      assert.equal(m.runs.length, 7, 'quiet 3 cycles; b: cycles 1–4, cycle 2 ended invalid (no fifth cycle)');
      const r3 = m.runs[3]!;
      assert.equal(r3.status, 'invalid');
      assert.deepEqual(r3.attempts.map((a) => a.status), ['invalid', 'invalid']);
      assert.deepEqual(m.runs.slice(6).map((r) => [r.config_hash, r.cycle]), [[b, 4]]);

      assert.equal(stopOf(m, quiet)!.reason, 'target_met');
      const stop = stopOf(m, b)!;
      assert.equal(stop.reason, 'max_cycles');
      assert.deepEqual([stop.cycles, stop.n, stop.round], [4, 3, 2], 'four cycles toward max_cycles, three valid values');
      assert.match(stop.detail, /max_cycles 4 reached/);
      assert.ok(Math.abs(stop.mean! - mean([1.0, 0.8, 1.2])) < 1e-9, `mean ${stop.mean} from the valid cycles 1, 3, 4`);

      // every config stopped, one run invalid: failed, on every surface
      assert.equal(m.status, 'failed');
      assert.equal(m.counts.invalid, 1);
      assert.equal(finalStudyStatus(m.runs, m.rounds), 'failed');
      assert.equal(statusJson(m, localRunnerInfo(s.studyDir)).status, 'failed');
      const summary = readSummary(path.join(s.studyDir, 'summary.json'));
      const bSummary = summary.configs.find((c) => c.config_hash === b)!;
      assert.equal(bSummary.stopping!.reason, 'max_cycles');
      assert.equal(bSummary.counts.invalid, 1);
      assert.equal(bSummary.metrics.energy_per_output_token_j!.n, 3);
    } finally {
      s.cleanup();
    }
  });
});

describe('n_cycles: auto: a retried config is decided again', () => {
  it('resume --retry-failed releases the recorded stop of a config whose runs failed; the rule decides it again', async () => {
    const s = tempStudy(autoPlan([QUIET, { fixture_mode: 'throw' }], target()));
    try {
      const [quiet, flaky] = readPlan(s.studyDir).configs.map((c) => c.config_hash) as [string, string];
      assert.equal(await new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000 }).run(), 1);
      const first = readManifest(s.studyDir);
      assert.equal(stopOf(first, flaky)!.reason, 'failed');
      const quietStop = stopOf(first, quiet)!;
      assert.equal(quietStop.reason, 'target_met');

      // a plain resume keeps the stop: nothing was put back
      assert.equal(await new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000, resume: {} }).run(), 1);
      assert.equal(stopOf(readManifest(s.studyDir), flaky)!.reason, 'failed');

      // --retry-failed, and the worker succeeds this time
      const runner = new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000, resume: { retryFailed: true }, env: { ...process.env, FIXTURE_MODE: 'ok' } });
      let atStart: Manifest | null = null;
      runner.subscribe((e) => {
        if (e.type === 'study_started') atStart = readManifest(s.studyDir);
      });
      assert.equal(await runner.run(), 0);
      // before any run: the failed config's stop is gone from rounds.json, the other one's kept as it was
      assert.ok(atStart, 'study_started seen');
      const started = atStart as Manifest;
      assert.equal(stopOf(started, flaky), undefined);
      assert.deepEqual(stopOf(started, quiet), quietStop);
      assert.deepEqual(started.runs.filter((r) => r.config_hash === flaky).map((r) => r.status), ['pending', 'pending', 'pending']);

      const m = readManifest(s.studyDir);
      assert.equal(m.status, 'completed');
      assert.equal(m.runs.length, 6, 'the retried cycles are the same runs; the rule needed no more');
      const again = stopOf(m, flaky)!;
      assert.equal(again.reason, 'target_met');
      assert.deepEqual([again.cycles, again.n, again.round], [3, 3, 2]);
      assert.deepEqual(stopOf(m, quiet), quietStop);
      assert.equal(m.rounds!.decided, 2);
      for (const r of m.runs.filter((x) => x.config_hash === flaky)) assert.deepEqual(r.attempts.map((a) => a.status), ['failed', 'completed']);
    } finally {
      s.cleanup();
    }
  });

  it('a retry (R) while the study runs releases the recorded stop of the retried config: it is decided again on its new values', async () => {
    // the second config is invalid on every first attempt with no re-measurement: it stops `failed`
    // after round 1 while the noisy one continues; R during round 2 measures it again (valid now)
    const gate = mkdtempSync(path.join(os.tmpdir(), 'llem-gate-'));
    const s = tempStudy(
      autoPlan([NOISY, { ...QUIET, fixture_mode: 'invalid', invalid_attempts: 1 }], target(), { validity: policy({ max_invalid_retries: 0 }) }),
    );
    try {
      const [noisy, flaky] = readPlan(s.studyDir).configs.map((c) => c.config_hash) as [string, string];
      const runner = new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000, env: { ...process.env, FIXTURE_GATE_DIR: gate } });
      const events: RunnerEvent[] = [];
      runner.subscribe((e) => events.push(e));
      const done = runner.run();
      for (let i = 0; i < 6; i++) writeFileSync(path.join(gate, `token-r1-${i}`), '');
      // run 6 (the noisy config's cycle 4) waits at the gate: round 1 is decided
      await waitFor(() => events.some((e) => e.type === 'run_status' && e.run.index === 6 && e.run.status === 'running'), 60_000, 'run 6 running');
      assert.equal(stopOf(readManifest(s.studyDir), flaky)!.reason, 'failed');
      const seen = events.length;
      runner.retryAll();
      // the CI column hears at once that the config is measured again (no stop), not at its next run
      const progress = events.slice(seen).find((e) => e.type === 'stopping' && e.configs.some((c) => c.config_hash === flaky));
      assert.ok(progress && progress.type === 'stopping', 'a progress event for the released config right after the retry');
      assert.notEqual(progress.configs.find((c) => c.config_hash === flaky)!.status, 'stopped');
      for (let i = 0; i < 20; i++) writeFileSync(path.join(gate, `token-more-${i}`), '');
      assert.equal(await done, 0);

      const m = readManifest(s.studyDir);
      for (const r of m.runs.filter((x) => x.config_hash === flaky)) assert.deepEqual(r.attempts.map((a) => a.status), ['invalid', 'completed']);
      const again = stopOf(m, flaky)!;
      assert.equal(again.reason, 'target_met', `decided again on three valid values: ${again.detail}`);
      assert.deepEqual([again.cycles, again.n], [3, 3]);
      assert.ok(again.round > 1);
      assert.equal(stopOf(m, noisy)!.reason, 'max_cycles');
      assert.equal(m.status, 'completed');
      const summary = readSummary(path.join(s.studyDir, 'summary.json'));
      assert.equal(summary.configs.find((c) => c.config_hash === flaky)!.stopping!.reason, 'target_met');
    } finally {
      s.cleanup();
      rmSync(gate, { recursive: true, force: true });
    }
  });
});

describe('n_cycles: auto and the cycle gap', () => {
  it('each appended round starts after the cycle gap; runs within a cycle after the config gap', async () => {
    const s = tempStudy(autoPlan([QUIET, NOISY], target(), { config_gap_seconds: 1, cycle_gap_seconds: 1 }));
    try {
      assert.equal(await new StudyRunner(s.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000, secondMs: 20 }).run(), 0);
      const run = (i: number) => [`${i}:running`, `${i}:completed`];
      const cycleGap = ['cycle-gap', 'cycle-gap-end'];
      const configGap = ['config-gap', 'config-gap-end'];
      assert.deepEqual(story(journal(s.studyDir)), [
        ...run(0), ...configGap, ...run(1), ...cycleGap,
        ...run(2), ...configGap, ...run(3), ...cycleGap,
        ...run(4), ...configGap, ...run(5),
        'round 1+6', '6:pending', ...cycleGap, ...run(6),
        'round 2+7', '7:pending', ...cycleGap, ...run(7),
        'round 3+8', '8:pending', ...cycleGap, ...run(8),
        'round 4+',
      ]);
    } finally {
      s.cleanup();
    }
  });
});
