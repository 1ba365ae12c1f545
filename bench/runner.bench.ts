// Runner figures (not pass/fail): per-run overhead against the Python ancestor's pattern,
// manifest transition cost by study size, parent CPU while a run is in progress.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StudyRunner } from '../src/runner/index.ts';
import { ManifestStore } from '../src/runner/manifest.ts';
import { initialManifest } from '../src/runner/study-dir.ts';
import { fixtureResult } from '../test/runner/fixtures/result.ts';
import { fixtureWorkerPath, makePlan, tempStudy } from '../test/runner/helpers.ts';

const noopWorker = fileURLToPath(new URL('../test/runner/fixtures/noop-worker.mjs', import.meta.url));

function stats(xs: number[]): { median: number; p95: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))]!;
  return { median: at(0.5), p95: at(0.95) };
}
const ms = (x: number) => `${x.toFixed(2)} ms`;

async function nodeRunOverhead(runs: number): Promise<number[]> {
  const t = tempStudy(makePlan(Array.from({ length: runs }, () => ({}))));
  const template = path.join(t.root, 'result-template.json');
  writeFileSync(template, JSON.stringify(fixtureResult({ run_id: 'x', config_hash: 'x', cycle: 1, attempt: 1 })));
  try {
    const runner = new StudyRunner(t.studyDir, {
      workerCommand: (spec) => ({ command: process.execPath, args: [noopWorker, '--run-spec', spec] }),
      env: { ...process.env, BENCH_RESULT_TEMPLATE: template },
    });
    const spawnTimes: number[] = [];
    runner.subscribe((e) => e.type === 'run_status' && e.run.status === 'running' && spawnTimes.push(performance.now()));
    let end = 0;
    runner.subscribe((e) => e.type === 'study_finished' && (end = performance.now()));
    const code = await runner.run();
    if (code !== 0) throw new Error(`bench study failed with ${code}`);
    spawnTimes.push(end);
    return spawnTimes.slice(1).map((t1, i) => t1 - spawnTimes[i]!);
  } finally {
    t.cleanup();
  }
}

const PYTHON_ANCESTOR = String.raw`
import json, multiprocessing as mp, os, sys, tempfile, time

def worker(conn, i):
    conn.send({"run": i, "energy_j": 12.5})
    conn.close()

if __name__ == "__main__":
    n = int(sys.argv[1]); out = sys.argv[2]
    ctx = mp.get_context("spawn")
    starts = []
    for i in range(n):
        starts.append(time.perf_counter())
        parent, child = ctx.Pipe()
        p = ctx.Process(target=worker, args=(child, i))
        p.start()
        res = parent.recv()
        tmp = os.path.join(out, "result.json.tmp")
        with open(tmp, "w") as f:
            json.dump(res, f); f.flush(); os.fsync(f.fileno())
        os.replace(tmp, os.path.join(out, "result-%d.json" % i))
        p.join()
    starts.append(time.perf_counter())
    print(json.dumps([(b - a) * 1000 for a, b in zip(starts, starts[1:])]))
`;

