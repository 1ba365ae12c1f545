// The manifest transitions of a run, one set for every launcher: the local runner applies them to
// the ManifestStore it holds for the whole study, a Slurm task (and `llem cancel`, the pollers) to
// one it opens for a short critical section under the study lock. Each returns the run_status
// event to journal, and the caller commits (journal first, then the manifest).
import os from 'node:os';
import path from 'node:path';
import type { RunResult } from '../results/schema.ts';
import { runSnapshotOf, headlineOf } from '../study-dir/snapshot.ts';
import { countStatuses, type Rounds, type RunRecord, type RunTimeouts, type StudyStatus } from '../study-dir/schema.ts';
import type { TreeCleanup } from './process-tree.ts';
import type { ManifestStore } from './manifest.ts';
import type { RunnerEvent } from './events.ts';
import type { ErrorType, Phase } from './protocol.ts';

const now = () => new Date().toISOString();

export function runStatusEvent(r: RunRecord, at = now()): RunnerEvent {
  return { type: 'run_status', at, run: runSnapshotOf(r) };
}

export interface AttemptStart {
  attempt: number;
  /** Relative to the study dir. */
  run_dir: string;
  pid: number | null;
  pid_start_ticks: number | null;
  message: string | null;
  timeouts: RunTimeouts;
  started_at?: string;
}

/**
 * Run `index` is running a new attempt. An attempt still marked running (its runner or Slurm task
 * died unrecorded, or Slurm requeued the task) is closed as interrupted first.
 */
export function startAttempt(store: ManifestStore, index: number, start: AttemptStart): RunnerEvent {
  const startedAt = start.started_at ?? now();
  store.updateRun(index, (r) => {
    const last = r.attempts.at(-1);
    if (last && last.status === 'running') {
      Object.assign(last, {
        status: 'interrupted',
        ended_at: startedAt,
        message: `attempt ${last.attempt} was still marked running when attempt ${start.attempt} started (its runner or task died unrecorded)`,
      });
    }
    r.status = 'running';
    r.error_type = null;
    r.attempts.push({
      attempt: start.attempt,
      started_at: startedAt,
      ended_at: null,
      status: 'running',
      error_type: null,
      message: start.message,
      phase_reached: null,
      stderr_tail: null,
      pid: start.pid,
      run_dir: start.run_dir,
      pid_start_ticks: start.pid_start_ticks,
      host: os.hostname(),
      timeouts: start.timeouts,
    });
  });
  return runStatusEvent(store.run(index), startedAt);
}

/** How an attempt ended, as its launcher classified it (src/runner/attempt.ts attemptEndOf). */
export interface AttemptEnd {
  status: 'completed' | 'failed' | 'skipped' | 'interrupted';
  error_type: ErrorType | null;
  message: string | null;
  phase_reached: Phase | null;
  /** A short tail for the manifest (worker.log has everything); null for completed runs. */
  stderr_tail: string | null;
  tree_cleanup: TreeCleanup | null;
  /** Absolute path of the valid result.json (completed only). */
  result_path: string | null;
  result: RunResult | null;
}

/**
 * Records how attempt `attempt` of run `index` ended. Null when that attempt was already recorded
 * as ended by someone else (`llem cancel`, a Slurm poller) — except that a completed result always
 * wins over an interrupted mark, since the measurement did finish. An attempt that is no longer
 * the run's latest changes only its own record, unless it completed.
 */
export function endAttempt(store: ManifestStore, studyDir: string, index: number, attempt: number, end: AttemptEnd): RunnerEvent | null {
  const r = store.run(index);
  const a = r.attempts.find((x) => x.attempt === attempt);
  if (!a) throw new Error(`${store.manifestPath}: run ${index} has no attempt ${attempt}`);
  if (a.status !== 'running' && !(end.status === 'completed' && a.status === 'interrupted')) return null;
  const isLatest = r.attempts.at(-1) === a;
  const endedAt = now();
  store.updateRun(index, (run) => {
    const att = run.attempts.find((x) => x.attempt === attempt)!;
    att.status = end.status;
    att.ended_at = endedAt;
    att.error_type = end.error_type;
    att.message = end.message ?? att.message;
    att.phase_reached = end.phase_reached;
    att.stderr_tail = end.stderr_tail;
    att.tree_cleanup = end.tree_cleanup;
    if (!isLatest && end.status !== 'completed') return;
    run.status = end.status;
    run.error_type = end.error_type;
    if (end.status === 'completed' && end.result_path && end.result) {
      run.result = path.relative(studyDir, end.result_path);
      run.headline = headlineOf(end.result);
    }
  });
  return runStatusEvent(store.run(index), endedAt);
}

