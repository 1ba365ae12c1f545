// One Slurm array task = one run, through the same run-attempt path as the local runner
// (src/runner/attempt.ts: timeouts, run.json, ChildHandle, classification with the validity gate),
// with its transitions recorded in the shared manifest under the lock instead of by a long-lived
// runner. A run judged invalid is measured again within the task while re-measurements are left.
import { appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JOURNAL_FILE } from '../../study-dir/files.ts';
import { readPlan } from '../../study-dir/read.ts';
import { validityPolicyOf, type ValidityPolicy } from '../../measure/validity.ts';
import type { PlanFile } from '../../study/types.ts';
import { GpuSettingsError } from '../../gpu-settings/index.ts';
import { attemptTimeouts, configOf, defaultWorkerCommand, performAttempt, prepareAttempt, superviseAttempt, workerCommandFor } from '../attempt.ts';
import type { ChildHandle } from '../child-handle.ts';
import { applyForAttempt, gpuSettingsFailure, RunGpuSettings, type AttemptGpuSettings } from '../gpu-settings.ts';
import type { RunnerEvent } from '../events.ts';
import { Gaps, type GapOptions } from '../gaps.ts';
import { SLURM_OWN_SIGTERM_WAIT_MS, SLURM_TASK_KILL_GRACE_MS } from '../timing.ts';
import type { AttemptEnd } from '../transitions.ts';
import { scontrolShowJob, type SlurmCommandOptions } from './commands.ts';
import { submitNextRound } from './launcher.ts';
import { verdictForSlurmState } from './states.ts';
import { claimRun, finishRun, type ClaimResult, type SlurmRunEnd, type TaskIdentity } from './transitions.ts';

export interface SlurmTaskOptions extends SlurmCommandOptions {
  /** Worker entry (.ts/.js); default src/worker/main.ts. */
  workerEntry?: string | null;
  killGraceMs?: number;
  heartbeatMs?: number;
  /** Who we are in Slurm; default from SLURM_ARRAY_JOB_ID / SLURM_JOB_ID / SLURMD_NODENAME. */
  identity?: TaskIdentity;
  /** The gap before a re-measurement (tests shrink its unit; cooldown temperatures). */
  gaps?: GapOptions;
}

export type SlurmTaskResult =
  | { kind: 'not_claimed'; reason: string }
  | { kind: 'ran'; status: AttemptEnd['status']; errorType: AttemptEnd['error_type']; message: string | null };

export function taskIdentityFromEnv(env: NodeJS.ProcessEnv = process.env): TaskIdentity {
  const jobId = env.SLURM_ARRAY_JOB_ID ?? env.SLURM_JOB_ID;
  if (!jobId) throw new Error('llem worker: not inside a Slurm job (SLURM_ARRAY_JOB_ID and SLURM_JOB_ID are unset)');
  return { jobId, taskJobId: env.SLURM_JOB_ID ?? null, node: env.SLURMD_NODENAME ?? os.hostname() };
}

function appendJournal(studyDir: string, e: RunnerEvent): void {
  // One small O_APPEND write per line: concurrent tasks' lines never interleave within a line.
  try {
    appendFileSync(path.join(studyDir, JOURNAL_FILE), JSON.stringify(e) + '\n');
  } catch {
    // the journal is for watchers; the manifest transition is what counts
  }
}

/**
 * Performs run `index` of the study as Slurm task `identity`. On SIGTERM (Slurm's time limit,
 * scancel, preemption) the child group is killed and the run is recorded with the reason Slurm
 * gives for this task (`scontrol show job`). A run the validity gate judges invalid, with
 * re-measurements left, is measured again in this same task (same node, same GPUs): after the
 * config gap and the cooldown, the task claims it again as a new attempt. Errors: the study dir is
 * unreadable, the lock could not be taken (see withStudyLock).
 */
