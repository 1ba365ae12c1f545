// `--launcher slurm` for `llem run` and `llem resume`: the flags, and what happens once the study
// dir exists (submit one job array over the runs to do, then detach or follow).
import path from 'node:path';
import type { Command } from 'commander';
import { readManifest, ManifestStore, runSnapshotOf } from '../runner/manifest.ts';
import { readPlan, sha256File } from '../runner/study-dir.ts';
import { activeJobIds, reconcileStudy, submitStudy, type SlurmSubmitOptions } from '../runner/slurm/launcher.ts';
import { followSlurmStudy, startSlurmPoller } from '../runner/slurm/follow.ts';
import { parseTimeOption } from '../runner/slurm/array.ts';
import { withStudyLock } from '../runner/slurm/study-lock.ts';
import { topUpStudyCycles } from '../runner/slurm/top-up.ts';
import { isSlurmStudy } from '../runner/slurm/state-file.ts';
import type { RunnerEvent } from '../runner/events.ts';
import { InputError } from './errors.ts';
import { writeErr, writeOut } from './lifecycle.ts';

export interface SlurmFlags {
  launcher?: string;
  partition?: string;
  gpusPerRun?: string;
  time?: string;
  maxConcurrent?: string;
  sbatchArg?: string[];
  detach?: boolean;
}

/** Adds the launcher flags to `llem run` / `llem resume`. */
export function addLauncherOptions(cmd: Command): Command {
  return cmd
    .option('--launcher <name>', 'where runs execute: local (default) or slurm', 'local')
    .option('--partition <name>', 'slurm: partition of the job array')
    .option('--gpus-per-run <n>', 'slurm: GPUs allocated to each run (sbatch --gpus)')
    .option('--time <limit>', 'slurm: time limit per run: auto (from the pre-flight estimate) or HH:MM:SS', 'auto')
    .option('--max-concurrent <k>', 'slurm: at most K runs at once (array %K)')
    .option('--sbatch-arg <arg>', 'slurm: extra sbatch argument (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--detach', 'slurm: return once the array is submitted (follow later with llem watch <dir>)');
}

function positiveInt(flag: string, v: string | undefined): number | null {
  if (v === undefined) return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InputError(`${flag}: expected a whole number ≥ 1, got "${v}"`);
  return n;
}

/** Validates the flags; null when the launcher is local. Errors: InputError (exit 2). */
export function slurmOptionsFrom(flags: SlurmFlags): SlurmSubmitOptions | null {
  const launcher = flags.launcher ?? 'local';
  if (launcher !== 'local' && launcher !== 'slurm') throw new InputError(`--launcher "${launcher}": expected local or slurm`);
  if (launcher === 'local') {
    const slurmOnly = (['partition', 'gpusPerRun', 'maxConcurrent', 'sbatchArg', 'detach'] as const).filter((k) => flags[k] !== undefined);
    if (slurmOnly.length > 0) throw new InputError(`--${slurmOnly[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --launcher slurm`);
    return null;
  }
  let time = flags.time ?? 'auto';
  if (time !== 'auto') {
    try {
      time = parseTimeOption(time);
    } catch (err) {
      throw new InputError((err as Error).message);
    }
  }
  return {
    partition: flags.partition ?? null,
    gpusPerRun: positiveInt('--gpus-per-run', flags.gpusPerRun),
    time,
    maxConcurrent: positiveInt('--max-concurrent', flags.maxConcurrent),
    sbatchArgs: flags.sbatchArg ?? [],
    // the same override the local launcher honours (tests, custom workers)
    workerEntry: process.env.LLEM_WORKER_ENTRY ? path.resolve(process.env.LLEM_WORKER_ENTRY) : null,
  };
}

/**
 * Submits the study's runs to do as one job array, then either returns (`--detach`) or follows
 * it until it settles. Ctrl+C while following detaches: the tasks keep running in Slurm.
 * Resolves with the exit code.
 */
