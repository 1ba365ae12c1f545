// The manifest transitions of the slurm launcher, made by processes other than a local runner:
// array tasks (`llem worker`), `llem cancel`, and the pollers that record what Slurm did to a task.
// Each is a read-modify-write of manifest.json under the study lock, journal first
// (ManifestStore.commit), so tasks finishing at the same instant never lose each other's update.
// The run transitions themselves are the local runner's (src/runner/transitions.ts).
import path from 'node:path';
import { RUNS_DIR, runIdFor } from '../../study-dir/files.ts';
import { readPlan, readSlurmState } from '../../study-dir/read.ts';
import type { RunRecord, RunTimeouts, TimeoutOverride } from '../../study-dir/schema.ts';
import type { RunnerEvent } from '../events.ts';
import { ManifestStore } from '../manifest.ts';
import type { ErrorType } from '../protocol.ts';
import type { ValidityPolicy } from '../../measure/validity.ts';
import { endAttempt, finishStudyIfDone, requeueInvalid, runStatusEvent, startAttempt, type AttemptEnd } from '../transitions.ts';
import { advanceRound, TargetValues } from '../rounds.ts';
import { activeSubmissions, submissionOwning, writeSlurmState } from './state-file.ts';
import { withStudyLock, type LockRetryOptions } from './study-lock.ts';

export interface TaskIdentity {
  /** SLURM_ARRAY_JOB_ID (the id sbatch printed). */
  jobId: string;
  /** SLURM_JOB_ID of this task (each array task has its own). */
  taskJobId: string | null;
  node: string | null;
}

export type ClaimResult =
  | { kind: 'claimed'; attempt: number; runId: string; runDir: string; run: RunRecord; timeoutOverride: TimeoutOverride | null }
  /** Nothing to do: already completed, or this task is not (any more) the owner of the run. */
  | { kind: 'not_claimed'; reason: string };

/**
 * Marks run `index` running with a new attempt, if the task `who` owns it (the newest, not
 * cancelled, submission including the index) and the run is not already completed, skipped or
 * invalid (a run the task sent back to pending for a re-measurement is claimed again).
 * `timeoutsOf` gives the attempt's timeouts from the manifest's override (read under the lock).
 */
export async function claimRun(
  studyDir: string,
  index: number,
  who: TaskIdentity,
  timeoutsOf: (run: RunRecord, override: TimeoutOverride | null) => RunTimeouts,
): Promise<ClaimResult> {
  return withStudyLock(studyDir, () => {
    const owner = submissionOwning(readSlurmState(studyDir), index);
    if (!owner) return { kind: 'not_claimed', reason: `run ${index} is not owned by any active Slurm submission` } as const;
    if (owner.job_id !== who.jobId) {
      return { kind: 'not_claimed', reason: `run ${index} now belongs to Slurm job ${owner.job_id}, not ${who.jobId}` } as const;
    }
    if (owner.cancelled_at) return { kind: 'not_claimed', reason: `Slurm job ${owner.job_id} was cancelled at ${owner.cancelled_at}` } as const;
    const store = ManifestStore.open(studyDir);
    try {
      const r = store.run(index);
      if (r.status === 'completed') return { kind: 'not_claimed', reason: `run ${index} is already completed` } as const;
      if (r.status === 'skipped') return { kind: 'not_claimed', reason: `run ${index} was skipped` } as const;
      // the gate's verdict after the re-measurements stands; a person's retry resubmits it pending
      if (r.status === 'invalid') return { kind: 'not_claimed', reason: `run ${index} ended invalid after its re-measurements` } as const;
      const attempt = (r.attempts.at(-1)?.attempt ?? 0) + 1;
      const runId = runIdFor(r, attempt);
      const runDirRel = path.join(RUNS_DIR, runId);
      const override = store.manifest.timeout_override ?? null;
      const events: RunnerEvent[] = [
        startAttempt(store, index, {
          attempt,
          run_dir: runDirRel,
          pid: process.pid,
          pid_start_ticks: null,
          message: who.node ? `Slurm task ${who.jobId}_${index} on ${who.node}` : `Slurm task ${who.jobId}_${index}`,
          timeouts: timeoutsOf(r, override),
        }),
      ];
      if (store.manifest.status !== 'running') store.setStatus('running');
      store.commit(events);
      return { kind: 'claimed', attempt, runId, runDir: path.join(studyDir, runDirRel), run: store.run(index), timeoutOverride: override } as const;
    } finally {
      store.close();
    }
  });
}

