// The formats of a study directory's files, each defined once in zod (types by z.infer): run and
// study statuses, the headline, attempts, the manifest, the snapshot the runner publishes, plan.json,
// slurm.json and the lock owner. The runner writes them, and every reader (runner, results, UI,
// CLI) checks them through src/study-dir/read.ts.
import { z } from 'zod';
import { ERROR_TYPES, PHASES } from '../runner/protocol.ts';
import { treeCleanupSchema } from '../runner/process-tree.ts';
import { FLAG_CODES, metricsSchema } from '../results/schema.ts';
import { gpuDeviceSettingsSchema } from '../gpu-settings/record.ts';

// ── statuses (src/study-dir/statuses.ts: no imports, so that any module can use them) ──────────
export * from './statuses.ts';
import { runStatusSchema, stopFieldsSchema, stopReasonSchema, studyStatusSchema, type RunStatus } from './statuses.ts';

export const errorTypeSchema = z.enum(ERROR_TYPES);
export const phaseSchema = z.enum(PHASES);

const count = z.number().int();
export const statusCountsSchema = z.object({
  pending: count,
  running: count,
  completed: count,
  failed: count,
  skipped: count,
  interrupted: count,
  /** Absent in manifests, journals and snapshots written before the validity gate: 0. */
  invalid: count.default(0),
});
export type StatusCounts = z.infer<typeof statusCountsSchema>;

export function emptyCounts(): StatusCounts {
  return { pending: 0, running: 0, completed: 0, failed: 0, skipped: 0, interrupted: 0, invalid: 0 };
}

export function countStatuses(runs: ReadonlyArray<{ status: RunStatus }>): StatusCounts {
  const counts = emptyCounts();
  for (const r of runs) counts[r.status] += 1;
  return counts;
}

// ── runs ────────────────────────────────────────────────────────────────────────────────────

const metric = metricsSchema.shape;

/** Headline numbers of a completed run, copied from its result (the result's own metric fields) for tables. */
export const headlineSchema = z.object({
  energy_j: metric.energy_j,
  energy_per_output_token_j: metric.energy_per_output_token_j,
  output_tokens_per_s: metric.output_tokens_per_s,
  window_s: metric.window_s.nullable(),
  /** Wall time of the run, from the result's started_at/ended_at. */
  duration_s: z.number().nullable(),
  flags: z.array(z.string()),
  /** Why energy_j is null (no NVML, counter unsupported …); absent in older manifests. */
  energy_unavailable_reason: metric.energy_unavailable_reason.optional(),
});
export type RunHeadline = z.infer<typeof headlineSchema>;

/** The limits an attempt ran under (runTimeouts in src/study/estimate.ts computes them). */
export const runTimeoutsSchema = z.object({
  /** Total timeout of the run. */
  timeout_seconds: z.number().positive(),
  /** No heartbeat for this long = stall; null = none. */
  stall_timeout_seconds: z.number().positive().nullable(),
});
export type RunTimeouts = z.infer<typeof runTimeoutsSchema>;

/**
 * The validity gate's judgement of an attempt that measured to the end (src/measure/validity.ts
 * judgeValidity under the plan's policy): recorded on valid attempts too, so it can be audited.
 */
export const attemptValiditySchema = z.object({
  valid: z.boolean(),
  reasons: z.array(z.object({ code: z.enum(FLAG_CODES), detail: z.string() })),
  /** A foreign-process reason under policy `wait`: the re-measurement waits the gap and cooldown first. */
  wait_before_retry: z.boolean(),
});
export type AttemptValidity = z.infer<typeof attemptValiditySchema>;

export const attemptSchema = z.object({
  attempt: z.number().int().min(1),
  started_at: z.string(),
  ended_at: z.string().nullable(),
  status: runStatusSchema,
  error_type: errorTypeSchema.nullable(),
  message: z.string().nullable(),
  phase_reached: phaseSchema.nullable(),
  stderr_tail: z.string().nullable(),
  /** The worker's pid (local launcher) or the Slurm task's `llem worker` pid. */
  pid: z.number().int().nullable(),
  run_dir: z.string(),
  /** Host the attempt ran on, so that `pid` is only ever looked up there (absent in older manifests). */
  host: z.string().optional(),
  /** Start time of `pid` (clock ticks since boot, /proc/<pid>/stat field 22), so pid reuse is not mistaken for our child. */
  pid_start_ticks: z.number().nullable().optional(),
  /** What was left of the run's process tree after it ended (absent: nothing was checked). */
  tree_cleanup: treeCleanupSchema.nullable().optional(),
  /** The timeouts this attempt ran under (absent in older manifests). */
  timeouts: runTimeoutsSchema.optional(),
  /** The validity gate's judgement of its result (attempts that wrote one; absent otherwise and in older manifests). */
  validity: attemptValiditySchema.optional(),
  /** The GPU settings applied and verified before its child started (absent: none applied). */
  gpu_settings: z.array(gpuDeviceSettingsSchema).optional(),
});
export type AttemptRecord = z.infer<typeof attemptSchema>;

export const runRecordSchema = z.object({
  index: z.number().int().min(0),
  run_id: z.string(),
  config_hash: z.string(),
  cycle: z.number().int(),
  status: runStatusSchema,
  attempts: z.array(attemptSchema),
  error_type: errorTypeSchema.nullable(),
  /** Path of result.json relative to the study dir. */
  result: z.string().nullable(),
  headline: headlineSchema.nullable(),
});
export type RunRecord = z.infer<typeof runRecordSchema>;
/** A run as the runner publishes it (events, snapshots): its manifest record. */
export type RunSnapshot = RunRecord;

// ── n_cycles: auto: where the stopping rule stands ──────────────────────────────────────────

