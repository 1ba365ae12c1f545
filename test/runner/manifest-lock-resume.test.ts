// Manifest, journal, lock, resume and repair against real study dirs and real fixture children.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { StudyLockedError, StudyRunner, repairManifest, RunnerInputError } from '../../src/runner/index.ts';
import { ManifestStore, RUNS_PER_CHUNK } from '../../src/runner/manifest.ts';
import { LOCK_DIR, LOCK_OWNER_FILE, chunkFileName } from '../../src/study-dir/files.ts';
import { StudyDirError, readManifest } from '../../src/study-dir/read.ts';
import type { ResumeOptions } from '../../src/runner/index.ts';
import { fixtureWorker, makePlan, tempStudy } from './helpers.ts';

const runnerFor = (dir: string, resume?: ResumeOptions) =>
  new StudyRunner(dir, { workerCommand: fixtureWorker, killGraceMs: 1000, resume });

test('a fresh study dir holds the frozen yaml, plan, an all-pending manifest and runs/', () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'ok' }, { fixture_mode: 'ok' }], { nCycles: 2 }));
  try {
    for (const f of ['study.yaml', 'plan.json', 'manifest.json', 'runs']) assert.ok(existsSync(path.join(t.studyDir, f)), f);
    const m = readManifest(t.studyDir);
    assert.equal(m.runs.length, 4);
    assert.deepEqual(m.counts, { pending: 4, running: 0, completed: 0, failed: 0, skipped: 0, interrupted: 0, invalid: 0 });
    assert.deepEqual(m.runs.map((r) => r.run_id), ['0000-00ababab-c1', '0001-01ababab-c1', '0002-00ababab-c2', '0003-01ababab-c2']);
  } finally {
    t.cleanup();
  }
});

test('a corrupt manifest gives an error naming the file and field; repair-manifest rebuilds it from the journal and run dirs', async () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'ok' }, { fixture_mode: 'throw' }]));
  try {
    assert.equal(await runnerFor(t.studyDir).run(), 1);
    const manifestPath = path.join(t.studyDir, 'manifest.json');
    const good = readManifest(t.studyDir);

    const broken = JSON.parse(readFileSync(manifestPath, 'utf8'));
    broken.runs[1].status = 'exploded';
    writeFileSync(manifestPath, JSON.stringify(broken));
    assert.throws(() => readManifest(t.studyDir), (err: Error) => {
      assert.ok(err instanceof StudyDirError);
      assert.match(err.message, /manifest\.json: field "runs\.1\.status"/);
      assert.match(err.message, /repair-manifest/);
      return true;
    });
    writeFileSync(manifestPath, '{"schema_version": 1, "runs": [');
    assert.throws(() => readManifest(t.studyDir), /manifest\.json: not valid JSON/);
    await assert.rejects(runnerFor(t.studyDir).run(), /manifest\.json: not valid JSON/);

    const report = await repairManifest(t.studyDir);
    assert.equal(report.runs, 2);
    const repaired = readManifest(t.studyDir);
    assert.deepEqual(repaired.runs.map((r) => [r.status, r.error_type, r.result]), good.runs.map((r) => [r.status, r.error_type, r.result]));
    assert.equal(repaired.status, 'failed');

    // with no journal at all, a valid result in a run dir still makes its run completed
    rmSync(path.join(t.studyDir, 'events.jsonl'));
    rmSync(manifestPath);
    const r2 = await repairManifest(t.studyDir);
    assert.equal(r2.fromRunDirs, 1);
    const m2 = readManifest(t.studyDir);
    assert.equal(m2.runs[0]!.status, 'completed');
    assert.equal(m2.runs[1]!.status, 'pending');
  } finally {
    t.cleanup();
  }
});

test('a second runner on the same dir is refused, naming the holder', async () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'ok', sleep_ms: 2000 }]));
  try {
    const first = runnerFor(t.studyDir);
    const started = new Promise<void>((resolve) => first.subscribe((e) => e.type === 'study_started' && resolve()));
    const firstDone = first.run();
    await started;
    await assert.rejects(runnerFor(t.studyDir).run(), (err: Error) => {
      assert.ok(err instanceof StudyLockedError);
      assert.match(err.message, new RegExp(`study is being run by pid ${process.pid} since \\d{4}-`));
      return true;
    });
    assert.equal(await firstDone, 0);
    assert.equal(readManifest(t.studyDir).counts.completed, 1, 'the refused runner did not touch the manifest');
  } finally {
    t.cleanup();
  }
});