/**
 * n_cycles: auto: the record that ended a round decides it and appends the next round, in the same
 * critical section (so no reader ever sees the study settled between two rounds); whoever made the
 * record then submits it (submitNextRound). Nothing while runs of the round are open, and nothing
 * for a study whose latest submission was cancelled. Events applied to the store, to commit.
 */
export function advanceRoundOnSlurm(store: ManifestStore, studyDir: string): RunnerEvent[] {
  if (store.manifest.runs.some((r) => r.status === 'pending' || r.status === 'running' || r.status === 'interrupted')) return [];
  const latest = activeSubmissions(readSlurmState(studyDir)).at(-1);
  if (!latest || latest.cancelled_at) return [];
  const plan = readPlan(studyDir);
  if (!plan.execution.target) return [];
  return advanceRound(store, plan, studyDir, new TargetValues(studyDir, plan.execution.target.metric))?.events ?? [];
}

/** A task's end, with the Slurm job whose final state refines it when the worker saw only COMPLETING. */
export interface SlurmRunEnd extends AttemptEnd {
  provisionalJobId?: string | null;
}

/** What finishRun recorded. */
export interface FinishedRun {
  /** false when someone else had already recorded the attempt's end. */
  recorded: boolean;
  /** The attempt was invalid and the run went back to pending for a re-measurement (requeueInvalid). */
  requeued: boolean;
}

/**
 * Records how attempt `attempt` of run `index` ended (see endAttempt) and, for an invalid attempt
 * with re-measurements left, the run's return to pending, in one write under the lock: the task
 * that measured it claims it again (src/runner/slurm/task.ts).
 */
export async function finishRun(studyDir: string, index: number, attempt: number, end: SlurmRunEnd, policy: Pick<ValidityPolicy, 'max_invalid_retries'>): Promise<FinishedRun> {
  return withStudyLock(studyDir, () => {
    const store = ManifestStore.open(studyDir);
    try {
      const e = endAttempt(store, studyDir, index, attempt, end);
      if (!e) return { recorded: false, requeued: false };
      const events = [e];
      // an invalid run goes back to pending before the round is judged: its round has not ended
      const requeued = requeueInvalid(store, index, policy);
      if (requeued) events.push(requeued);
      events.push(...advanceRoundOnSlurm(store, studyDir));
      const finished = finishStudyIfDone(store);
      if (finished) events.push(finished);
      store.commit(events);
      if (end.provisionalJobId) {
        const state = readSlurmState(studyDir);
        state.provisional.push({ index, attempt, job_id: end.provisionalJobId, recorded_at: new Date().toISOString() });
        writeSlurmState(studyDir, state);
      }
      return { recorded: true, requeued: requeued !== null };
    } finally {
      store.close();
    }
  });
}

export interface SlurmVerdictForRun {
  index: number;
  status: 'failed' | 'interrupted';
  error_type: ErrorType | null;
  message: string;
}

/**
 * Records what Slurm says happened to tasks whose runs are still pending or running in the
 * manifest (the task was killed before its worker could record, or never started). Runs that
 * ended meanwhile are left alone. Returns the indices changed.
 */
