// Run and study statuses, defined once. This module imports nothing of llem, so every other module
// (the summary schema, the study grammar's target, the UI) can use it without an import cycle.
import { z } from 'zod';

/**
 * A run: pending → running → completed | failed | skipped | interrupted | invalid. `invalid`: the
 * run measured to the end, but the validity gate (src/measure/validity.ts, the study's
 * `execution.validity`) judged its numbers unusable; its result stays on disk and is never
 * averaged. Failed, skipped, interrupted and invalid runs can go back to pending (retry, resume,
 * and for invalid ones the automatic re-measurement).
 */
export const RUN_STATUSES = ['pending', 'running', 'completed', 'failed', 'skipped', 'interrupted', 'invalid'] as const;
export const runStatusSchema = z.enum(RUN_STATUSES);
export type RunStatus = z.infer<typeof runStatusSchema>;

/** What a person's retry (`r`, `R`) sends back to pending, with a new attempt. */
export const RETRYABLE_STATUSES = ['failed', 'skipped', 'interrupted', 'invalid'] as const satisfies readonly RunStatus[];
export function isRetryable(status: RunStatus): boolean {
  return (RETRYABLE_STATUSES as readonly RunStatus[]).includes(status);
}

/**
 * Whether a resume runs a run of this status again: pending ones, running ones (their runner
 * died: interrupted first) and interrupted ones; failed, skipped and invalid ones with
 * --retry-failed. Completed runs never rerun. The resume rules (src/runner/resume-rules.ts) and the
 * resume's pre-flight count (src/ui/preflight.ts) both ask this.
 */
export function rerunOnResume(status: RunStatus, retryFailed: boolean): boolean {
  if (status === 'completed') return false;
  if (status === 'failed' || status === 'skipped' || status === 'invalid') return retryFailed;
  return true;
}

/** What the manifest records for the study (src/runner/study-state.ts moves it). */
export const STUDY_STATUSES = ['running', 'paused', 'completed', 'failed', 'interrupted'] as const;
export const studyStatusSchema = z.enum(STUDY_STATUSES);
export type StudyStatus = z.infer<typeof studyStatusSchema>;

/**
 * What `llem status` reports: the recorded status, or `stopped` when the manifest says running or
 * paused but no live runner holds the study (it was killed): runs remain, `llem resume` continues.
 */
export const REPORTED_STUDY_STATUSES = [...STUDY_STATUSES, 'stopped'] as const;
export const reportedStudyStatusSchema = z.enum(REPORTED_STUDY_STATUSES);
export type ReportedStudyStatus = z.infer<typeof reportedStudyStatusSchema>;


/**
 * Why a config of an `n_cycles: auto` study stopped measuring (src/results/stopping-rule.ts):
 * its interval met the target, max_cycles was reached, its rank was decided (`decide: ranking`),
 * or it had no valid value to decide on.
 */
export const STOP_REASONS = ['target_met', 'max_cycles', 'decided', 'failed'] as const;
export const stopReasonSchema = z.enum(STOP_REASONS);
export type StopReason = z.infer<typeof stopReasonSchema>;

const nullableNumber = z.number().nullable();

/** What the stopping rule says of one config's interval: in the manifest's stops, the runner's
 * events and summary.json's `stopping`, one definition. */
export const stopFieldsSchema = z.object({
  /** Finished cycles (valid + failed). */
  cycles: z.number().int(),
  /** Valid values the interval is computed from. */
  n: z.number().int(),
  mean: nullableNumber,
  /** The wider half-width of the summary's two intervals (t, bootstrap), in the metric's unit. */
  half_width: nullableNumber,
  relative_half_width: nullableNumber,
  /** The half-width the target asks for, in the metric's unit (relative targets scale with the mean). */
  target_half_width: nullableNumber,
  /** One sentence: the interval against the target, or why there was none. */
  detail: z.string(),
});
