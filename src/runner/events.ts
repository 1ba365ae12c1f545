// What the runner tells the outside world (TUI, plain reporter, `llem watch`) and the commands it
// takes. The runner knows nothing of Ink; the UI knows nothing of child processes.
import type { ErrorType, Phase } from './protocol.ts';

export type RunStatus = 'pending' | 'running' | 'completed' | 'failed' | 'skipped' | 'interrupted';
export type StudyStatus = 'running' | 'paused' | 'completed' | 'failed' | 'interrupted';
export type GapKind = 'config' | 'cycle' | 'cooldown';

export interface StatusCounts {
  pending: number;
  running: number;
  completed: number;
  failed: number;
  skipped: number;
  interrupted: number;
}

/** Headline numbers of a completed run, copied from its result for tables. */
export interface RunHeadline {
  energy_j: number | null;
  energy_per_output_token_j: number | null;
  output_tokens_per_s: number | null;
  window_s: number | null;
  duration_s: number | null;
  flags: string[];
  /** Why energy_j is null (no NVML, counter unsupported …); absent in older manifests. */
  energy_unavailable_reason?: string | null;
}

export interface AttemptRecord {
  attempt: number;
  started_at: string;
  ended_at: string | null;
  status: RunStatus;
  error_type: ErrorType | null;
  message: string | null;
  phase_reached: Phase | null;
  stderr_tail: string | null;
  pid: number | null;
  run_dir: string;
}

export interface RunSnapshot {
  index: number;
  run_id: string;
  config_hash: string;
  cycle: number;
  status: RunStatus;
  attempts: AttemptRecord[];
  error_type: ErrorType | null;
  result: string | null; // path of result.json relative to the study dir
  headline: RunHeadline | null;
}

export interface StudySnapshot {
  study_dir: string;
  study_name: string;
  study_hash: string;
  status: StudyStatus;
  n_cycles: number;
  started_at: string;
  counts: StatusCounts;
  runs: RunSnapshot[];
  paused: boolean;
  quit_requested: boolean;
}

export type RunnerEvent =
  | { type: 'study_started'; at: string; snapshot: StudySnapshot }
  | { type: 'run_status'; at: string; run: RunSnapshot }
  | { type: 'phase'; at: string; index: number; phase: Phase }
  | { type: 'progress'; at: string; index: number; phase: Phase; done: number; total: number | null; warmup_cv: number | null }
  | { type: 'power'; at: string; index: number; samples: Array<{ t_ms: number; power_w: number | null; temp_c: number | null }>; energy_so_far_j: number | null }
  | { type: 'log'; at: string; index: number; line: string }
  | { type: 'gap'; at: string; kind: GapKind; seconds_left: number; total_seconds: number; temp_c: number | null }
  | { type: 'gap_end'; at: string; kind: GapKind; cut_short: boolean }
  | { type: 'paused'; at: string; paused: boolean }
  | { type: 'quit_requested'; at: string; requested: boolean }
  | { type: 'warning'; at: string; message: string }
  | { type: 'study_finished'; at: string; status: StudyStatus; counts: StatusCounts };

/** One API used by keys and signals alike. Every method is safe to call at any time. */
export interface RunnerControls {
  /** Start nothing new after the current run (never SIGSTOP: it would corrupt energy). */
  pause(): void;
  resume(): void;
  /**
   * Kill the child group of run `index` now (of every run in flight when omitted); the run
   * becomes `skipped` with UserSkipped. A run that is no longer in flight is left alone.
   */
  skipCurrent(index?: number): void;
  /** Cut the current gap or cooldown short. */
  skipGap(): void;
  /** Back to pending with a new attempt (history kept). Only failed/skipped/interrupted runs. */
  retry(indices: number[]): void;
  /** retry() over every failed, skipped and interrupted run. */
  retryAll(): void;
  /** Finish the current run, then stop (study `interrupted`, exit 130). Call again with false to cancel. */
  quitAfterCurrent(requested: boolean): void;
  /** Kill the current child group now, mark it interrupted/UserInterrupted, write the manifest. */
  abortNow(): Promise<void>;
}
