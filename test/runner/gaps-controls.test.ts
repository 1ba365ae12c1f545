// Gaps at true cycle boundaries for each order, cooldown, and the controls (pause, skip, retry,
// quit-after-current, skip-gap) against real fixture children.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StudyRunner, trueCycleBoundaryBetween } from '../../src/runner/index.ts';
import { readManifest } from '../../src/study-dir/read.ts';
import type { RunnerEvent } from '../../src/runner/events.ts';
import type { CycleOrder } from '../../src/study/types.ts';
import { fixtureWorker, makePlan, orderFor, tempStudy } from './helpers.ts';

const hashes = ['a', 'b', 'c'];
const boundaryTable: Array<{ order: CycleOrder; expectCycleGapAfter: number[] }> = [
  // A1 A2 B1 B2 C1 C2: no point where whole cycles are done
  { order: 'sequential', expectCycleGapAfter: [] },
  // A1 B1 C1 | A2 B2 C2
  { order: 'interleaved', expectCycleGapAfter: [2] },
  // C1 B1 A1 | A2 B2 C2 (a different order per cycle, same boundaries)
  { order: 'shuffled', expectCycleGapAfter: [2] },
];

for (const { order, expectCycleGapAfter } of boundaryTable) {
  test(`true cycle boundaries, ${order} order`, () => {
    const runs = orderFor(hashes, 2, order);
    const found = runs.slice(0, -1).map((r) => r.index).filter((i) => trueCycleBoundaryBetween(runs, i, i + 1));
    assert.deepEqual(found, expectCycleGapAfter);
  });
}

test('after a retry skips ahead, a boundary anywhere between the two runs counts', () => {
  const runs = orderFor(hashes, 3, 'interleaved');
  assert.equal(trueCycleBoundaryBetween(runs, 0, 4), true);
  assert.equal(trueCycleBoundaryBetween(runs, 3, 5), false);
  assert.equal(trueCycleBoundaryBetween(runs, 5, 5), false);
});

for (const order of ['sequential', 'interleaved', 'shuffled'] as const) {
  test(`the runner waits a cycle gap only at true cycle boundaries (${order})`, async () => {
    const t = tempStudy(
      makePlan([{ fixture_mode: 'ok' }, { fixture_mode: 'ok' }], {
        nCycles: 2,
        order,
        execution: { config_gap_seconds: 1, cycle_gap_seconds: 2 },
      }),
    );
    try {
      const runner = new StudyRunner(t.studyDir, { workerCommand: fixtureWorker, secondMs: 20 });
      const seen: string[] = [];
      runner.subscribe((e) => {
        if (e.type === 'run_status' && e.run.status === 'running') seen.push(`run${e.run.index}`);
        // one entry per gap, at its end: a countdown tick can also report the full total when the
        // timer fires a hair early on a loaded machine, so the first tick is no reliable start marker
        if (e.type === 'gap_end') seen.push(`${e.kind}-gap`);
      });
      assert.equal(await runner.run(), 0);
      const expected =
        order === 'sequential'
          ? ['run0', 'config-gap', 'run1', 'config-gap', 'run2', 'config-gap', 'run3']
          : ['run0', 'config-gap', 'run1', 'cycle-gap', 'run2', 'config-gap', 'run3'];
      assert.deepEqual(seen, expected);
    } finally {
      t.cleanup();
    }
  });
}

test('cooldown waits for the target temperature; unavailable temperatures skip it with a warning', async () => {
  const plan = makePlan([{ fixture_mode: 'ok' }, { fixture_mode: 'ok' }], { execution: { cooldown: { target_temp_c: 50, max_wait_seconds: 100 } } });
  const t = tempStudy(plan);
  try {
    const temps = [70, 65, 58, 49];
    const runner = new StudyRunner(t.studyDir, {
      workerCommand: fixtureWorker,
      secondMs: 10,
      readTemperatures: async () => [temps.length > 1 ? temps.shift()! : temps[0]!, 30],
    });
    const cooldown: Array<number | null> = [];
    runner.subscribe((e) => e.type === 'gap' && e.kind === 'cooldown' && cooldown.push(e.temp_c));
    assert.equal(await runner.run(), 0);
    assert.deepEqual(cooldown, [70, 65, 58, 49]);
  } finally {
    t.cleanup();
  }
  const t2 = tempStudy(plan);
  try {
    const runner = new StudyRunner(t2.studyDir, { workerCommand: fixtureWorker, readTemperatures: async () => null });
    const warnings: string[] = [];
    runner.subscribe((e) => e.type === 'warning' && warnings.push(e.message));
    assert.equal(await runner.run(), 0);
    assert.ok(warnings.some((w) => /cooldown skipped: GPU temperature unavailable/.test(w)), warnings.join('; '));
  } finally {
    t2.cleanup();
  }
});

