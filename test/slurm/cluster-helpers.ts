// A real single-node Slurm for the tests: scripts/slurm/up.sh under a lease of this test process
// (several test processes share one cluster; the last one out stops it), fixture studies, waits.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, type Dirent } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readManifest } from '../../src/study-dir/read.ts';
import type { Manifest } from '../../src/study-dir/schema.ts';
import { reconcileStudy } from '../../src/runner/slurm/launcher.ts';
import { squeue } from '../../src/runner/slurm/commands.ts';
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

/**
 * The end of a Slurm test: cancels every job the study submitted (and `extraJobIds`), waits until
 * Slurm runs none of them, then removes the test's files. A task still alive when its run was
 * recorded (or one scancel just signalled) writes into the study directory as it exits: removing
 * the directory under it failed with ENOTEMPTY on a loaded machine. A task that outlives the
 * bounded wait fails the test: nothing of a run may outlive it.
 */
/** endSlurmStudy for every study directory (a folder with slurm.json) up to three levels under `root`. */
export async function endSlurmStudiesUnder(root: string, removeFiles: () => void): Promise<void> {
  const dirs: string[] = [];
  const walk = (d: string, depth: number) => {
    let entries: Dirent[] = [];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    if (entries.some((e) => e.name === 'slurm.json')) dirs.push(d);
    if (depth < 3) for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name), depth + 1);
  };
  walk(root, 0);
  const ids = dirs.flatMap((d) => {
    try {
      return readSlurmState(d).submissions.map((s) => s.job_id);
    } catch {
      return [];
    }
  });
  await endSlurmStudy(undefined, removeFiles, ids);
}

export async function endSlurmStudy(studyDir: string | undefined, removeFiles: () => void, extraJobIds: string[] = []): Promise<void> {
  let ids = [...extraJobIds];
  try {
    if (studyDir) ids = [...ids, ...readSlurmState(studyDir).submissions.map((s) => s.job_id)];
  } catch {
    // no Slurm state: nothing was submitted
  }
  ids = [...new Set(ids.map((id) => id.split('_')[0]!))];
  try {
    if (ids.length > 0) {
      scancelQuiet(ids);
      const end = Date.now() + 120_000;
      for (;;) {
        const left = await squeue(ids);
        if (left.length === 0) break;
        if (Date.now() > end) throw new Error(`Slurm tasks still alive 120 s after scancel: ${left.map((t) => `${t.jobId} ${t.state}`).join(', ')}`);
        await sleep(500);
      }
    }
  } finally {
    removeFiles();
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