/** One config under the stopping rule (src/results/stopping-rule.ts ConfigDecision, as published). */
export const configProgressSchema = stopFieldsSchema.extend({
  config_hash: z.string(),
  /** continue: another cycle next round; waiting: cycles of this round still to finish. */
  status: z.enum(['continue', 'waiting', 'stopped']),
  reason: stopReasonSchema.nullable(),
});
export type ConfigProgress = z.infer<typeof configProgressSchema>;

/** A config's recorded stop: final, so that a resume continues the rule where it stopped. */
export const configStopSchema = configProgressSchema.omit({ status: true }).extend({
  reason: stopReasonSchema,
  /** The round whose decision stopped it (1 = the decision after the first min_cycles cycles). */
  round: z.number().int().min(1),
  at: z.string(),
});
export type ConfigStop = z.infer<typeof configStopSchema>;

/** The rounds of an `n_cycles: auto` study so far. */
export const roundsSchema = z.object({
  /** Round decisions taken (each appended a round or stopped configs). */
  decided: z.number().int().min(0),
  stops: z.array(configStopSchema),
});
export type Rounds = z.infer<typeof roundsSchema>;

// ── the manifest ────────────────────────────────────────────────────────────────────────────

export const MANIFEST_SCHEMA_VERSION = 1 as const;

/** Timeouts given to `llem resume` (--experiment-timeout, --stall-timeout): they replace the plan's until changed. */
export const timeoutOverrideSchema = z.object({
  experiment_timeout_seconds: z.number().positive().nullable(),
  stall_timeout_seconds: z.number().positive().nullable(),
  set_at: z.string(),
});
export type TimeoutOverride = z.infer<typeof timeoutOverrideSchema>;

export const manifestSchema = z.object({
  schema_version: z.literal(MANIFEST_SCHEMA_VERSION),
  study_name: z.string(),
  study_hash: z.string(),
  /** sha256 of the frozen study.yaml, to refuse a resume against a changed study. */
  study_yaml_sha256: z.string().nullable(),
  status: studyStatusSchema,
  n_cycles: z.number().int().min(1),
  created_at: z.string(),
  started_at: z.string(),
  updated_at: z.string(),
  counts: statusCountsSchema,
  runs: z.array(runRecordSchema),
  /** Present when runs are stored in chunk files (large studies); `runs` in the file is then empty. */
  run_chunks: z.object({ dir: z.string(), runs_per_chunk: z.number().int().min(1), count: z.number().int().min(0) }).optional(),
  timeout_override: timeoutOverrideSchema.optional(),
  /**
   * n_cycles: auto: the rounds decided and each stopped config (absent: a fixed study). Stored in
   * `rounds_file` (rounds.json), written only when it changes, not in every header rewrite.
   */
  rounds: roundsSchema.optional(),
  rounds_file: z.string().optional(),
});
export type Manifest = z.infer<typeof manifestSchema>;

// ── the snapshot the runner publishes (events, `llem watch`, results) ─────────────────────────

export const studySnapshotSchema = z.object({
  study_dir: z.string(),
  study_name: z.string(),
  study_hash: z.string(),
  status: studyStatusSchema,
  n_cycles: z.number().int(),
  started_at: z.string(),
  counts: statusCountsSchema,
  runs: z.array(runRecordSchema),
  /** A pause was asked for (it takes effect after the run in progress; `status` says paused then). */
  paused: z.boolean(),
  quit_requested: z.boolean(),
  /** n_cycles: auto: the manifest's rounds (absent: a fixed study, or none decided yet). */
  rounds: roundsSchema.optional(),
});
export type StudySnapshot = z.infer<typeof studySnapshotSchema>;

// ── plan.json (its shapes are the study's effective ones: src/study/plan-schema.ts) ─────────────

export { planFileSchema } from '../study/plan-schema.ts';

// ── slurm.json ──────────────────────────────────────────────────────────────────────────────

export const slurmSubmissionSchema = z.object({
  job_id: z.string(),
  submitted_at: z.string(),
  /** Run indices = array task ids. */
  indices: z.array(z.number().int().min(0)),
  array: z.string(),
  time_limit: z.string(),
  partition: z.string().nullable(),
  gpus_per_run: z.number().int().nullable(),
  sbatch_args: z.array(z.string()),
  worker_entry: z.string().nullable(),
  script: z.string(),
  /** Set by `llem cancel` (and by resume before resubmitting): tasks of it must not start runs. */
  cancelled_at: z.string().nullable(),
  /**
   * Set when a local runner took the study over (`llem resume` without --launcher slurm): the
   * submission owns no run any more, so nothing Slurm says about it changes the manifest.
   */
  released_at: z.string().nullable().default(null),
});
export type SlurmSubmission = z.infer<typeof slurmSubmissionSchema>;

/**
 * A run its worker recorded while Slurm was still ending the task (JobState=COMPLETING hides why:
 * scancel, preemption, node failure); the poller replaces the provisional record with Slurm's
 * final state once the task has ended.
 */
export const provisionalVerdictSchema = z.object({
  index: z.number().int().min(0),
  attempt: z.number().int().min(1),
  job_id: z.string(),
  recorded_at: z.string(),
});
export type ProvisionalVerdict = z.infer<typeof provisionalVerdictSchema>;

export const slurmStateSchema = z.object({
  schema_version: z.literal(1),
  submissions: z.array(slurmSubmissionSchema),
  provisional: z.array(provisionalVerdictSchema).default([]),
});
export type SlurmState = z.infer<typeof slurmStateSchema>;

// ── the lock owner ──────────────────────────────────────────────────────────────────────────

export const lockOwnerSchema = z.object({ pid: z.number().int(), hostname: z.string(), started_at: z.string() });
export type LockOwner = z.infer<typeof lockOwnerSchema>;