test('controls: skip-gap cuts a long gap, skip-current kills a run as skipped, retry reruns it, pause holds the next start', async () => {
  const t = tempStudy(
    makePlan([{ fixture_mode: 'ok' }, { fixture_mode: 'hang-ignore-term' }, { fixture_mode: 'ok' }], {
      execution: { config_gap_seconds: 3600, experiment_timeout_seconds: 600 },
    }),
  );
  try {
    const runner = new StudyRunner(t.studyDir, { workerCommand: fixtureWorker, killGraceMs: 500 });
    const events: RunnerEvent[] = [];
    let retried = false;
    runner.subscribe((e) => {
      events.push(e);
      if (e.type === 'gap' && e.seconds_left === e.total_seconds) setTimeout(() => runner.skipGap(), 50);
      if (e.type === 'phase' && e.index === 1 && e.phase === 'warmup') runner.skipCurrent();
      if (e.type === 'run_status' && e.run.index === 1 && e.run.status === 'skipped' && !retried) {
        retried = true;
        runner.pause();
        // while paused nothing starts; resume after a moment
        setTimeout(() => {
          const snap = runner.snapshot();
          assert.equal(snap.paused, true);
          assert.equal(snap.runs[2]!.status, 'pending');
          runner.resume();
        }, 300);
      }
    });
    const code = await runner.run();
    const m = readManifest(t.studyDir);
    assert.equal(m.runs[1]!.status, 'skipped');
    assert.equal(m.runs[1]!.error_type, 'UserSkipped');
    assert.equal(m.runs[2]!.status, 'completed');
    assert.equal(code, 0, 'skipped is not failed');
    assert.ok(events.some((e) => e.type === 'gap_end' && e.cut_short));
    assert.ok(events.some((e) => e.type === 'paused' && e.paused));

    // retry a skipped run in a running study: pending again, new attempt, history kept
    const t2runner = new StudyRunner(t.studyDir, { workerCommand: fixtureWorker, resume: {} });
    t2runner.subscribe((e) => {
      if (e.type === 'study_started') t2runner.retry([1, 0]);
      // a resume owes the config gap after the run that ended last (the hour-long one here)
      if (e.type === 'gap' && e.seconds_left === e.total_seconds) setTimeout(() => t2runner.skipGap(), 50);
    });
    // the hanging fixture would hang again: make the retried attempt quit after it starts
    t2runner.subscribe((e) => {
      if (e.type === 'phase' && e.index === 1 && e.phase === 'warmup') void t2runner.abortNow();
    });
    assert.equal(await t2runner.run(), 130);
    const m2 = readManifest(t.studyDir);
    assert.equal(m2.runs[1]!.attempts.length, 2);
    assert.equal(m2.runs[1]!.attempts[0]!.status, 'skipped');
    assert.equal(m2.runs[1]!.attempts[1]!.error_type, 'UserInterrupted');
    assert.equal(m2.runs[0]!.attempts.length, 1, 'retry ignores completed runs');
  } finally {
    t.cleanup();
  }
});

test('quit-after-current finishes the current run and stops (exit 130, rest pending)', async () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'ok', sleep_ms: 500 }, { fixture_mode: 'ok' }, { fixture_mode: 'ok' }]));
  try {
    const runner = new StudyRunner(t.studyDir, { workerCommand: fixtureWorker });
    runner.subscribe((e) => e.type === 'phase' && e.index === 0 && e.phase === 'measure' && runner.quitAfterCurrent(true));
    assert.equal(await runner.run(), 130);
    const m = readManifest(t.studyDir);
    assert.deepEqual(m.runs.map((r) => r.status), ['completed', 'pending', 'pending']);
    assert.equal(m.status, 'interrupted');
  } finally {
    t.cleanup();
  }
});

test('a retry of a cycle-1 run during cycle 2 waits a config gap, and the cycle boundary is not waited for again', async () => {
  // A1 B1 | A2 B2 (interleaved); A fails; during A2, A1 is retried
  const t = tempStudy(
    makePlan([{ fixture_mode: 'throw' }, { fixture_mode: 'ok' }], {
      nCycles: 2,
      order: 'interleaved',
      execution: { config_gap_seconds: 1, cycle_gap_seconds: 2 },
    }),
  );
  try {
    const runner = new StudyRunner(t.studyDir, { workerCommand: fixtureWorker, secondMs: 20 });
    const seen: string[] = [];
    let retried = false;
    runner.subscribe((e) => {
      if (e.type === 'run_status' && e.run.status === 'running') seen.push(`run${e.run.index}`);
      if (e.type === 'gap_end') seen.push(`${e.kind}-gap`);
      if (e.type === 'run_status' && e.run.index === 2 && e.run.status === 'running' && !retried) {
        retried = true;
        runner.retry([0]);
      }
    });
    assert.equal(await runner.run(), 1);
    assert.deepEqual(seen, ['run0', 'config-gap', 'run1', 'cycle-gap', 'run2', 'config-gap', 'run0', 'config-gap', 'run3']);
  } finally {
    t.cleanup();
  }
});

test('retryAll sends failed and skipped runs back to pending; skipCurrent(index) skips that run only', async () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'throw' }, { fixture_mode: 'ok', sleep_ms: 3000 }, { fixture_mode: 'ok', sleep_ms: 1500 }]));
  try {
    const runner = new StudyRunner(t.studyDir, { workerCommand: fixtureWorker, killGraceMs: 500 });
    let retriedAll = false;
    runner.subscribe((e) => {
      if (e.type === 'phase' && e.index === 1 && e.phase === 'measure') {
        runner.skipCurrent(0); // not in flight: nothing happens
        if (!retriedAll) runner.skipCurrent(1);
      }
      if (e.type === 'run_status' && e.run.index === 2 && e.run.status === 'running' && !retriedAll) {
        retriedAll = true;
        runner.retryAll();
      }
    });
    assert.equal(await runner.run(), 1);
    const m = readManifest(t.studyDir);
    assert.deepEqual(m.runs.map((r) => r.status), ['failed', 'completed', 'completed']);
    assert.deepEqual(m.runs.map((r) => r.attempts.map((a) => a.status)), [['failed', 'failed'], ['skipped', 'completed'], ['completed']]);
  } finally {
    t.cleanup();
  }
});