/**
 * Run `index` is completed by a result a worker left without its runner recording it (the runner
 * died between the worker's result and the checkpoint). `attempt` is the attempt that wrote it:
 * its record is updated, or added when the runner died before recording the attempt at all.
 */
export function adoptResult(
  store: ManifestStore,
  studyDir: string,
  index: number,
  found: { attempt: number; runDir: string; result: RunResult },
): RunnerEvent {
  const resultPath = path.join(found.runDir, 'result.json');
  store.updateRun(index, (r) => {
    r.status = 'completed';
    r.error_type = null;
    r.result = path.relative(studyDir, resultPath);
    r.headline = headlineOf(found.result);
    const a = r.attempts.find((x) => x.attempt === found.attempt);
    if (a) {
      Object.assign(a, { status: 'completed', error_type: null, message: null, ended_at: a.ended_at ?? found.result.ended_at });
      return;
    }
    r.attempts.push({
      attempt: found.attempt,
      started_at: found.result.started_at,
      ended_at: found.result.ended_at,
      status: 'completed',
      error_type: null,
      message: 'result left by a worker whose runner died before recording it',
      phase_reached: null,
      stderr_tail: null,
      pid: null,
      run_dir: path.relative(studyDir, found.runDir),
    });
    r.attempts.sort((x, y) => x.attempt - y.attempt);
  });
  return runStatusEvent(store.run(index));
}

/** A run recorded running whose runner (or task) is gone: interrupted, so that resume reruns it. */
export function interruptRun(store: ManifestStore, index: number, why: { error_type: ErrorType | null; message: string }): RunnerEvent {
  store.updateRun(index, (r) => {
    r.status = 'interrupted';
    r.error_type = why.error_type;
    const last = r.attempts.at(-1);
    if (last && last.status === 'running') {
      Object.assign(last, { status: 'interrupted', error_type: why.error_type, message: last.message ?? why.message, ended_at: last.ended_at ?? now() });
    }
  });
  return runStatusEvent(store.run(index));
}

/** Back to pending (resume, retry, resubmission); the attempt history is kept. */
export function requeueRun(store: ManifestStore, index: number): RunnerEvent {
  store.updateRun(index, (r) => {
    r.status = 'pending';
    r.error_type = null;
  });
  return runStatusEvent(store.run(index));
}

/**
 * n_cycles: auto (src/runner/rounds.ts): some config has no recorded stop yet, so another round
 * may follow the runs there are. False for a fixed study.
 */
export function roundsOpen(runs: ReadonlyArray<{ config_hash?: string }>, rounds: Rounds | undefined): boolean {
  if (!rounds) return false;
  const stopped = new Set(rounds.stops.map((s) => s.config_hash));
  return runs.some((r) => r.config_hash === undefined || !stopped.has(r.config_hash));
}

/**
 * Study status once nothing is pending or running: completed when every run completed or was
 * skipped, failed when one failed, interrupted when one was interrupted (resume reruns it);
 * null while work remains (runs, or the next round of an n_cycles: auto study).
 */
export function finalStudyStatus(runs: ReadonlyArray<Pick<RunRecord, 'status'> & { config_hash?: string }>, rounds?: Rounds): StudyStatus | null {
  if (runs.some((r) => r.status === 'pending' || r.status === 'running')) return null;
  if (runs.some((r) => r.status === 'interrupted')) return 'interrupted';
  if (roundsOpen(runs, rounds)) return null;
  if (runs.some((r) => r.status === 'failed')) return 'failed';
  return 'completed';
}

/** A study_finished event when the runs' outcome is final and the recorded status differs (launchers without a long-lived runner). */
export function finishStudyIfDone(store: ManifestStore): RunnerEvent | null {
  const status = finalStudyStatus(store.manifest.runs, store.manifest.rounds);
  if (status === null || store.manifest.status === status) return null;
  store.setStatus(status);
  return { type: 'study_finished', at: now(), status, counts: countStatuses(store.manifest.runs) };
}