export async function recordSlurmVerdicts(
  studyDir: string,
  verdicts: SlurmVerdictForRun[],
  extraEvents: RunnerEvent[] = [],
  lockOptions: LockRetryOptions = {},
): Promise<number[]> {
  if (verdicts.length === 0 && extraEvents.length === 0) return [];
  return withStudyLock(studyDir, () => {
    const store = ManifestStore.open(studyDir);
    try {
      const changed: number[] = [];
      const events: RunnerEvent[] = [...extraEvents];
      for (const v of verdicts) {
        const r = store.run(v.index);
        if (r.status !== 'pending' && r.status !== 'running') continue;
        store.updateRun(v.index, (run) => {
          const last = run.attempts.at(-1);
          if (run.status === 'running' && last && last.status === 'running') {
            Object.assign(last, { status: v.status, ended_at: new Date().toISOString(), error_type: v.error_type, message: v.message });
          }
          run.status = v.status;
          run.error_type = v.error_type;
        });
        changed.push(v.index);
        events.push(runStatusEvent(store.run(v.index)));
      }
      if (changed.length > 0) {
        events.push(...advanceRoundOnSlurm(store, studyDir));
        const finished = finishStudyIfDone(store);
        if (finished) events.push(finished);
      }
      if (events.length > 0) store.commit(events);
      return changed;
    } finally {
      store.close();
    }
  }, lockOptions);
}

/**
 * Runs of a round that could not be submitted (sbatch refused): interrupted with the reason, so
 * the study settles and `llem resume --launcher slurm` submits them. Runs submitted meanwhile (a
 * submission owns them) are left alone.
 */
export async function recordUnsubmitted(studyDir: string, indices: number[], message: string, lockOptions: LockRetryOptions = {}): Promise<number[]> {
  return withStudyLock(studyDir, () => {
    const state = readSlurmState(studyDir);
    const store = ManifestStore.open(studyDir);
    try {
      const events: RunnerEvent[] = [{ type: 'warning', at: new Date().toISOString(), message }];
      const changed: number[] = [];
      for (const i of indices) {
        const r = store.run(i);
        if (r.status !== 'pending' || submissionOwning(state, i)) continue;
        store.updateRun(i, (run) => {
          run.status = 'interrupted';
          run.error_type = null;
        });
        changed.push(i);
        events.push(runStatusEvent(store.run(i)));
      }
      const finished = finishStudyIfDone(store);
      if (finished) events.push(finished);
      store.commit(events);
      return changed;
    } finally {
      store.close();
    }
  }, lockOptions);
}

export interface RefinedVerdict {
  index: number;
  attempt: number;
  /** null: Slurm has forgotten the task; the provisional record stays as it is. */
  verdict: { status: 'failed' | 'interrupted' | 'completed'; error_type: ErrorType | null; message: string } | null;
}

/**
 * Replaces provisional records (see SlurmRunEnd.provisionalJobId) with Slurm's final verdicts and
 * drops them from slurm.json. A record changed meanwhile (resubmitted, rerun) is left alone.
 * Returns the run indices changed.
 */
export async function refineProvisional(studyDir: string, refined: RefinedVerdict[], lockOptions: LockRetryOptions = {}): Promise<number[]> {
  if (refined.length === 0) return [];
  return withStudyLock(studyDir, () => {
    const store = ManifestStore.open(studyDir);
    try {
      const changed: number[] = [];
      const events: RunnerEvent[] = [];
      for (const f of refined) {
        if (!f.verdict || f.verdict.status === 'completed') continue;
        const v = f.verdict;
        const r = store.run(f.index);
        const a = r.attempts.at(-1);
        if (!a || a.attempt !== f.attempt || r.status !== 'interrupted' || a.status !== 'interrupted') continue;
        store.updateRun(f.index, (run) => {
          Object.assign(run.attempts.at(-1)!, { status: v.status, error_type: v.error_type, message: v.message });
          run.status = v.status;
          run.error_type = v.error_type;
        });
        changed.push(f.index);
        events.push(runStatusEvent(store.run(f.index)));
      }
      if (changed.length > 0) {
        // the study may already be finished as `interrupted`; recompute from the refined runs
        events.push(...advanceRoundOnSlurm(store, studyDir));
        const finished = finishStudyIfDone(store);
        if (finished) events.push(finished);
        store.commit(events);
      }
      const state = readSlurmState(studyDir);
      const done = new Set(refined.map((f) => `${f.index}:${f.attempt}`));
      state.provisional = state.provisional.filter((p) => !done.has(`${p.index}:${p.attempt}`));
      writeSlurmState(studyDir, state);
      return changed;
    } finally {
      store.close();
    }
  }, lockOptions);
}
