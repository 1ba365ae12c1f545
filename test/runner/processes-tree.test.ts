// The lifecycle invariant with real processes: a run is recorded as ended only after its whole
// process tree is gone — a helper that ignores SIGTERM left by a program that exits 0, a
// grandchild that called setsid(), after a normal exit, a crash and a timeout, in the local
// runner (`llem run` with the command backend and the real worker; StudyRunner with the fixture
// worker), in the Slurm task path (performSlurmTask), and with two runs at once.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from '../../src/node-entry.ts';
import { StudyRunner } from '../../src/runner/index.ts';
import { readManifest } from '../../src/study-dir/read.ts';
import { ChildHandle, type ChildState } from '../../src/runner/child-handle.ts';
import { performSlurmTask } from '../../src/runner/slurm/task.ts';
import { writeSlurmState } from '../../src/runner/slurm/state-file.ts';
import type { Manifest } from '../../src/study-dir/schema.ts';
import { fixtureWorker, fixtureWorkerPath, llemBin, makePlan, tempStudy, waitFor } from './helpers.ts';
import { readPids, running } from './fixtures/tree-helpers.mjs';

const leakyCommand = fileURLToPath(new URL('./fixtures/leaky-command.mjs', import.meta.url));

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

function runLlem(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [llemBin, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.stdout!.resume();
    proc.on('exit', (code) => resolve({ code, stderr }));
  });
}

/** A two-run study whose command program leaves a helper of `kind` behind and exits 0. */
function leakyStudy(root: string, kind: 'same-group' | 'setsid'): { yaml: string; pidsFile: string; obsFile: string } {
  const pidsFile = path.join(root, 'helper-pids.txt');
  const obsFile = path.join(root, 'observations.txt');
  const yaml = path.join(root, 'study.yaml');
  writeFileSync(
    yaml,
    [
      'name: leaky',
      'backend: command',
      'model: leaky-model',
      'precision: fp16',
      'dataset: builtin',
      'n: 1',
      'max_new_tokens: 1',
      'command:',
      `  argv: ${JSON.stringify([process.execPath, leakyCommand, kind])}`,
      `  env: ${JSON.stringify({ LEAK_PIDS: pidsFile, LEAK_OBS: obsFile })}`,
      '  expected_load_seconds: 1',
      'baseline:',
      '  enabled: false',
      'warmup:',
      '  min_prompts: 1',
      '  max_prompts: 2',
      '  window: 2',
      'execution:',
      '  n_cycles: 2',
      '  config_gap_seconds: 0',
      '  cycle_gap_seconds: 0',
      '',
    ].join('\n'),
  );
  return { yaml, pidsFile, obsFile };
}

function onlyStudyDir(outDir: string): string {
  const dirs = readdirSync(outDir);
  assert.equal(dirs.length, 1, `one study dir in ${outDir}`);
  return path.join(outDir, dirs[0]!);
}

for (const kind of ['same-group', 'setsid'] as const) {
  test(`llem run: a ${kind} helper that ignores SIGTERM, left by a program that exits 0, never outlives its run`, { timeout: 180_000 }, async () => {
    const t = tempStudy(makePlan([{}]));
    const s = leakyStudy(t.root, kind);
    try {
      const out = path.join(t.root, 'runs-out');
      const { code, stderr } = await runLlem(['run', s.yaml, '--no-tui', '--yes', '--out', out]);
      assert.equal(code, 0, stderr);
      const helpers = readPids(s.pidsFile);
      assert.equal(helpers.length, 2, 'each run left one helper');
      // run 1's program looked for run 0's helper before starting: it must not have been running
      assert.equal(readFileSafe(s.obsFile), '', 'no helper of run 0 during run 1');
      assert.deepEqual(helpers.filter(running), [], 'no helper alive after llem run');
      const m = readManifest(onlyStudyDir(out));
      assert.deepEqual(m.runs.map((r) => r.status), ['completed', 'completed']);
      m.runs.forEach((r, i) => {
        const cleanup = r.attempts[0]!.tree_cleanup!;
        assert.ok(cleanup, `run ${i} records its tree cleanup`);
        assert.ok(cleanup.leftover_pids.includes(helpers[i]!), `run ${i}: helper ${helpers[i]} recorded as left over: ${JSON.stringify(cleanup)}`);
        assert.ok(cleanup.sigkilled_pids.includes(helpers[i]!), `run ${i}: the helper ignored SIGTERM, so it was SIGKILLed`);
        assert.deepEqual(cleanup.survivor_pids, []);
      });
    } finally {
      killAll(readPids(s.pidsFile));
      t.cleanup();
    }
  });
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Runs a fixture study in this process and checks, at the instant each run's end is recorded
 * (its run_status event, written after the manifest commit), that no helper it started runs.
 */
async function runRecordingHelpers(modes: string[], execution: Record<string, unknown> = {}) {
  const t = tempStudy(makePlan(modes.map((m) => ({ fixture_mode: m })), { execution }));
  const pidsFile = path.join(t.root, 'helper-pids.txt');
  const runner = new StudyRunner(t.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000, env: { ...process.env, FIXTURE_HELPER_PIDS: pidsFile } });
  const aliveAtRecord: string[] = [];
  // a hanging run is stopped once its helper runs (the fixture says warmup then): the kill path
  runner.subscribe((e) => {
    if (e.type === 'phase' && e.phase === 'warmup' && modes[e.index] === 'setsid-then-hang') runner.skipCurrent();
  });
  runner.subscribe((e) => {
    if (e.type !== 'run_status' || e.run.status === 'running' || e.run.status === 'pending') return;
    const alive = readPids(pidsFile).filter(running);
    if (alive.length > 0) aliveAtRecord.push(`run ${e.run.index} recorded ${e.run.status} while helper(s) ${alive.join(', ')} ran`);
  });
  try {
    const code = await runner.run();
    return { t, code, pidsFile, aliveAtRecord, manifest: readManifest(t.studyDir) };
  } catch (err) {
    killAll(readPids(pidsFile));
    t.cleanup();
    throw err;
  }
}

