// A real single-node Slurm for the tests: scripts/slurm/up.sh under a lease of this test process
// (several test processes share one cluster; the last one out stops it), fixture studies, waits.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readManifest } from '../../src/study-dir/read.ts';
import type { Manifest } from '../../src/study-dir/schema.ts';
import { reconcileStudy } from '../../src/runner/slurm/launcher.ts';
import { readSlurmState } from '../../src/study-dir/read.ts';
import { llemBin } from '../runner/helpers.ts';

const upScript = fileURLToPath(new URL('../../scripts/slurm/up.sh', import.meta.url));
const downScript = fileURLToPath(new URL('../../scripts/slurm/down.sh', import.meta.url));
export const slurmFixtureWorker = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url));

/** Starts (or joins) the cluster; sets SLURM_CONF in this process's environment. */
export function slurmUp(): void {
  const out = execFileSync('bash', [upScript], {
    encoding: 'utf8',
    env: { ...process.env, LLEM_SLURM_LEASE: String(process.pid), LLEM_SLURM_CPUS: process.env.LLEM_SLURM_CPUS ?? '8' },
    timeout: 180_000,
  });
  const m = /export SLURM_CONF=(\S+)/.exec(out);
  if (!m) throw new Error(`up.sh printed no SLURM_CONF: ${out}`);
  process.env.SLURM_CONF = m[1];
}

export function slurmDown(): void {
  execFileSync('bash', [downScript], { env: { ...process.env, LLEM_SLURM_LEASE: String(process.pid) }, timeout: 60_000 });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls the manifest (and Slurm, through the launcher's rate-limited poll) until `done` holds. */
export async function waitForManifest(studyDir: string, done: (m: Manifest, studyDir: string) => boolean, timeoutMs: number, what: string): Promise<Manifest> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    await reconcileStudy(studyDir, { minIntervalMs: 1000 });
    const m = readManifest(studyDir);
    if (done(m, studyDir)) return m;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; counts ${JSON.stringify(m.counts)}`);
    await sleep(1000);
  }
}

/** Nothing pending or running, and no provisional record waiting for Slurm's final state. */
export const finished = (m: Manifest, studyDir: string) =>
  m.counts.pending + m.counts.running === 0 && readSlurmState(studyDir).provisional.length === 0;

export function completionLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

export function journalEvents(studyDir: string): Array<Record<string, any>> {
  return readFileSync(`${studyDir}/events.jsonl`, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

export function scancelQuiet(ids: string[]): void {
  try {
    execFileSync('scancel', ids, { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the llem CLI in its own process group; killed as a group on timeout. */
export function llem(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 300_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [llemBin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
      reject(new Error(`llem ${args.join(' ')} timed out; stdout: ${stdout.slice(-2000)} stderr: ${stderr.slice(-2000)}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
