// The slurm launcher, parent side: submit the pending runs of a frozen study as one job array,
// poll Slurm at a modest rate (one squeue per study per interval, never one per task) to record
// tasks Slurm killed before their worker could, and cancel.
//
// Ordering: the array index is the run index, and Slurm starts array tasks in index order, so
// with `--max-concurrent 1` the cycle order of the plan is kept exactly. With K > 1 up to K runs
// overlap (and on several nodes they run on different GPUs), so only the start order is kept.
import { mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomicSync } from '../../atomic-file.ts';
import { SLURM_DIR } from '../../study-dir/files.ts';
import { readManifest, readPlan, readSlurmState } from '../../study-dir/read.ts';
import type { Manifest, SlurmState, SlurmSubmission } from '../../study-dir/schema.ts';
import type { PlanFile } from '../../study/types.ts';
import type { RunnerEvent } from '../events.ts';
import { ManifestStore } from '../manifest.ts';
import { SLURM_POLL_INTERVAL_MS } from '../timing.ts';
import { requeueRun } from '../transitions.ts';
import { arraySpec, parseTimeOption, taskScript, timeLimitFromEstimate } from './array.ts';
import { sbatch, scancel, scontrolShowJob, squeue, type JobRecord, type QueuedTask, type SlurmCommandOptions } from './commands.ts';
import { activeSubmissions, submissionOwning, writeSlurmState } from './state-file.ts';
import { verdictForSlurmState } from './states.ts';
import { recordSlurmVerdicts, recordUnsubmitted, refineProvisional, type RefinedVerdict, type SlurmVerdictForRun } from './transitions.ts';
import { withStudyLock } from './study-lock.ts';
import { srcPath, nodeArgsFor } from '../../node-entry.ts';
import { validityPolicyOf } from '../../measure/validity.ts';
import { isRetryable } from '../../study-dir/statuses.ts';

export interface SlurmSubmitOptions extends SlurmCommandOptions {
  partition?: string | null;
  gpusPerRun?: number | null;
  /** `auto` (from the pre-flight estimate) or a Slurm time. */
  time?: string;
  /** `%K` of the array: at most K runs at once. */
  maxConcurrent?: number | null;
  sbatchArgs?: string[];
  /** Run indices to submit; default every run that is pending or interrupted. */
  indices?: number[];
  /** Worker entry the tasks' `llem worker` spawns (tests use fixture workers). */
  workerEntry?: string | null;
}

export interface SubmitResult {
  jobId: string;
  indices: number[];
  array: string;
  timeLimit: string;
  scriptPath: string;
}

/** How `llem worker` is started on the node: this same node binary and llem entry (shared filesystem). */
function llemNodeArgs(): string[] {
  return nodeArgsFor(srcPath('cli/main.ts'));
}

/**
 * Submits one job array over the runs still to do. Holds the study lock across sbatch, so that
 * no task can look for its submission before slurm.json names it.
 * Errors: nothing to submit; sbatch failure.
 */
export async function submitStudy(studyDir: string, options: SlurmSubmitOptions = {}): Promise<SubmitResult> {
  const dir = path.resolve(studyDir);
  const plan = readPlan(dir);
  return withStudyLock(dir, async () => {
    const manifest = readManifest(dir);
    const indices =
      options.indices ?? manifest.runs.filter((r) => r.status === 'pending' || r.status === 'interrupted').map((r) => r.index);
    if (indices.length === 0) throw new Error(`${dir}: no pending or interrupted runs to submit`);
    return submitUnderLock(dir, plan, manifest, indices, options);
  });
}