test('local runner: a setsid() grandchild is gone when the run is recorded — after a crash, a kill and a normal exit', { timeout: 180_000 }, async () => {
  const r = await runRecordingHelpers(['setsid-then-segv', 'setsid-then-hang', 'leave-setsid', 'leave-helper']);
  try {
    assert.deepEqual(r.aliveAtRecord, []);
    const runs: Manifest['runs'] = r.manifest.runs;
    assert.equal(runs[0]!.error_type, 'ProcessCrash');
    assert.match(runs[0]!.attempts[0]!.message!, /SIGSEGV/);
    assert.equal(runs[1]!.error_type, 'UserSkipped');
    // the kill walked the tree first: the setsid() grandchild, outside the group, got the signals too
    assert.ok(runs[1]!.attempts[0]!.tree_cleanup!.sigkilled_pids.includes(readPids(r.pidsFile)[1]!), 'it ignores SIGTERM');
    assert.equal(runs[2]!.status, 'completed');
    assert.equal(runs[3]!.status, 'completed');
    const helpers = readPids(r.pidsFile);
    assert.equal(helpers.length, 4);
    for (const [i, run] of runs.entries()) {
      const cleanup = run.attempts[0]!.tree_cleanup;
      assert.ok(cleanup, `run ${i} has a tree cleanup record`);
      assert.ok(cleanup.leftover_pids.includes(helpers[i]!), `run ${i}: ${JSON.stringify(cleanup)} names helper ${helpers[i]}`);
      assert.deepEqual(cleanup.survivor_pids, []);
    }
    // the crashed worker could not end its grandchild: the runner did, found as its adopted child
    assert.ok(runs[0]!.attempts[0]!.tree_cleanup!.sigkilled_pids.includes(helpers[0]!));
    // a worker exiting normally ends its own leftovers and says so
    assert.match(runs[2]!.attempts[0]!.tree_cleanup!.note ?? '', /the worker ended 1 of them itself/);
  } finally {
    killAll(readPids(r.pidsFile));
    r.t.cleanup();
  }
});

test('a run that leaves nothing records an empty cleanup and no wait', { timeout: 60_000 }, async () => {
  // The second run is the one checked: with a cold tsx cache (a fresh clone) the first worker may
  // still have tsx's esbuild service as a child when it finishes, and ends it like any leftover.
  const r = await runRecordingHelpers(['ok', 'ok']);
  try {
    assert.equal(r.code, 0);
    const cleanup = r.manifest.runs[1]!.attempts[0]!.tree_cleanup!;
    assert.deepEqual([cleanup.leftover_pids, cleanup.sigkilled_pids, cleanup.survivor_pids], [[], [], []]);
    // two syscalls, no /proc scan, no poll: well under one poll interval even on a loaded box
    assert.ok(cleanup.waited_ms < 1000, `waited ${cleanup.waited_ms} ms`);
  } finally {
    r.t.cleanup();
  }
});

function handleFor(root: string, mode: string, extra: Record<string, unknown> = {}) {
  const runDir = path.join(root, mode + '-' + Math.random().toString(36).slice(2, 8));
  mkdirSync(runDir, { recursive: true });
  const specPath = path.join(runDir, 'run.json');
  const spec = {
    v: 1, study_dir: root, run_dir: runDir, run_id: path.basename(runDir), index: 0, config_hash: 'ab'.repeat(8), cycle: 1, attempt: 1,
    config: { params: { fixture_mode: mode, ...extra } }, result_path: path.join(runDir, 'result.json'), power_csv_path: path.join(runDir, 'power.csv'),
    heartbeat_ms: 500, cuda_visible_devices: null,
  };
  writeFileSync(specPath, JSON.stringify(spec));
  const states: ChildState[] = [];
  const handle = new ChildHandle({
    command: process.execPath,
    args: nodeArgsFor(fixtureWorkerPath, ['--run-spec', specPath]),
    logPath: path.join(runDir, 'worker.log'),
    resultPath: spec.result_path,
    timeoutMs: 120_000,
    stallTimeoutMs: null,
    killGraceMs: 1000,
    onStateChange: (_from, to) => states.push(to),
  });
  return { handle, states, pidsFile: path.join(runDir, 'helper-pids.txt') };
}

