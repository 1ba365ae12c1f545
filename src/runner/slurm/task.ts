// One Slurm array task = one run, performed exactly as the local launcher's child does (the same
// ChildHandle: own process group, worker.log, IPC, timeouts, exit classification), with its
// transitions recorded in the shared manifest under the lock instead of by a long-lived runner.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nodeArgsFor, srcPath } from '../../node-entry.ts';
import type { ExperimentConfig } from '../../study/types.ts';
import { ChildHandle, type ChildOutcome } from '../child-handle.ts';
import { JOURNAL_FILE } from '../manifest.ts';
import { PROTOCOL_VERSION, type ChildMessage, type RunSpec } from '../protocol.ts';
import { readPlan } from '../study-dir.ts';
import { defaultRunTimeoutSeconds } from '../../study/estimate.ts';
import type { RunnerEvent } from '../events.ts';
import { scontrolShowJob, type SlurmCommandOptions } from './commands.ts';
import { verdictForSlurmState } from './states.ts';
import { claimRun, finishRun, type RunEnd, type TaskIdentity } from './transitions.ts';

export interface SlurmTaskOptions extends SlurmCommandOptions {
  /** Worker entry (.ts/.js); default src/worker/main.ts. */
  workerEntry?: string | null;
  killGraceMs?: number;
  heartbeatMs?: number;
  /** Who we are in Slurm; default from SLURM_ARRAY_JOB_ID / SLURM_JOB_ID / SLURMD_NODENAME. */
  identity?: TaskIdentity;
}

export type SlurmTaskResult =
  | { kind: 'not_claimed'; reason: string }
  | { kind: 'ran'; status: RunEnd['status']; errorType: RunEnd['error_type']; message: string | null };

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
 * gives for this task (`scontrol show job`). Errors: the study dir is unreadable, the lock could
 * not be taken (see withStudyLock).
 */
export async function performSlurmTask(studyDir: string, index: number, options: SlurmTaskOptions = {}): Promise<SlurmTaskResult> {
  const dir = path.resolve(studyDir);
  const identity = options.identity ?? taskIdentityFromEnv(options.env ?? process.env);
  const plan = readPlan(dir);
  const claim = await claimRun(dir, index, identity);
  if (claim.kind === 'not_claimed') return claim;

  const { attempt, runId, runDir, run } = claim;
  mkdirSync(runDir, { recursive: true });
  const planned = plan.configs.find((c) => c.config_hash === run.config_hash);
  const env = options.env ?? process.env;
  const spec: RunSpec = {
    v: PROTOCOL_VERSION,
    study_dir: dir,
    run_dir: runDir,
    run_id: runId,
    index,
    config_hash: run.config_hash,
    cycle: run.cycle,
    attempt,
    config: (planned?.config ?? {}) as ExperimentConfig,
    result_path: path.join(runDir, 'result.json'),
    power_csv_path: path.join(runDir, 'power.csv'),
    heartbeat_ms: options.heartbeatMs ?? 500,
    // Slurm's --gpus sets CUDA_VISIBLE_DEVICES to the GPUs it allocated to this task.
    cuda_visible_devices: env.CUDA_VISIBLE_DEVICES ?? null,
  };
  const specPath = path.join(runDir, 'run.json');
  writeFileSync(specPath, JSON.stringify(spec, null, 2) + '\n');
  const timeoutSeconds = plan.execution.experiment_timeout_seconds ?? defaultRunTimeoutSeconds(spec.config, null);
  const handle = new ChildHandle({
    command: process.execPath,
    args: nodeArgsFor(options.workerEntry ?? srcPath('worker/main.ts'), ['--run-spec', specPath]),
    env,
    logPath: path.join(runDir, 'worker.log'),
    resultPath: spec.result_path,
    timeoutMs: timeoutSeconds * 1000,
    stallTimeoutMs: plan.execution.stall_timeout_seconds > 0 ? plan.execution.stall_timeout_seconds * 1000 : null,
    killGraceMs: options.killGraceMs ?? 2000,
    onMessage: (msg: ChildMessage) => {
      if (msg.type === 'phase') appendJournal(dir, { type: 'phase', at: new Date().toISOString(), index, phase: msg.phase });
    },
  });

  // Slurm ends a task with SIGTERM (then SIGKILL after KillWait): kill the child group at once
  // and record why, from Slurm's own account of this task.
  let terminatedBySlurm = false;
  const onTerm = () => {
    terminatedBySlurm = true;
    handle.kill('abort');
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onTerm);
  let outcome: ChildOutcome;
  try {
    handle.start();
    outcome = await handle.done;
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onTerm);
  }

  let end: RunEnd = {
    status: outcome.status === 'skipped' ? 'interrupted' : outcome.status,
    error_type: outcome.error_type,
    message: outcome.message,
    phase_reached: outcome.phase_reached,
    stderr_tail: outcome.status === 'completed' ? null : outcome.stderr_tail.slice(-8192) || null,
    result_path: outcome.result_path,
    result: outcome.result,
  };
  if (terminatedBySlurm && outcome.status !== 'completed') {
    end = { ...end, ...(await slurmReasonForOwnTask(identity, index, options)) };
  }
  await finishRun(dir, index, attempt, end);
  if (end.status !== 'completed') return { kind: 'ran', status: end.status, errorType: end.error_type, message: end.message };
  return { kind: 'ran', status: 'completed', errorType: null, message: null };
}

/** Why Slurm terminated this task (TIMEOUT, CANCELLED, PREEMPTED, …), asked once with a short timeout. */
async function slurmReasonForOwnTask(
  identity: TaskIdentity,
  index: number,
  options: SlurmCommandOptions,
): Promise<Pick<RunEnd, 'status' | 'error_type' | 'message' | 'provisionalJobId'>> {
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
