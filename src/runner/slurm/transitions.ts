// Manifest transitions made by processes other than a local runner: Slurm array tasks (`llem
// worker`), `llem cancel`, and the pollers that record what Slurm did to a task. Each one is a
// read-modify-write of manifest.json under the study lock, journal first (ManifestStore.commit),
// so tasks finishing at the same instant never lose each other's update.
import path from 'node:path';
import { ManifestStore, runSnapshotOf, type RunRecord } from '../manifest.ts';
import { runIdFor, RUNS_DIR } from '../study-dir.ts';
import type { RunnerEvent, StudyStatus } from '../events.ts';
import type { ErrorType, Phase } from '../protocol.ts';
import type { RunResult } from '../../results/schema.ts';
import { headlineOf } from '../study-runner.ts';
import { withStudyLock, type LockRetryOptions } from './study-lock.ts';
import { readSlurmState, submissionOwning, writeSlurmState } from './state-file.ts';

export interface TaskIdentity {
  /** SLURM_ARRAY_JOB_ID (the id sbatch printed). */
  jobId: string;
  /** SLURM_JOB_ID of this task (each array task has its own). */
  taskJobId: string | null;
  node: string | null;
}

export type ClaimResult =
  | { kind: 'claimed'; attempt: number; runId: string; runDir: string; run: RunRecord }
  /** Nothing to do: already completed, or this task is not (any more) the owner of the run. */
  | { kind: 'not_claimed'; reason: string };

const now = () => new Date().toISOString();

function runStatusEvent(r: RunRecord): RunnerEvent {
  return { type: 'run_status', at: now(), run: runSnapshotOf(r) };
}

/**
 * Marks run `index` running with a new attempt, if the task `who` owns it (the newest, not
 * cancelled, submission including the index) and the run is not already completed or skipped.
 * A run left `running` by a task Slurm requeued or that died unrecorded gets that attempt closed
 * as interrupted first.
 */
export async function claimRun(studyDir: string, index: number, who: TaskIdentity): Promise<ClaimResult> {
  return withStudyLock(studyDir, () => {
    const owner = submissionOwning(readSlurmState(studyDir), index);
    if (!owner) return { kind: 'not_claimed', reason: `run ${index} was never submitted to Slurm` } as const;
    if (owner.job_id !== who.jobId) {
      return { kind: 'not_claimed', reason: `run ${index} now belongs to Slurm job ${owner.job_id}, not ${who.jobId}` } as const;
    }
    if (owner.cancelled_at) return { kind: 'not_claimed', reason: `Slurm job ${owner.job_id} was cancelled at ${owner.cancelled_at}` } as const;
    const store = ManifestStore.open(studyDir);
    try {
      const r = store.run(index);
      if (r.status === 'completed') return { kind: 'not_claimed', reason: `run ${index} is already completed` } as const;
      if (r.status === 'skipped') return { kind: 'not_claimed', reason: `run ${index} was skipped` } as const;
      const events: RunnerEvent[] = [];
      const last = r.attempts.at(-1);
      if (last && last.status === 'running') {
        last.status = 'interrupted';
        last.ended_at = now();
        last.message = `attempt ${last.attempt} was still marked running when Slurm started task ${who.jobId}_${index} again (requeued or died unrecorded)`;
      }
      const attempt = (last?.attempt ?? 0) + 1;
      const runId = runIdFor(r, attempt);
      const runDirRel = path.join(RUNS_DIR, runId);
      store.updateRun(index, (run) => {
        run.status = 'running';
        run.error_type = null;
        run.attempts.push({
          attempt,
          started_at: now(),
          ended_at: null,
          status: 'running',
          error_type: null,
          message: who.node ? `Slurm task ${who.jobId}_${index} on ${who.node}` : `Slurm task ${who.jobId}_${index}`,
          phase_reached: null,
          stderr_tail: null,
          pid: process.pid,
          run_dir: runDirRel,
        });
      });
      events.push(runStatusEvent(store.run(index)));
      if (store.manifest.status !== 'running') {
        store.setStatus('running');
      }
      store.commit(events);
      return { kind: 'claimed', attempt, runId, runDir: path.join(studyDir, runDirRel), run: store.run(index) } as const;
    } finally {
      store.close();
    }
  });
}