test('a lock left by a dead runner is taken over; an unknown holder is taken over after the stale time', async () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'ok' }]));
  try {
    const lockDir = path.join(t.studyDir, LOCK_DIR);
    const ownerFile = path.join(t.studyDir, LOCK_OWNER_FILE);
    // holder on this host whose pid is gone (a SIGKILLed runner): taken over at once
    mkdirSync(lockDir);
    writeFileSync(ownerFile, JSON.stringify({ pid: 2 ** 22 + 12345, hostname: (await import('node:os')).hostname(), started_at: 'then' }));
    assert.equal(await runnerFor(t.studyDir).run(), 0);

    // holder on another host that stopped refreshing the lock: refused while fresh, taken over once stale
    const t2 = tempStudy(makePlan([{ fixture_mode: 'ok' }]));
    try {
      const lock2 = path.join(t2.studyDir, LOCK_DIR);
      mkdirSync(lock2);
      writeFileSync(path.join(t2.studyDir, LOCK_OWNER_FILE), JSON.stringify({ pid: 4242, hostname: 'other-node', started_at: 'T0' }));
      await assert.rejects(runnerFor(t2.studyDir).run(), /study is being run by pid 4242 on other-node since T0/);
      const old = new Date(Date.now() - 60_000);
      utimesSync(lock2, old, old);
      assert.equal(await runnerFor(t2.studyDir).run(), 0);
    } finally {
      t2.cleanup();
    }
  } finally {
    t.cleanup();
  }
});

test('resume: completed never rerun, interrupted and pending rerun, failed only with retryFailed (history kept)', async () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'ok' }, { fixture_mode: 'throw' }, { fixture_mode: 'ok' }]));
  try {
    // simulate an earlier session: run 0 completed, run 1 failed, run 2 interrupted mid-run
    const first = runnerFor(t.studyDir);
    first.subscribe((e) => {
      if (e.type === 'run_status' && e.run.index === 2 && e.run.status === 'running') void first.abortNow();
    });
    assert.equal(await first.run(), 130);
    let m = readManifest(t.studyDir);
    assert.deepEqual(m.runs.map((r) => r.status), ['completed', 'failed', 'interrupted']);
    assert.equal(m.runs[2]!.error_type, 'UserInterrupted');
    assert.equal(m.status, 'interrupted');

    assert.equal(await runnerFor(t.studyDir, {}).run(), 1);
    m = readManifest(t.studyDir);
    assert.deepEqual(m.runs.map((r) => [r.status, r.attempts.length]), [['completed', 1], ['failed', 1], ['completed', 2]]);
    assert.equal(m.runs[2]!.attempts[0]!.status, 'interrupted', 'attempt history kept');

    assert.equal(await runnerFor(t.studyDir, { retryFailed: true }).run(), 1);
    m = readManifest(t.studyDir);
    assert.deepEqual(m.runs.map((r) => [r.status, r.attempts.length]), [['completed', 1], ['failed', 2], ['completed', 2]]);
    assert.ok(existsSync(path.join(t.studyDir, 'runs', '0001-01ababab-c1-a2', 'worker.log')), 'a retry gets its own run dir');
  } finally {
    t.cleanup();
  }
});

test('resume refuses a changed study YAML unless forced', async () => {
  const t = tempStudy((yamlPath) => makePlan([{ fixture_mode: 'ok' }], { sourcePath: yamlPath }));
  try {
    writeFileSync(t.yamlPath, 'name: fixture-study\n# edited\n');
    await assert.rejects(runnerFor(t.studyDir, {}).run(), (err: Error) => {
      assert.ok(err instanceof RunnerInputError);
      assert.equal((err as RunnerInputError).exitCode, 2);
      assert.match(err.message, /changed since this study started.*--force/);
      return true;
    });
    assert.equal(readManifest(t.studyDir).counts.pending, 1);
    assert.equal(await runnerFor(t.studyDir, { force: true }).run(), 0);
  } finally {
    t.cleanup();
  }
});