/** Call under the study lock: writes the batch script, sbatch, then records the submission. */
async function submitUnderLock(dir: string, plan: PlanFile, manifest: Manifest, indices: number[], options: SlurmSubmitOptions): Promise<SubmitResult> {
  const byIndex = new Map(manifest.runs.map((r) => [r.index, r]));
  for (const i of indices) if (!byIndex.has(i)) throw new Error(`${dir}/manifest.json: no run with index ${i}`);
  const state = readSlurmState(dir);
  const array = arraySpec(indices, options.maxConcurrent ?? null);
  // a task re-measures its run when the validity gate judges it invalid: the limit makes room
  const remeasure = {
    count: validityPolicyOf(plan.execution).max_invalid_retries,
    gapSeconds: plan.execution.config_gap_seconds + (plan.execution.cooldown?.max_wait_seconds ?? 0),
  };
  const timeLimit =
    !options.time || options.time === 'auto'
      ? timeLimitFromEstimate(plan.estimate, indices.map((i) => byIndex.get(i)!.config_hash), remeasure)
      : parseTimeOption(options.time);
  const slurmDir = path.join(dir, SLURM_DIR);
  mkdirSync(slurmDir, { recursive: true });
  const scriptPath = path.join(slurmDir, `array-${state.submissions.length + 1}.sh`);
  writeFileSync(
    scriptPath,
    taskScript({ nodePath: process.execPath, llemArgs: llemNodeArgs(), studyDir: dir, workerEntry: options.workerEntry ?? null }),
  );
  chmodSync(scriptPath, 0o755);
  const args = [
    `--array=${array}`,
    `--job-name=llem-${plan.study_name}`.slice(0, 100),
    `--output=${path.join(slurmDir, '%A_%a.out')}`,
    `--chdir=${dir}`,
    `--time=${timeLimit}`,
    '--ntasks=1',
    ...(options.partition ? [`--partition=${options.partition}`] : []),
    ...(options.gpusPerRun ? [`--gpus=${options.gpusPerRun}`] : []),
    ...(options.sbatchArgs ?? []),
  ];
  const jobId = await sbatch(scriptPath, args, options);
  const submission: SlurmSubmission = {
    job_id: jobId,
    submitted_at: new Date().toISOString(),
    indices: [...indices].sort((a, b) => a - b),
    array,
    time_limit: timeLimit,
    partition: options.partition ?? null,
    gpus_per_run: options.gpusPerRun ?? null,
    sbatch_args: options.sbatchArgs ?? [],
    worker_entry: options.workerEntry ?? null,
    script: path.relative(dir, scriptPath),
    cancelled_at: null,
    released_at: null,
  };
  writeSlurmState(dir, { ...state, submissions: [...state.submissions, submission] });
  // Runs submitted again (interrupted, failed, skipped, invalid ones) go back to pending: they are queued now.
  const store = ManifestStore.open(dir);
  try {
    const events: RunnerEvent[] = [];
    for (const i of indices) {
      if (isRetryable(store.run(i).status)) events.push(requeueRun(store, i));
    }
    store.setStatus('running');
    store.commit(events);
  } finally {
    store.close();
  }
  return { jobId, indices: submission.indices, array, timeLimit, scriptPath };
}

/** The options of a submission, to submit the next round as the study's latest was (partition, GPUs, time, K, worker). */
function optionsOfSubmission(s: SlurmSubmission, base: SlurmCommandOptions): SlurmSubmitOptions {
  const k = /%(\d+)$/.exec(s.array);
  return {
    ...base,
    partition: s.partition,
    gpusPerRun: s.gpus_per_run,
    time: s.time_limit,
    maxConcurrent: k ? Number(k[1]) : null,
    sbatchArgs: s.sbatch_args,
    workerEntry: s.worker_entry,
  };
}

/**
 * n_cycles: auto on Slurm: submits the runs of a round that no submission owns yet (a round the
 * stopping rule appended when the previous one ended: src/runner/slurm/transitions.ts
 * advanceRoundOnSlurm), as one job array with the options of the study's latest submission.
 * Called by whoever recorded the end of a round (the array task, or the poller), and again by
 * every poll, so a round whose submitter died is still submitted. When sbatch refuses, the runs
 * are recorded interrupted with its error (`llem resume --launcher slurm` submits them), so the
 * study never waits on a submission that will not come. Null when there is nothing to submit.
 */
export async function submitNextRound(studyDir: string, options: SlurmCommandOptions & { lockWaitMs?: number } = {}): Promise<SubmitResult | null> {
  const dir = path.resolve(studyDir);
  // a look without the lock first: every poll of every Slurm study comes here
  const unowned = (state: SlurmState, manifest: Manifest) => manifest.runs.filter((r) => r.status === 'pending' && !submissionOwning(state, r.index)).map((r) => r.index);
  if (unowned(readSlurmState(dir), readManifest(dir)).length === 0) return null;
  const lockOptions = options.lockWaitMs !== undefined ? { waitMs: options.lockWaitMs } : {};
  let failure: { indices: number[]; message: string } | null = null;
  const submitted = await withStudyLock(
    dir,
    async () => {
      const state = readSlurmState(dir);
      const latest = activeSubmissions(state).at(-1);
      if (!latest || latest.cancelled_at) return null;
      const manifest = readManifest(dir);
      const indices = unowned(state, manifest);
      if (indices.length === 0) return null;
      try {
        return await submitUnderLock(dir, readPlan(dir), manifest, indices, optionsOfSubmission(latest, options));
      } catch (err) {
        failure = { indices, message: (err as Error).message.split('\n')[0]!.slice(0, 500) };
        return null;
      }
    },
    lockOptions,
  );
  if (failure) {
    const { indices, message } = failure as { indices: number[]; message: string };
    await recordUnsubmitted(dir, indices, `the next round of n_cycles: auto could not be submitted (${message}); llem resume ${dir} --launcher slurm submits it`, lockOptions);
  }
  return submitted;
}