export async function performSlurmTask(studyDir: string, index: number, options: SlurmTaskOptions = {}): Promise<SlurmTaskResult> {
  const dir = path.resolve(studyDir);
  const env = options.env ?? process.env;
  const identity = options.identity ?? taskIdentityFromEnv(env);
  const plan = readPlan(dir);
  const policy = validityPolicyOf(plan.execution);

  // Slurm ends a task with SIGTERM (then SIGKILL after KillWait): kill the child group at once
  // and record why, from Slurm's own account of this task; a gap before a re-measurement ends.
  let terminatedBySlurm = false;
  let onTermSeen: () => void = () => {};
  const termSeen = new Promise<void>((resolve) => (onTermSeen = resolve));
  let handle: ChildHandle | null = null;
  let restoreGpus: (() => void) | null = null;
  const gaps = new Gaps(
    {
      emit: () => {},
      emitJournaled: (e) => appendJournal(dir, e),
      warn: (message) => appendJournal(dir, { type: 'warning', at: new Date().toISOString(), message }),
      stopping: () => terminatedBySlurm,
    },
    plan.execution,
    options.gaps ?? {},
  );
  const onTerm = () => {
    terminatedBySlurm = true;
    onTermSeen();
    handle?.kill('abort');
    restoreGpus?.();
    gaps.cut();
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onTerm);
  let last: SlurmTaskResult | null = null;
  try {
    for (;;) {
      const claim = await claimRun(dir, index, identity, (run, override) => attemptTimeouts(plan, run, override, env));
      if (claim.kind === 'not_claimed') {
        if (!last) return claim;
        break;
      }
      const { end, requeued } = await performClaimed(dir, plan, claim, identity, index, options, env, policy, {
        set: (h, restore) => {
          handle = h;
          restoreGpus = restore;
        },
        terminated: () => terminatedBySlurm,
        termSeen,
      });
      handle = null;
      restoreGpus = null;
      last =
        end.status === 'completed'
          ? { kind: 'ran', status: 'completed', errorType: null, message: null }
          : { kind: 'ran', status: end.status, errorType: end.error_type, message: end.message };
      if (!requeued || terminatedBySlurm) break;
      // re-measured here: the gap and cooldown the local launcher waits between two runs
      await gaps.before(plan.order, index, index);
      if (terminatedBySlurm) break;
    }
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onTerm);
  }
  await submitRoundIfDue(dir, identity, index, env);
  return last;
}

/** One claimed attempt: run.json, the child, its end recorded (with the run's return to pending when it was invalid and a re-measurement is due). */
async function performClaimed(
  dir: string,
  plan: PlanFile,
  claim: Extract<ClaimResult, { kind: 'claimed' }>,
  identity: TaskIdentity,
  index: number,
  options: SlurmTaskOptions,
  env: NodeJS.ProcessEnv,
  policy: ValidityPolicy,
  child: { set(h: ChildHandle, restoreGpus: () => void): void; terminated(): boolean; termSeen: Promise<void> },
): Promise<{ end: SlurmRunEnd; requeued: boolean }> {
  // Slurm's --gpus sets CUDA_VISIBLE_DEVICES to the GPUs it allocated to this task.
  const cvd = env.CUDA_VISIBLE_DEVICES ?? null;
  // This task's GPUs only, recorded under its node: applied before the child, restored at its end
  // (the privilege is checked here: the submitting node may have no GPU).
  let gpu: RunGpuSettings | null = null;
  let applied: AttemptGpuSettings;
  try {
    gpu = await RunGpuSettings.open(dir, plan, { host: identity.node ?? undefined, checkPrivilege: true });
    applied = applyForAttempt(gpu, cvd, configOf(plan, claim.run).gpu);
  } catch (err) {
    if (!(err instanceof GpuSettingsError)) throw err;
    applied = { settings: null, failure: gpuSettingsFailure(err) };
  }
  const ownGpus = { cudaVisibleDevices: cvd };
  try {
    const prepared = prepareAttempt({
      studyDir: dir,
      plan,
      run: claim.run,
      attempt: claim.attempt,
      runId: claim.runId,
      runDir: claim.runDir,
      timeoutOverride: claim.timeoutOverride,
      env,
      cudaVisibleDevices: cvd,
      heartbeatMs: options.heartbeatMs,
      gpuSettings: applied.settings,
    });
    if (applied.failure) {
      await finishRun(dir, index, claim.attempt, applied.failure, policy);
      return { end: applied.failure, requeued: false };
    }
    const handle = superviseAttempt(prepared, {
      workerCommand: options.workerEntry ? workerCommandFor(options.workerEntry) : defaultWorkerCommand,
      killGraceMs: options.killGraceMs ?? SLURM_TASK_KILL_GRACE_MS,
      onMessage: (msg) => {
        if (msg.type === 'phase') appendJournal(dir, { type: 'phase', at: new Date().toISOString(), index, phase: msg.phase });
      },
    });
    // Slurm SIGKILLs after KillWait: on its SIGTERM the GPU goes back at once (the run is being killed, its window void)
    child.set(handle, () => gpu?.restore(ownGpus));
    // a SIGTERM that arrived between the claim and now
    if (child.terminated()) handle.kill('abort');
    let requeued = false;
    const end = await performAttempt(handle, policy, {
      refine: async (e, outcome) => {
        // no user skips a Slurm task: a kill is Slurm's, and says interrupted until Slurm says why
        const base: SlurmRunEnd = e.status === 'skipped' ? { ...e, status: 'interrupted' } : e;
        const measured = base.status === 'completed' || base.status === 'invalid';
        // scancel, a time limit or a preemption signals every process of the job at once: the
        // worker may be seen dead of it before this task's own SIGTERM handler has run
        if (base.error_type === 'ProcessCrash' && outcome.signal === 'SIGTERM' && !child.terminated()) {
          // a timer that holds the process (an unref'd one let the task exit without recording its run)
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([child.termSeen, new Promise((resolve) => (timer = setTimeout(resolve, SLURM_OWN_SIGTERM_WAIT_MS)))]);
          clearTimeout(timer);
        }
        return child.terminated() && !measured ? { ...base, ...(await slurmReasonForOwnTask(identity, index, options)) } : base;
      },
      record: async (e) => {
        requeued = (await finishRun(dir, index, claim.attempt, e, policy)).requeued;
      },
      history: { studyHash: plan.study_hash, warn: (message) => appendJournal(dir, { type: 'warning', at: new Date().toISOString(), message }) },
    });
    return { end, requeued };
  } finally {
    gpu?.restore(ownGpus);
    gpu?.close();
  }
}

