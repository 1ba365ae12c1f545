// Temp files of interrupted atomic writes (`.manifest.json.<pid>.<n>.tmp` …) do not stay forever:
// opening a study dir for writing sweeps those of dead writers (study root and manifest.d), and a
// run's dir is swept once its process tree is gone. Writers are real processes SIGKILLed mid-write.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from '../../src/node-entry.ts';
import { writeFileAtomicSync } from '../../src/atomic-file.ts';
import { ManifestStore } from '../../src/runner/manifest.ts';
import { CHUNK_DIR } from '../../src/study-dir/files.ts';
import { readManifest } from '../../src/study-dir/read.ts';
import { StudyRunner } from '../../src/runner/index.ts';
import { fixtureWorker, makePlan, tempStudy } from './helpers.ts';

const writerPath = fileURLToPath(new URL('./fixtures/atomic-writer.ts', import.meta.url));
const temps = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.tmp')) : []);

/** SIGKILLs a real writer of `file` until one kill leaves a temp file behind; returns its name. */
async function interruptedWrite(file: string): Promise<string> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const before = new Set(temps(path.dirname(file)));
    const writer = spawn(process.execPath, nodeArgsFor(writerPath, [file]), { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => writer.stdout!.once('data', resolve));
    await new Promise((resolve) => setTimeout(resolve, 100 + attempt * 37));
    writer.kill('SIGKILL');
    await new Promise((resolve) => writer.once('exit', resolve));
    const left = temps(path.dirname(file)).filter((n) => !before.has(n));
    if (left.length === 1) {
      // `.<name>.<writer pid>.<n>.tmp`: the pid is what tells a sweeper whether the writer is alive
      assert.equal(Number(/^\..+\.(\d+)\.[\d-]+\.tmp$/.exec(left[0]!)?.[1]), writer.pid, 'the temp names its writer');
      return left[0]!;
    }
  }
  throw new Error('no kill landed inside a write in 20 tries');
}

const ageBy = (file: string, ms: number) => {
  const t = (Date.now() - ms) / 1000;
  utimesSync(file, t, t);
};

test('ManifestStore.open sweeps temp files of dead writers (study root and manifest.d), keeps live and fresh ones', { timeout: 120_000 }, async () => {
  const t = tempStudy(makePlan([{}]));
  const live = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    const manifestTemp = await interruptedWrite(path.join(t.studyDir, 'manifest.json'));
    mkdirSync(path.join(t.studyDir, CHUNK_DIR), { recursive: true });
    const chunkTemp = await interruptedWrite(path.join(t.studyDir, CHUNK_DIR, 'runs-00000.json'));
    const summaryTemp = await interruptedWrite(path.join(t.studyDir, 'summary.json'));
    // interrupted a while ago
    for (const f of [manifestTemp, summaryTemp]) ageBy(path.join(t.studyDir, f), 60_000);
    ageBy(path.join(t.studyDir, CHUNK_DIR, chunkTemp), 60_000);
    // a writer that is alive (its temp is in use), and a dead one whose temp is seconds old
    // (on a shared Slurm dir it may be a live writer on another node): both kept
    const liveTemp = `.plan.json.${live.pid}.${Date.now()}-1.tmp`;
    writeFileSync(path.join(t.studyDir, liveTemp), '{');
    ageBy(path.join(t.studyDir, liveTemp), 60_000);
    const freshDead = await interruptedWrite(path.join(t.studyDir, 'plan-copy.json'));

    ManifestStore.open(t.studyDir).close();

    assert.deepEqual(temps(t.studyDir).sort(), [freshDead, liveTemp].sort());
    assert.deepEqual(temps(path.join(t.studyDir, CHUNK_DIR)), []);
    readManifest(t.studyDir); // the manifest itself is untouched and whole
  } finally {
    live.kill('SIGKILL');
    t.cleanup();
  }
});

test('a run killed while writing result.json leaves no temp in its run dir', { timeout: 120_000 }, async () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'rewriting-result' }]));
  try {
    const runner = new StudyRunner(t.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000 });
    // Once a first write is whole, freeze the worker (SIGSTOP) at a moment its temp exists, then
    // stop the run: the worker dies in the middle of a write, every time.
    runner.subscribe((e) => {
      if (e.type !== 'phase' || e.phase !== 'teardown') return;
      const attempt = readManifest(t.studyDir).runs[0]!.attempts[0]!;
      const runDir = path.join(t.studyDir, attempt.run_dir);
      const poll = setInterval(() => {
        if (!existsSync(path.join(runDir, 'result.json')) || temps(runDir).length === 0) return;
        process.kill(attempt.pid!, 'SIGSTOP');
        if (temps(runDir).length === 0) {
          process.kill(attempt.pid!, 'SIGCONT'); // renamed meanwhile: try again
          return;
        }
        clearInterval(poll);
        runner.skipCurrent();
      }, 5);
    });
    await runner.run();
    const r = readManifest(t.studyDir).runs[0]!;
    assert.equal(r.error_type, 'UserSkipped');
    const runDir = path.join(t.studyDir, r.attempts[0]!.run_dir);
    assert.ok(existsSync(path.join(runDir, 'result.json')), 'the worker did write (some writes completed)');
    assert.deepEqual(temps(runDir), []);
  } finally {
    t.cleanup();
  }
});

test('a failed rename does not leave the temp behind', () => {
  const t = tempStudy(makePlan([{}]));
  try {
    const target = path.join(t.root, 'a-dir');
    mkdirSync(path.join(target, 'inside'), { recursive: true });
    assert.throws(() => writeFileAtomicSync(target, 'x'));
    assert.deepEqual(temps(t.root), []);
  } finally {
    t.cleanup();
  }
});