// ---------------------------------------------------------------- polling

const POLL_CACHE_FILE = 'slurm-poll.json';

interface PollCache {
  at_ms: number;
  job_ids: string[];
  tasks: QueuedTask[];
}

/**
 * squeue for the study's jobs, at most once per `minIntervalMs` per study whichever process asks
 * (`llem run`, `llem watch`, `llem status` share `<study>/slurm-poll.json`).
 */
export async function pollQueue(studyDir: string, jobIds: string[], options: SlurmCommandOptions & { minIntervalMs?: number } = {}): Promise<QueuedTask[]> {
  const minIntervalMs = options.minIntervalMs ?? SLURM_POLL_INTERVAL_MS;
  const cacheFile = path.join(studyDir, POLL_CACHE_FILE);
  try {
    const cache = JSON.parse(readFileSync(cacheFile, 'utf8')) as PollCache;
    const sameJobs = jobIds.every((j) => cache.job_ids.includes(j));
    if (sameJobs && Date.now() - cache.at_ms < minIntervalMs) return cache.tasks;
  } catch {
    // no cache yet
  }
  const tasks = await squeue(jobIds, options);
  try {
    writeFileAtomicSync(cacheFile, JSON.stringify({ at_ms: Date.now(), job_ids: jobIds, tasks } satisfies PollCache), { fsync: false });
  } catch {
    // a read-only view of the study dir still polls, just without sharing
  }
  return tasks;
}

export interface ReconcileResult {
  /** Runs whose task Slurm still has queued or running. */
  active: number[];
  /** Runs recorded now from Slurm's account (killed, cancelled, forgotten). */
  recorded: number[];
}

/**
 * Compares the manifest with Slurm: every run still pending or running whose owning task Slurm
 * has ended gets the verdict of that task's state (TIMEOUT → failed/TimeoutError, CANCELLED →
 * interrupted, PREEMPTED/NODE_FAIL → interrupted with the reason, …). One squeue for the study
 * (rate-limited), then one `scontrol show job` per array that has ended tasks.
 */
export async function reconcileStudy(
  studyDir: string,
  options: SlurmCommandOptions & { minIntervalMs?: number; lockWaitMs?: number } = {},
): Promise<ReconcileResult> {
  const dir = path.resolve(studyDir);
  const state = readSlurmState(dir);
  const manifest = readManifest(dir);
  const records = new Map<string, JobRecord[]>();
  const recordsOf = async (jobId: string) => {
    if (!records.has(jobId)) records.set(jobId, await scontrolShowJob(jobId, options));
    return records.get(jobId)!;
  };

  const open = manifest.runs.filter((r) => r.status === 'pending' || r.status === 'running');
  const owners = new Map<number, SlurmSubmission>();
  for (const r of open) {
    const s = submissionOwning(state, r.index);
    if (s) owners.set(r.index, s);
  }
  const active: number[] = [];
  const verdicts: SlurmVerdictForRun[] = [];
  if (owners.size > 0) {
    const jobIds = [...new Set([...owners.values()].map((s) => s.job_id))];
    const queued = await pollQueue(dir, jobIds, options);
    const inQueue = new Map<string, QueuedTask>();
    for (const t of queued) inQueue.set(`${t.jobId}_${t.taskId}`, t);
    for (const [index, s] of owners) {
      const t = inQueue.get(`${s.job_id}_${index}`);
      if (t && verdictForSlurmState({ state: t.state }).kind === 'active') {
        active.push(index);
        continue;
      }
      const recs = await recordsOf(s.job_id);
      const rec = recs.find((r) => r.arrayTaskId === index);
      if (!rec) {
        const pendingMeta = recs.find((r) => r.arrayTaskId === null && r.arrayTaskIdRaw !== null && taskRangeIncludes(r.arrayTaskIdRaw, index));
        if (pendingMeta) {
          active.push(index);
          continue;
        }
        verdicts.push({
          index,
          status: 'interrupted',
          error_type: null,
          message:
            recs.length > 0
              ? `Slurm task ${s.job_id}_${index} disappeared without starting (cancelled while pending?)`
              : `Slurm no longer knows job ${s.job_id} (older than MinJobAge, or the controller lost it); the run's outcome was never recorded`,
        });
        continue;
      }
      const v = verdictForSlurmState({ state: rec.state, reason: rec.reason, exitCode: rec.exitCode, exitSignal: rec.exitSignal, timeLimit: rec.timeLimit });
      if (v.kind === 'active') active.push(index);
      else if (v.kind === 'completed') {
        verdicts.push({ index, status: 'failed', error_type: 'ProcessCrash', message: `Slurm task ${s.job_id}_${index} ended (COMPLETED) without recording its run` });
      } else {
        verdicts.push({ index, status: v.status, error_type: v.errorType, message: `${v.message} [task ${s.job_id}_${index}]` });
      }
    }
  }
  const lockOptions = options.lockWaitMs !== undefined ? { waitMs: options.lockWaitMs } : {};
  const recorded = await recordSlurmVerdicts(dir, verdicts, [], lockOptions);

  // Provisional records (the worker saw only COMPLETING): Slurm's final state, once there is one.
  const refined: RefinedVerdict[] = [];
  for (const p of state.provisional) {
    const recs = await recordsOf(p.job_id);
    const rec = recs.find((r) => r.arrayTaskId === p.index);
    if (!rec) {
      if (recs.length === 0) refined.push({ index: p.index, attempt: p.attempt, verdict: null });
      continue;
    }
    const v = verdictForSlurmState({ state: rec.state, reason: rec.reason, exitCode: rec.exitCode, exitSignal: rec.exitSignal, timeLimit: rec.timeLimit });
    if (v.kind === 'active') continue;
    refined.push({
      index: p.index,
      attempt: p.attempt,
      verdict: v.kind === 'ended' ? { status: v.status, error_type: v.errorType, message: `${v.message} [task ${p.job_id}_${p.index}]` } : null,
    });
  }
  recorded.push(...(await refineProvisional(dir, refined, lockOptions)));
  // n_cycles: auto: a round those records ended, or one whose submitter died, is submitted now
  await submitNextRound(dir, options);
  return { active, recorded };
}