/**
 * n_cycles: auto: when this run ended its round, finishRun appended the next one: submit it now
 * (the poller of a following `llem run`/`watch` would too, later). Never fails the task: what
 * cannot be submitted is recorded (src/runner/slurm/launcher.ts submitNextRound).
 */
async function submitRoundIfDue(dir: string, identity: TaskIdentity, index: number, env: NodeJS.ProcessEnv): Promise<void> {
  try {
    await submitNextRound(dir, { env: submitEnvFromTask(env) });
  } catch (err) {
    appendJournal(dir, { type: 'warning', at: new Date().toISOString(), message: `n_cycles: auto: the next round was not submitted from task ${identity.jobId}_${index} (${(err as Error).message}); the next poll submits it` });
  }
}

/**
 * The environment to submit from inside a task: without this job's own SLURM_* variables (sbatch
 * would carry them into the next array) and without the GPU binding Slurm gave this task.
 */
export function submitEnvFromTask(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  const gpusFromSlurm = env.SLURM_JOB_GPUS !== undefined || env.SLURM_STEP_GPUS !== undefined;
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith('SLURM_') && k !== 'SLURM_CONF') continue;
    if (gpusFromSlurm && (k === 'CUDA_VISIBLE_DEVICES' || k === 'GPU_DEVICE_ORDINAL' || k === 'ROCR_VISIBLE_DEVICES')) continue;
    out[k] = v;
  }
  return out;
}

/** Why Slurm terminated this task (TIMEOUT, CANCELLED, PREEMPTED, …), asked once with a short timeout. */
async function slurmReasonForOwnTask(
  identity: TaskIdentity,
  index: number,
  options: SlurmCommandOptions,
): Promise<Pick<SlurmRunEnd, 'status' | 'error_type' | 'message' | 'provisionalJobId'>> {
  // While Slurm ends a task its state reads COMPLETING; only a time limit shows in the Reason
  // then. Anything else is recorded provisionally and refined by the poller from the final state.
  const provisional = (why: string) => ({
    status: 'interrupted' as const,
    error_type: null,
    message: `terminated by Slurm (task ${identity.jobId}_${index}); ${why}; Slurm's final state replaces this record at the next poll (an attached llem run, llem resume --launcher slurm, llem cancel)`,
    provisionalJobId: identity.jobId,
  });
  try {
    const recs = await scontrolShowJob(identity.taskJobId ?? identity.jobId, { ...options, timeoutMs: 5000 });
    const rec = recs.find((r) => r.arrayTaskId === index) ?? recs[0];
    if (!rec) return provisional('Slurm shows no record of the task yet');
    if (/TimeLimit/i.test(rec.reason)) {
      const v = verdictForSlurmState({ state: 'TIMEOUT', reason: rec.reason, timeLimit: rec.timeLimit });
      if (v.kind === 'ended') return { status: v.status, error_type: v.errorType, message: `${v.message} [task ${identity.jobId}_${index}]`, provisionalJobId: null };
    }
    const v = verdictForSlurmState({ state: rec.state, reason: rec.reason, timeLimit: rec.timeLimit });
    if (v.kind !== 'ended') return provisional(`Slurm state ${rec.state}${rec.reason && rec.reason !== 'None' ? ` (${rec.reason})` : ''}`);
    return { status: v.status, error_type: v.errorType, message: `${v.message} [task ${identity.jobId}_${index}]`, provisionalJobId: null };
  } catch (err) {
    return provisional(`scontrol failed: ${(err as Error).message}`);
  }
}
