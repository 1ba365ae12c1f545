// Cost of looking: CPU of the parent (`llem run`) while a run is measuring, with the full-screen
// TUI (in a tmux pane, a real terminal) and with --no-tui. The child is a stand-in that sends
// what a measuring worker sends at ~1 Hz. LLEM_BENCH_UI_SECONDS sets the window (default 60 s).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const windowS = Number(process.env.LLEM_BENCH_UI_SECONDS ?? 60);
const CLOCK_TICKS_PER_S = 100;

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(predicate: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

function measuringStarted(out: string): boolean {
  if (!existsSync(out)) return false;
  const [dir] = readdirSync(out);
  const journal = dir ? join(out, dir, 'events.jsonl') : '';
  return journal !== '' && existsSync(journal) && readFileSync(journal, 'utf8').includes('"phase":"measure"');
}

async function parentCpuPercent(pid: number, out: string): Promise<number> {
  await waitFor(() => measuringStarted(out), 'the measure phase');
  await sleep(2000); // past the first frame and the run's start
  const t0 = Date.now();
  const c0 = cpuTicks(pid);
  await sleep(windowS * 1000);
  const c1 = cpuTicks(pid);
  return ((c1 - c0) / CLOCK_TICKS_PER_S / ((Date.now() - t0) / 1000)) * 100;
}

// LLEM_BENCH_UI_PROFILE_DIR=<dir> writes a V8 CPU profile of each parent there (where the time goes).
const profileArgs = process.env.LLEM_BENCH_UI_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.LLEM_BENCH_UI_PROFILE_DIR}`] : [];

function commandArgs(out: string): string[] {
  return [...profileArgs, 'bin/llem.js', 'run', join(repo, 'test/e2e/fixtures/bench-study.yaml'), '--out', out, '--yes'];
}

function workerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LLEM_WORKER_ENTRY: join(repo, 'test/e2e/fixtures/measuring-worker.ts'), MEASURE_SECONDS: String(windowS + 15) };
  delete env.CI; // CI=true makes Ink draw nothing, which would flatter the TUI
  return env;
}

async function withoutTui(tmp: string): Promise<number> {
  const out = join(tmp, 'plain');
  const child = spawn(process.execPath, [...commandArgs(out), '--no-tui'], { cwd: repo, env: workerEnv(), stdio: 'ignore', detached: true });
  try {
    return await parentCpuPercent(child.pid!, out);
  } finally {
    try {
      process.kill(-child.pid!, 'SIGINT');
    } catch {
      // already gone
    }
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  }
}

async function withTui(tmp: string): Promise<number> {
  const out = join(tmp, 'tui');
  const socket = `llem-bench-ui-${process.pid}`;
  const tmux = (...args: string[]) =>
    execFileSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8', env: workerEnv(), stdio: ['ignore', 'pipe', 'ignore'] });
  const argv = [process.execPath, ...commandArgs(out)].map((a) => `'${a}'`).join(' ');
  tmux('new-session', '-d', '-s', 'bench', '-x', '120', '-y', '40', '-c', repo, `env -u CI ${argv}`);
  try {
    const pid = Number(tmux('display-message', '-p', '-t', 'bench', '#{pane_pid}').trim());
    // --yes: the study starts without Enter (the pre-flight stays on the normal screen)
    return await parentCpuPercent(pid, out);
  } finally {
    try {
      tmux('send-keys', '-t', 'bench', 'C-c');
      await sleep(3000);
      tmux('kill-server');
    } catch {
      // already gone
    }
  }
}

export default async function bench(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'llem-bench-ui-'));
  try {
    const plain = await withoutTui(tmp);
    const tui = await withTui(tmp);
    console.log(`parent CPU over ${windowS} s of a measuring run (1 Hz progress, power, log; TUI 120×40):`);
    console.log(`  --no-tui : ${plain.toFixed(2)} % of one core`);
    console.log(`  TUI      : ${tui.toFixed(2)} % of one core   (target < 1 %)`);
    console.log(`  TUI cost : ${(tui - plain).toFixed(2)} percentage points`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