/** `3-5%2`, `1,4,7-9` style task ranges. */
export function taskRangeIncludes(raw: string, index: number): boolean {
  const body = raw.split('%')[0]!;
  for (const part of body.split(',')) {
    const [a, b] = part.split('-');
    const lo = Number(a);
    const hi = b === undefined ? lo : Number(b);
    if (Number.isFinite(lo) && Number.isFinite(hi) && index >= lo && index <= hi) return true;
  }
  return false;
}

// ---------------------------------------------------------------- cancel

export interface CancelResult {
  jobIds: string[];
  interrupted: number[];
}

/**
 * `llem cancel <dir>`: marks every submission cancelled (so no task starts another run), scancels
 * the arrays, waits for the workers to record their runs (bounded), then marks whatever is still
 * pending or running as interrupted/UserInterrupted. Errors: the study was never submitted.
 */
export async function cancelStudy(studyDir: string, options: SlurmCommandOptions & { waitMs?: number; pollMs?: number } = {}): Promise<CancelResult> {
  const dir = path.resolve(studyDir);
  const jobIds = await withStudyLock(dir, () => {
    const state = readSlurmState(dir);
    if (activeSubmissions(state).length === 0) throw new Error(`${dir}: this study was never submitted to Slurm (no slurm.json), or a local runner has taken it over since`);
    const at = new Date().toISOString();
    const ids: string[] = [];
    for (const s of activeSubmissions(state)) {
      if (!s.cancelled_at) s.cancelled_at = at;
      ids.push(s.job_id);
    }
    writeSlurmState(dir, state);
    return ids;
  });
  await scancel(jobIds, options);
  // Workers catch Slurm's SIGTERM and record their runs themselves; give them a moment.
  const deadline = Date.now() + (options.waitMs ?? 30_000);
  while (Date.now() < deadline) {
    const left = await squeue(jobIds, options);
    if (left.length === 0) break;
    await new Promise((r) => setTimeout(r, options.pollMs ?? 1000));
  }
  const manifest = readManifest(dir);
  const state = readSlurmState(dir);
  const verdicts: SlurmVerdictForRun[] = manifest.runs
    .filter((r) => (r.status === 'pending' || r.status === 'running') && submissionOwning(state, r.index))
    .map((r) => ({ index: r.index, status: 'interrupted' as const, error_type: 'UserInterrupted' as const, message: `cancelled by llem cancel (scancel ${submissionOwning(state, r.index)!.job_id})` }));
  const interrupted = await recordSlurmVerdicts(dir, verdicts);
  // Workers that saw only COMPLETING recorded provisionally: take Slurm's final word now.
  interrupted.push(...(await reconcileStudy(dir, { ...options, minIntervalMs: 0 })).recorded);
  return { jobIds, interrupted };
}

/** Active (not cancelled) submissions whose tasks Slurm may still run; resume must not start locally while any exists. */
export async function activeJobIds(studyDir: string, options: SlurmCommandOptions = {}): Promise<string[]> {
  const state = readSlurmState(studyDir);
  const ids = activeSubmissions(state).map((s) => s.job_id);
  if (ids.length === 0) return [];
  const queued = await squeue(ids, options);
  return [...new Set(queued.filter((t) => verdictForSlurmState({ state: t.state }).kind === 'active').map((t) => t.jobId))];
}