function pythonRunOverhead(runs: number): number[] | null {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'llem-bench-py-'));
  try {
    const script = path.join(dir, 'ancestor.py');
    writeFileSync(script, PYTHON_ANCESTOR);
    const out = execFileSync('python3', [script, String(runs), dir], { encoding: 'utf8', timeout: 300_000 });
    return JSON.parse(out) as number[];
  } catch (err) {
    console.log(`  python3 ancestor pattern not measured: ${(err as Error).message.split('\n')[0]}`);
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function manifestTransitionCost(nRuns: number, fsync: boolean): { median: number; p95: number } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'llem-bench-manifest-'));
  try {
    const plan = makePlan([{}], { nCycles: nRuns });
    const m = initialManifest(plan, null);
    for (const r of m.runs) {
      r.status = 'completed';
      r.attempts.push({
        attempt: 1, started_at: new Date().toISOString(), ended_at: new Date().toISOString(), status: 'completed', error_type: null,
        message: null, phase_reached: 'teardown', stderr_tail: null, pid: 12345, run_dir: `runs/${r.run_id}`, pid_start_ticks: 1,
      });
      r.result = `runs/${r.run_id}/result.json`;
      r.headline = { energy_j: 1, energy_per_output_token_j: 0.1, output_tokens_per_s: 10, window_s: 1, duration_s: 2, flags: [] };
    }
    const store = new ManifestStore(dir, m, { fsync });
    store.commit();
    const times: number[] = [];
    for (let i = 0; i < 40; i++) {
      const index = (i * 7919) % nRuns;
      const t0 = performance.now();
      store.updateRun(index, (r) => (r.status = i % 2 ? 'completed' : 'running'));
      store.commit([{ type: 'warning', at: new Date().toISOString(), message: 'bench' }]);
      times.push(performance.now() - t0);
    }
    store.close();
    return stats(times);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// The parent runs in a process of its own, as `llem run` does: the bench process itself runs
// through tsx and carries every other measurement's garbage, which is not what a study's parent
// costs. Two parents: the compiled runner in dist/ (what bin/llem.js runs after `npm install`)
// and the same runner from src/ through tsx's loader (a fresh clone without dist/).
const PARENT_DRIVER = String.raw`
const [mode, runnerUrl, tsxUrl, tsxApiUrl, studyDir, workerPath, seconds] = process.argv.slice(2);
// as bin/llem.js starts the TypeScript sources
if (mode === 'tsx') (await import(tsxApiUrl)).register();
const { StudyRunner } = await import(runnerUrl);
const runSeconds = Number(seconds);
const runner = new StudyRunner(studyDir, {
  workerCommand: (spec) => ({ command: process.execPath, args: ['--import', tsxUrl, workerPath, '--run-spec', spec] }),
});
let share = NaN;
// a window strictly inside the run: from its measure phase until a second before it ends,
// so spawn and result bookkeeping are not counted
runner.subscribe((e) => {
  if (e.type !== 'phase' || e.phase !== 'measure') return;
  const start = { cpu: process.cpuUsage(), wall: performance.now() };
  setTimeout(() => {
    const cpu = process.cpuUsage(start.cpu);
    share = (cpu.user + cpu.system) / 1000 / (performance.now() - start.wall);
  }, (runSeconds - 1) * 1000);
});
const code = await runner.run();
process.stdout.write(JSON.stringify({ share, code }) + '\n');
`;

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** Whether dist/ (scripts/build-dist.mjs) exists and is newer than every file in src/. */
function distIsFresh(): boolean {
  let builtMs: number;
  try {
    builtMs = statSync(path.join(repoRoot, 'dist', '.llem-build.json')).mtimeMs;
  } catch {
    return false;
  }
  const newer = (dir: string): boolean =>
    statSync(dir).mtimeMs > builtMs ||
    readdirSync(dir, { withFileTypes: true }).some((e) => (e.isDirectory() ? newer(path.join(dir, e.name)) : statSync(path.join(dir, e.name)).mtimeMs > builtMs));
  return !newer(path.join(repoRoot, 'src'));
}

async function parentCpuDuringRun(runSeconds: number, mode: 'compiled' | 'tsx'): Promise<number> {
  const t = tempStudy(makePlan([{ fixture_mode: 'ok', sleep_ms: runSeconds * 1000 }]));
  try {
    const driver = path.join(t.root, 'parent-driver.mjs');
    writeFileSync(driver, PARENT_DRIVER);
    const runnerUrl = mode === 'compiled' ? pathToFileURL(path.join(repoRoot, 'dist/runner/index.js')).href : pathToFileURL(path.join(repoRoot, 'src/runner/index.ts')).href;
    const out = execFileSync(process.execPath, [driver, mode, runnerUrl, import.meta.resolve('tsx'), import.meta.resolve('tsx/esm/api'), t.studyDir, fixtureWorkerPath, String(runSeconds)], {
      encoding: 'utf8',
      timeout: (runSeconds + 120) * 1000,
      cwd: repoRoot,
    });
    const { share, code } = JSON.parse(out.trim().split('\n').at(-1)!) as { share: number; code: number };
    if (code !== 0) throw new Error(`bench study failed with ${code}`);
    return share;
  } finally {
    t.cleanup();
  }
}

export default async function bench(): Promise<void> {
  // first, so that garbage from the other measurements is not collected inside its window
  const seconds = Number(process.env.BENCH_CPU_SECONDS ?? 20);
  console.log(`parent CPU while a run is in progress (${seconds} s run, heartbeat 5 s at the default stall timeout; target < 0.5 % of one core):`);
  if (distIsFresh()) {
    const compiled = await parentCpuDuringRun(seconds, 'compiled');
    console.log(`  compiled (dist/, what bin/llem.js runs): ${(compiled * 100).toFixed(3)} % of one core`);
  } else {
    console.log('  compiled (dist/): not measured, dist/ is missing or older than src/ (node scripts/build-dist.mjs)');
  }
  const viaTsx = await parentCpuDuringRun(seconds, 'tsx');
  console.log(`  src/ through tsx's loader:                ${(viaTsx * 100).toFixed(3)} % of one core`);
  const runs = Number(process.env.BENCH_RUNS ?? 20);
  console.log(`load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores (figures scale with it)`);
  console.log(`runner overhead per run (spawn → result persisted → next spawn), ${runs} runs, no-op worker:`);
  const node = stats(await nodeRunOverhead(runs));
  console.log(`  llem (fresh node child, IPC, manifest fsync): median ${ms(node.median)}, p95 ${ms(node.p95)}`);
  const pyTimes = pythonRunOverhead(runs);
  if (pyTimes) {
    const py = stats(pyTimes);
    console.log(`  python ancestor (multiprocessing spawn + Pipe):  median ${ms(py.median)}, p95 ${ms(py.p95)}`);
    console.log(`  ratio llem / python (median): ${(node.median / py.median).toFixed(2)}`);
  }
  console.log('manifest transition (journal append + atomic rewrite):');
  for (const n of [100, 1000, 10_000]) {
    const withFsync = manifestTransitionCost(n, true);
    const noFsync = manifestTransitionCost(n, false);
    console.log(
      `  ${String(n).padStart(6)} runs: median ${ms(withFsync.median)}, p95 ${ms(withFsync.p95)} (fsync); without fsync median ${ms(noFsync.median)}, p95 ${ms(noFsync.p95)}`,
    );
  }
}