test('ChildHandle: reaping sits between the exit and exited, and done waits for it', { timeout: 60_000 }, async () => {
  const t = tempStudy(makePlan([{}]));
  const h = handleFor(t.root, 'leave-helper');
  try {
    h.handle.start();
    const outcome = await h.handle.done;
    assert.equal(outcome.status, 'completed', outcome.message ?? '');
    assert.deepEqual(h.states, ['ready', 'running', 'reaping', 'exited']);
    assert.deepEqual(readPids(h.pidsFile).filter(running), []);
  } finally {
    killAll(readPids(h.pidsFile));
    t.cleanup();
  }
});

test('two runs at once (per_gpu): one run’s cleanup ends its own helper and leaves the other run’s alone', { timeout: 120_000 }, async () => {
  const t = tempStudy(makePlan([{}]));
  const short = handleFor(t.root, 'leave-setsid');
  const long = handleFor(t.root, 'leave-setsid', { sleep_ms: 4000 });
  try {
    long.handle.start();
    await waitFor(() => readPids(long.pidsFile).length === 1, 60_000, 'the long run’s helper');
    short.handle.start();
    const first = await short.handle.done;
    assert.equal(first.status, 'completed');
    assert.deepEqual(readPids(short.pidsFile).filter(running), [], 'the short run’s helper is gone when it is done');
    assert.ok(running(readPids(long.pidsFile)[0]!), 'the other run’s helper was not taken');
    assert.ok(!first.tree_cleanup!.leftover_pids.includes(readPids(long.pidsFile)[0]!));
    const second = await long.handle.done;
    assert.equal(second.status, 'completed');
    assert.deepEqual(readPids(long.pidsFile).filter(running), []);
    assert.ok(second.tree_cleanup!.leftover_pids.includes(readPids(long.pidsFile)[0]!));
  } finally {
    killAll([...readPids(short.pidsFile), ...readPids(long.pidsFile)]);
    t.cleanup();
  }
});

test('Slurm task path (performSlurmTask): setsid() grandchildren gone when the run is recorded, after exit 0 and after a crash', { timeout: 120_000 }, async () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'leave-setsid' }, { fixture_mode: 'setsid-then-segv' }]));
  const pidsFile = path.join(t.root, 'helper-pids.txt');
  const env = { ...process.env, FIXTURE_HELPER_PIDS: pidsFile };
  try {
    writeSlurmState(t.studyDir, {
      schema_version: 1,
      submissions: [
        {
          job_id: '4242', submitted_at: new Date().toISOString(), indices: [0, 1], array: '0-1', time_limit: '00:10:00', partition: null,
          gpus_per_run: null, sbatch_args: [], worker_entry: fixtureWorkerPath, script: '', cancelled_at: null, released_at: null,
        },
      ],
      provisional: [],
    });
    const identity = { jobId: '4242', taskJobId: '4243', node: 'test-node' };
    for (const index of [0, 1]) {
      const r = await performSlurmTask(t.studyDir, index, { identity, workerEntry: fixtureWorkerPath, killGraceMs: 1000, env });
      assert.equal(r.kind, 'ran');
      assert.deepEqual(readPids(pidsFile).filter(running), [], `run ${index}: no helper alive once performSlurmTask recorded it`);
    }
    const m = readManifest(t.studyDir);
    assert.equal(m.runs[0]!.status, 'completed');
    assert.equal(m.runs[1]!.error_type, 'ProcessCrash');
    assert.equal(readPids(pidsFile).length, 2);
  } finally {
    killAll(readPids(pidsFile));
    t.cleanup();
  }
});

test('without the addon the subreaper is unavailable: the run still ends its group and the record says why', { timeout: 120_000 }, async () => {
  const t = tempStudy(makePlan([{}]));
  const s = leakyStudy(t.root, 'same-group');
  try {
    const out = path.join(t.root, 'runs-out');
    const { code, stderr } = await runLlem(['run', s.yaml, '--no-tui', '--yes', '--out', out], { LLEM_ADDON_PATH: path.join(t.root, 'no-such-addon.node') });
    assert.equal(code, 0, stderr);
    assert.deepEqual(readPids(s.pidsFile).filter(running), []);
    const m = readManifest(onlyStudyDir(out));
    for (const r of m.runs) assert.match(r.attempts[0]!.tree_cleanup!.note ?? '', /subreaper unavailable: the native addon is not built/);
  } finally {
    killAll(readPids(s.pidsFile));
    t.cleanup();
  }
});
