// `llem status --json` (and `llem run --json`): a stable interface for scripts. Add fields; never
// rename or remove them.
import type { AttemptValidity, Manifest, ReportedStudyStatus, RunStatus, StatusCounts } from '../study-dir/schema.ts';
import type { RunnerInfo } from './launchers/types.ts';
import type { ErrorType } from './protocol.ts';
import { finalStudyStatus, invalidAttempts } from './transitions.ts';

export interface StatusJson {
  status: ReportedStudyStatus;
  counts: StatusCounts;
  runs: Array<{
    index: number;
    config_hash: string;
    cycle: number;
    status: RunStatus;
    error_type: ErrorType | null;
    attempts: number;
    result: string | null;
    /** The validity gate's judgement of the run's latest attempt that wrote a result (null: none has). */
    validity: Pick<AttemptValidity, 'valid' | 'reasons'> | null;
    /** How many of its attempts the gate judged invalid (their results stay in their run dirs). */
    invalid_attempts: number;
  }>;
  runner: RunnerInfo;
}

/**
 * The study's status as it stands: what the manifest records, except that a manifest still saying
 * running or paused while no live runner holds the study means its runner was killed: `stopped`
 * when runs remain (`llem resume` continues), else the outcome of its runs.
 */
export function reportedStudyStatus(m: Manifest, runner: RunnerInfo): ReportedStudyStatus {
  if ((m.status !== 'running' && m.status !== 'paused') || runner.alive !== false) return m.status;
  const remain = m.counts.pending + m.counts.running + m.counts.interrupted > 0;
  return remain ? 'stopped' : (finalStudyStatus(m.runs) ?? 'stopped');
}

export function statusJson(m: Manifest, runner: RunnerInfo): StatusJson {
  return {
    status: reportedStudyStatus(m, runner),
    counts: { ...m.counts },
    runs: m.runs.map((r) => ({
      index: r.index,
      config_hash: r.config_hash,
      cycle: r.cycle,
      status: r.status,
      error_type: r.error_type,
      attempts: r.attempts.length,
      result: r.result,
      validity: validityOf([...r.attempts].reverse().find((a) => a.validity !== undefined)?.validity),
      invalid_attempts: invalidAttempts(r),
    })),
    runner,
  };
}

function validityOf(v: AttemptValidity | undefined): StatusJson['runs'][number]['validity'] {
  return v ? { valid: v.valid, reasons: v.reasons } : null;
}