export interface RunEnd {
  status: 'completed' | 'failed' | 'interrupted';
  error_type: ErrorType | null;
  message: string | null;
  phase_reached: Phase | null;
  stderr_tail: string | null;
  /** Absolute path of the valid result.json (completed only). */
  result_path: string | null;
  result: RunResult | null;
  /**
   * Set when Slurm terminated the task but did not yet say why (COMPLETING): the record is
   * provisional and the poller refines it from the task's final state.
   */
  provisionalJobId?: string | null;
}

/**
 * Study status once nothing is pending or running: completed when every run completed or was
 * skipped, failed when one failed, interrupted when one was interrupted (resume reruns it);
 * null while work remains.
 */
export function finalStudyStatus(runs: ReadonlyArray<Pick<RunRecord, 'status'>>): StudyStatus | null {
  if (runs.some((r) => r.status === 'pending' || r.status === 'running')) return null;
  if (runs.some((r) => r.status === 'interrupted')) return 'interrupted';
  if (runs.some((r) => r.status === 'failed')) return 'failed';
  return 'completed';
}

function finishStudyIfDone(store: ManifestStore, events: RunnerEvent[]): void {
  const status = finalStudyStatus(store.manifest.runs);
  if (status === null || store.manifest.status === status) return;
  store.setStatus(status);
  const counts = { pending: 0, running: 0, completed: 0, failed: 0, skipped: 0, interrupted: 0 };
  for (const r of store.manifest.runs) counts[r.status] += 1;
  events.push({ type: 'study_finished', at: now(), status, counts });
}

/**
 * Records how attempt `attempt` of run `index` ended. Returns false when that attempt was already
 * recorded as ended by someone else (cancel, a poller) — except that a completed result always
 * wins over an interrupted mark, since the measurement did finish.
 */
export async function finishRun(studyDir: string, index: number, attempt: number, end: RunEnd): Promise<boolean> {
  return withStudyLock(studyDir, () => {
    const store = ManifestStore.open(studyDir);
    try {
      const r = store.run(index);
      const a = r.attempts.find((x) => x.attempt === attempt);
      if (!a) throw new Error(`${store.manifestPath}: run ${index} has no attempt ${attempt}`);
      const isLatest = r.attempts.at(-1) === a;
      if (a.status !== 'running' && !(end.status === 'completed' && a.status === 'interrupted')) return false;
      store.updateRun(index, (run) => {
        const att = run.attempts.find((x) => x.attempt === attempt)!;
        att.status = end.status;
        att.ended_at = now();
        att.error_type = end.error_type;
        att.message = end.message ?? att.message;
        att.phase_reached = end.phase_reached;
        att.stderr_tail = end.stderr_tail;
        if (!isLatest && end.status !== 'completed') return;
        run.status = end.status;
        run.error_type = end.error_type;
        if (end.status === 'completed' && end.result_path && end.result) {
          run.result = path.relative(studyDir, end.result_path);
          run.headline = headlineOf(end.result);
        }
      });
      const events: RunnerEvent[] = [runStatusEvent(store.run(index))];
      finishStudyIfDone(store, events);
      store.commit(events);
      if (end.provisionalJobId) {
        const state = readSlurmState(studyDir);
        state.provisional.push({ index, attempt, job_id: end.provisionalJobId, recorded_at: now() });
        writeSlurmState(studyDir, state);
      }
      return true;
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
            last.status = v.status;
            last.ended_at = now();
            last.error_type = v.error_type;
            last.message = v.message;
          }
          run.status = v.status;
          run.error_type = v.error_type;
        });
        changed.push(v.index);
        events.push(runStatusEvent(store.run(v.index)));
      }
      if (changed.length > 0) finishStudyIfDone(store, events);
      if (events.length > 0) store.commit(events);
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
 * Replaces provisional records (see RunEnd.provisionalJobId) with Slurm's final verdicts and
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
          const last = run.attempts.at(-1)!;
          last.status = v.status;
          last.error_type = v.error_type;
          last.message = v.message;
          run.status = v.status;
          run.error_type = v.error_type;
        });
        changed.push(f.index);
        events.push(runStatusEvent(store.run(f.index)));
      }
      if (changed.length > 0) {
        // the study may already be finished as `interrupted`; recompute from the refined runs
        const status = finalStudyStatus(store.manifest.runs);
        if (status !== null && status !== store.manifest.status) {
          store.setStatus(status);
          const counts = { pending: 0, running: 0, completed: 0, failed: 0, skipped: 0, interrupted: 0 };
          for (const r of store.manifest.runs) counts[r.status] += 1;
          events.push({ type: 'study_finished', at: now(), status, counts });
        }
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
