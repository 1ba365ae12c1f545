// The manifest transitions of a run, one set for every launcher: the local runner applies them to
// the ManifestStore it holds for the whole study, a Slurm task (and `llem cancel`, the pollers) to
// one it opens for a short critical section under the study lock. Each returns the run_status
// event to journal, and the caller commits (journal first, then the manifest).
import os from 'node:os';
import path from 'node:path';
import { invalidMessage, judgeValidity, type ValidityPolicy } from '../measure/validity.ts';
import type { RunResult } from '../results/schema.ts';
import { RESULT_FILE } from '../study-dir/files.ts';
import { runSnapshotOf, headlineOf } from '../study-dir/snapshot.ts';
import { countStatuses, type AttemptValidity, type Rounds, type RunRecord, type RunTimeouts, type StudyStatus } from '../study-dir/schema.ts';
import type { TreeCleanup } from './process-tree.ts';
import type { ManifestStore } from './manifest.ts';
import type { RunnerEvent } from './events.ts';
import type { ErrorType, Phase } from './protocol.ts';
import type { GpuDeviceSettings } from '../gpu-settings/record.ts';

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
  /** The GPU settings applied before the child started (src/runner/gpu-settings.ts); null: none. */
  gpu_settings?: GpuDeviceSettings[] | null;
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
      ...(start.gpu_settings ? { gpu_settings: start.gpu_settings } : {}),
    });
  });
  return runStatusEvent(store.run(index), startedAt);
}

/** The validity gate's judgement of a result, as the manifest records it on the attempt. */
export function judgeAttempt(result: RunResult, policy: ValidityPolicy): AttemptValidity {
  const v = judgeValidity(result, policy);
  return { valid: v.valid, reasons: v.reasons, wait_before_retry: v.wait_before_retry };
}

/** How an attempt ended, as its launcher classified it (src/runner/attempt.ts attemptEndOf). */
export interface AttemptEnd {
  /** `invalid`: the child wrote a result, and the validity gate judged it unusable. */
  status: 'completed' | 'failed' | 'skipped' | 'interrupted' | 'invalid';
  error_type: ErrorType | null;
  message: string | null;
  phase_reached: Phase | null;
  /** A short tail for the manifest (worker.log has everything); null for completed runs. */
  stderr_tail: string | null;
  tree_cleanup: TreeCleanup | null;
  /** Absolute path of the result.json the child wrote (completed and invalid). */
  result_path: string | null;
  result: RunResult | null;
  /** The validity gate's judgement of `result` (completed and invalid; null otherwise). */
  validity: AttemptValidity | null;
}

/**
 * Records how attempt `attempt` of run `index` ended. Null when that attempt was already recorded
 * as ended by someone else (`llem cancel`, a Slurm poller) — except that a result (completed or
 * invalid) always wins over an interrupted mark, since the measurement did finish. An attempt that
 * is no longer the run's latest changes only its own record, unless it completed. An invalid
 * attempt makes the run invalid without a result or headline: its result.json stays in the
 * attempt's run dir, and requeueInvalid decides whether it is measured again.
 */