test('resume --cycles tops a study up without rerunning what is done', async () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'ok' }, { fixture_mode: 'ok' }], { nCycles: 1 }));
  try {
    assert.equal(await runnerFor(t.studyDir).run(), 0);
    assert.equal(await runnerFor(t.studyDir, { cycles: 3 }).run(), 0);
    const m = readManifest(t.studyDir);
    assert.equal(m.n_cycles, 3);
    assert.deepEqual(m.runs.map((r) => [r.cycle, r.status, r.attempts.length]), [
      [1, 'completed', 1], [1, 'completed', 1], [2, 'completed', 1], [2, 'completed', 1], [3, 'completed', 1], [3, 'completed', 1],
    ]);
    const plan = JSON.parse(readFileSync(path.join(t.studyDir, 'plan.json'), 'utf8'));
    assert.equal(plan.order.length, 6);
    assert.equal(plan.execution.n_cycles, 3);
  } finally {
    t.cleanup();
  }
});

test('manifest writes are whole-file replacements and the journal comes first', () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'ok' }]));
  try {
    const store = ManifestStore.open(t.studyDir);
    store.updateRun(0, (r) => (r.status = 'skipped'));
    store.commit([{ type: 'warning', at: 'now', message: 'journal line' }]);
    store.close();
    assert.match(readFileSync(path.join(t.studyDir, 'events.jsonl'), 'utf8'), /journal line/);
    assert.equal(readManifest(t.studyDir).runs[0]!.status, 'skipped');
    assert.equal(readManifest(t.studyDir).counts.skipped, 1);
  } finally {
    t.cleanup();
  }
});

test('large studies keep runs in chunk files: a transition rewrites one chunk, readers see every run', () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'ok' }], { nCycles: 600 }));
  try {
    const store = new ManifestStore(t.studyDir, readManifest(t.studyDir), { inlineRunLimit: 100, fsync: false });
    store.commit();
    const header = JSON.parse(readFileSync(path.join(t.studyDir, 'manifest.json'), 'utf8'));
    assert.deepEqual(header.run_chunks, { dir: 'manifest.d', runs_per_chunk: RUNS_PER_CHUNK, count: Math.ceil(600 / RUNS_PER_CHUNK) });
    assert.deepEqual(header.runs, []);
    const chunkCount = header.run_chunks.count as number;
    const chunk = (i: number) => readFileSync(path.join(t.studyDir, 'manifest.d', chunkFileName(i)), 'utf8');
    const before = Array.from({ length: chunkCount }, (_, i) => chunk(i));
    store.updateRun(300, (r) => (r.status = 'failed'));
    store.commit();
    store.close();
    const changed = Math.floor(300 / RUNS_PER_CHUNK);
    for (let i = 0; i < chunkCount; i++) {
      if (i === changed) assert.notEqual(chunk(i), before[i], `chunk ${i} rewritten`);
      else assert.equal(chunk(i), before[i], `chunk ${i} untouched`);
    }
    const m = readManifest(t.studyDir);
    assert.equal(m.runs.length, 600);
    assert.equal(m.runs[300]!.status, 'failed');
    assert.equal(m.counts.failed, 1);
    assert.equal(m.counts.pending, 599);
    // a damaged chunk is named in the error
    writeFileSync(path.join(t.studyDir, 'manifest.d', chunkFileName(1)), '[{"index": "x"}]');
    assert.throws(() => readManifest(t.studyDir), /manifest\.d\/runs-00001\.json: field "0\.index"/);
  } finally {
    t.cleanup();
  }
});

test('a compromised lock stops scheduling and says so', async () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'ok', sleep_ms: 4000 }, { fixture_mode: 'ok' }]));
  try {
    const runner = new StudyRunner(t.studyDir, { workerCommand: fixtureWorker, lockStaleMs: 2000 });
    const warnings: string[] = [];
    runner.subscribe((e) => {
      if (e.type === 'warning') warnings.push(e.message);
      // someone removes the lock while the first run is measuring
      if (e.type === 'phase' && e.index === 0 && e.phase === 'measure') rmSync(path.join(t.studyDir, LOCK_DIR), { recursive: true, force: true });
    });
    assert.equal(await runner.run(), 1);
    assert.ok(warnings.some((w) => /study lock compromised.*no new run will start/.test(w)), warnings.join('; '));
    const m = readManifest(t.studyDir);
    assert.equal(m.runs[1]!.status, 'pending', 'nothing new started after the compromise');
    assert.equal(m.status, 'interrupted');
  } finally {
    t.cleanup();
  }
});
