// `llem status --json` (and `llem run --json`): a stable interface for scripts. Add fields; never
// rename or remove them.
import type { AttemptValidity, Manifest, ReportedStudyStatus, RunStatus, StatusCounts, StopReason } from '../study-dir/schema.ts';
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
  /**
   * n_cycles: auto: the rounds decided and, per config (in the order of its first run), why it
   * stopped (reason null: still measuring) after how many cycles. null for a fixed n_cycles.
   */
  stopping: {
    rounds: number;
    configs: Array<{ config_hash: string; reason: StopReason | null; cycles: number; detail: string | null }>;
  } | null;
}

/** Per config of an n_cycles: auto study: its recorded stop, or still measuring with the cycles it has. */
export function stoppingOfManifest(m: Pick<Manifest, 'runs' | 'rounds'>): StatusJson['stopping'] {
  if (!m.rounds) return null;
  const stops = new Map(m.rounds.stops.map((s) => [s.config_hash, s]));
  const cycles = new Map<string, number>();
  for (const r of m.runs) {
    if (!cycles.has(r.config_hash)) cycles.set(r.config_hash, 0);
    if (r.status !== 'pending' && r.status !== 'running' && r.status !== 'interrupted') cycles.set(r.config_hash, cycles.get(r.config_hash)! + 1);
  }
  return {
    rounds: m.rounds.decided,
    configs: [...cycles].map(([hash, n]) => {
      const s = stops.get(hash);
      return { config_hash: hash, reason: s?.reason ?? null, cycles: s?.cycles ?? n, detail: s?.detail ?? null };
    }),
  };
}

/**
 * The study's status as it stands: what the manifest records, except that a manifest still saying
 * running or paused while no live runner holds the study means its runner was killed: `stopped`
 * when runs remain (`llem resume` continues), else the outcome of its runs.
 */
export function reportedStudyStatus(m: Manifest, runner: RunnerInfo): ReportedStudyStatus {
  if ((m.status !== 'running' && m.status !== 'paused') || runner.alive !== false) return m.status;
  const remain = m.counts.pending + m.counts.running + m.counts.interrupted > 0;
  return remain ? 'stopped' : (finalStudyStatus(m.runs, m.rounds) ?? 'stopped');
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
    stopping: stoppingOfManifest(m),
  };
}

function validityOf(v: AttemptValidity | undefined): StatusJson['runs'][number]['validity'] {
  return v ? { valid: v.valid, reasons: v.reasons } : null;
}