export function endAttempt(store: ManifestStore, studyDir: string, index: number, attempt: number, end: AttemptEnd): RunnerEvent | null {
  const r = store.run(index);
  const a = r.attempts.find((x) => x.attempt === attempt);
  if (!a) throw new Error(`${store.manifestPath}: run ${index} has no attempt ${attempt}`);
  const measured = end.status === 'completed' || end.status === 'invalid';
  if (a.status !== 'running' && !(measured && a.status === 'interrupted')) return null;
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
    if (end.validity) att.validity = end.validity;
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
 * Run `index` gets a result a worker left without its runner recording it (the runner died between
 * the worker's result and the checkpoint): judged by the validity gate under `policy` like any
 * other, so the run becomes completed, or invalid with its reasons (requeueInvalid then decides).
 * `attempt` is the attempt that wrote it: its record is updated, or added when the runner died
 * before recording the attempt at all.
 */
export function adoptResult(
  store: ManifestStore,
  studyDir: string,
  index: number,
  found: { attempt: number; runDir: string; result: RunResult },
  policy: ValidityPolicy,
): RunnerEvent {
  const resultPath = path.join(found.runDir, RESULT_FILE);
  const validity = judgeAttempt(found.result, policy);
  const status = validity.valid ? 'completed' : 'invalid';
  store.updateRun(index, (r) => {
    const message = validity.valid ? null : invalidMessage(validity.reasons);
    const a = r.attempts.find((x) => x.attempt === found.attempt);
    // like endAttempt: an invalid attempt that is no longer the latest changes only its own record
    const newer = r.attempts.some((x) => x.attempt > found.attempt);
    if (validity.valid || !newer) {
      r.status = status;
      r.error_type = null;
      if (validity.valid) {
        r.result = path.relative(studyDir, resultPath);
        r.headline = headlineOf(found.result);
      }
    }
    if (a) {
      Object.assign(a, { status, error_type: null, message, ended_at: a.ended_at ?? found.result.ended_at, validity });
      return;
    }
    r.attempts.push({
      attempt: found.attempt,
      started_at: found.result.started_at,
      ended_at: found.result.ended_at,
      status,
      error_type: null,
      message: `result left by a worker whose runner died before recording it${message ? `; ${message}` : ''}`,
      phase_reached: null,
      stderr_tail: null,
      pid: null,
      run_dir: path.relative(studyDir, found.runDir),
      validity,
    });
    r.attempts.sort((x, y) => x.attempt - y.attempt);
  });
  return runStatusEvent(store.run(index));
}

/** How many of a run's attempts the validity gate judged invalid. */
export function invalidAttempts(r: Pick<RunRecord, 'attempts'>): number {
  return r.attempts.filter((a) => a.status === 'invalid').length;
}

/**
 * Whether an invalid run is measured again automatically: while its invalid attempts number at
 * most `max_invalid_retries` (the first measurement plus that many re-measurements). A person's
 * retry (r, R, `resume --retry-failed`) measures it once more whatever the count.
 */
export function invalidRetryDue(r: Pick<RunRecord, 'status' | 'attempts'>, policy: Pick<ValidityPolicy, 'max_invalid_retries'>): boolean {
  return r.status === 'invalid' && invalidAttempts(r) <= policy.max_invalid_retries;
}

/**
 * An invalid run goes back to pending as the next attempt of the same (config, cycle) when
 * invalidRetryDue; it keeps its place in the plan order, so it is measured before every later run.
 * Null when it stays invalid (or is not invalid).
 */
export function requeueInvalid(store: ManifestStore, index: number, policy: Pick<ValidityPolicy, 'max_invalid_retries'>): RunnerEvent | null {
  return invalidRetryDue(store.run(index), policy) ? requeueRun(store, index) : null;
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
 * skipped, failed when one failed or ended invalid (its numbers are not usable: the study did not
 * measure what it planned), interrupted when one was interrupted (resume reruns it); null while
 * work remains (runs, or the next round of an n_cycles: auto study).
 */
export function finalStudyStatus(runs: ReadonlyArray<Pick<RunRecord, 'status'> & { config_hash?: string }>, rounds?: Rounds): StudyStatus | null {
  if (runs.some((r) => r.status === 'pending' || r.status === 'running')) return null;
  if (runs.some((r) => r.status === 'interrupted')) return 'interrupted';
  if (roundsOpen(runs, rounds)) return null;
  if (runs.some((r) => r.status === 'failed' || r.status === 'invalid')) return 'failed';
  return 'completed';
}

/** A study_finished event when the runs' outcome is final and the recorded status differs (launchers without a long-lived runner). */
export function finishStudyIfDone(store: ManifestStore): RunnerEvent | null {
  const status = finalStudyStatus(store.manifest.runs, store.manifest.rounds);
  if (status === null || store.manifest.status === status) return null;
  store.setStatus(status);
  return { type: 'study_finished', at: now(), status, counts: countStatuses(store.manifest.runs) };
}