export async function launchOnSlurm(
  studyDir: string,
  options: SlurmSubmitOptions,
  flags: { detach: boolean; json: boolean; tui?: boolean; indices?: number[] },
): Promise<number> {
  const dir = path.resolve(studyDir);
  const sub = await submitStudy(dir, { ...options, indices: flags.indices });
  writeErr(
    `submitted ${sub.indices.length} run(s) as Slurm job array ${sub.jobId} (--array=${sub.array}, --time=${sub.timeLimit}) → ${dir}\n` +
      `  cycle order is kept by array order only with --max-concurrent 1 on one node; with more, runs overlap\n`,
  );
  if (flags.detach) {
    writeOut(`${flags.json ? JSON.stringify({ study_dir: dir, job_id: sub.jobId, runs: sub.indices }) : `${sub.jobId} ${dir}`}\n`);
    writeErr(`follow with: llem watch ${dir}    cancel with: llem cancel ${dir}\n`);
    return 0;
  }
  if (flags.tui && !flags.json && process.stdout.isTTY && process.stdin.isTTY) {
    // The full-screen view of `llem watch`, with this process polling Slurm meanwhile.
    const { watchStudy } = await import('../ui/index.ts');
    const poller = startSlurmPoller(dir, { onError: () => {} });
    try {
      return await watchStudy(dir);
    } finally {
      poller.stop();
    }
  }
  const abort = new AbortController();
  const onSigint = () => {
    writeErr(`\ndetached; the Slurm tasks keep running. follow: llem watch ${dir}   cancel: llem cancel ${dir}\n`);
    abort.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    const code = await followSlurmStudy(dir, { line: (t) => writeErr(t + '\n'), signal: abort.signal });
    if (flags.json) {
      const { statusJson } = await import('../runner/status-json.ts');
      writeOut(JSON.stringify(statusJson(readManifest(dir))) + '\n');
    }
    return code;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/**
 * `llem resume <dir> --launcher slurm`: records what Slurm did meanwhile, refuses while a job of
 * the study is still queued or running, tops the study up to `--cycles` (as the local resume
 * does), then resubmits every run not completed (the new ones, interrupted, and failed/skipped
 * with --retry-failed) as one array. Errors: InputError for a refused resume.
 */
export async function resumeOnSlurm(
  studyDir: string,
  options: SlurmSubmitOptions,
  flags: { detach: boolean; json: boolean; tui?: boolean; retryFailed: boolean; force: boolean; cycles?: number },
): Promise<number> {
  const dir = path.resolve(studyDir);
  if (isSlurmStudy(dir)) {
    await reconcileStudy(dir, { minIntervalMs: 0 });
    const active = await activeJobIds(dir);
    if (active.length > 0) throw new InputError(`${dir}: Slurm job(s) ${active.join(', ')} of this study are still queued or running; wait, or llem cancel ${dir} first`);
  }
  const plan = readPlan(dir);
  const m = readManifest(dir);
  if (!flags.force && m.study_yaml_sha256) {
    const current = sha256File(plan.source_path);
    if (current !== null && current !== m.study_yaml_sha256) {
      throw new InputError(`${plan.source_path} changed since this study started (${dir}/study.yaml is the frozen copy); resume with --force to run the remaining runs of the original plan anyway`);
    }
  }
  // A run left `running` with no live task (its worker died unrecorded) is interrupted now.
  await withStudyLock(dir, () => {
    const store = ManifestStore.open(dir);
    try {
      const events: RunnerEvent[] = [];
      for (const r of store.manifest.runs) {
        if (r.status !== 'running') continue;
        store.updateRun(r.index, (x) => {
          x.status = 'interrupted';
          const a = x.attempts.at(-1);
          if (a && a.status === 'running') Object.assign(a, { status: 'interrupted', ended_at: new Date().toISOString(), message: a.message ?? 'no Slurm task was running it any more' });
        });
        events.push({ type: 'run_status', at: new Date().toISOString(), run: runSnapshotOf(store.run(r.index)) });
      }
      if (events.length > 0) store.commit(events);
    } finally {
      store.close();
    }
  });
  if (flags.cycles !== undefined) {
    // the same top-up as the local `resume --cycles` (src/runner/slurm/top-up.ts); the new runs are pending and go into the array below
    const top = await topUpStudyCycles(dir, flags.cycles);
    if (flags.cycles < top.fromCycles) writeErr(`warning: --cycles ${flags.cycles} is below the study's ${top.fromCycles} cycles; nothing removed\n`);
    else if (top.added.length > 0) writeErr(`topped up from ${top.fromCycles} to ${top.toCycles} cycles: ${top.added.length} run(s) added\n`);
  }
  const todo = readManifest(dir)
    .runs.filter((r) => r.status === 'pending' || r.status === 'interrupted' || (flags.retryFailed && (r.status === 'failed' || r.status === 'skipped')))
    .map((r) => r.index);
  if (todo.length === 0) {
    writeErr(`${dir}: every run is completed${flags.retryFailed ? '' : ' (or failed: pass --retry-failed to rerun those)'}; nothing to submit\n`);
    return exitCodeOfDone(dir);
  }
  return launchOnSlurm(dir, options, { detach: flags.detach, json: flags.json, tui: flags.tui, indices: todo });
}

function exitCodeOfDone(dir: string): number {
  const c = readManifest(dir).counts;
  return c.failed > 0 ? 1 : 0;
}

/** For a local `llem resume` of a study that was sent to Slurm: refuse while its tasks may still run. */
export async function refuseLocalWhileSlurmActive(studyDir: string): Promise<void> {
  const dir = path.resolve(studyDir);
  if (!isSlurmStudy(dir)) return;
  const active = await activeJobIds(dir);
  if (active.length > 0) {
    throw new InputError(`${dir}: Slurm job(s) ${active.join(', ')} of this study are still queued or running; llem cancel ${dir} first, or resume with --launcher slurm once they end`);
  }
}
