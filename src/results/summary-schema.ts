// summary.json: cross-cycle statistics of one study. Written at study end (writeSummary) and by
// `llem results <dir> --recompute`; versioned and zod-checked on every read.
import { z } from 'zod';
import { runStatusSchema, stopFieldsSchema, stopReasonSchema, STUDY_STATUSES } from '../study-dir/statuses.ts';
import { environmentSchema, FLAG_CODES, gpuSnapshotSchema } from './schema.ts';

/** One reason the validity gate gave for an attempt (src/measure/validity.ts). */
const validityReasonSchema = z.object({ code: z.enum(FLAG_CODES), detail: z.string() });

/**
 * An attempt the validity gate judged invalid: its result stays on disk (`result`, relative to the
 * study dir) and is never averaged; the run was measured again, or ended invalid.
 */
export const invalidAttemptSchema = z.object({
  index: z.number().int(),
  run_id: z.string(),
  config_hash: z.string(),
  label: z.string(),
  cycle: z.number().int(),
  attempt: z.number().int(),
  result: z.string(),
  reasons: z.array(validityReasonSchema),
  /** The run's status now: `completed` when a later attempt was valid, `invalid` when none was. */
  run_status: runStatusSchema,
});
export type InvalidAttempt = z.infer<typeof invalidAttemptSchema>;

export const SUMMARY_SCHEMA_VERSION = 1 as const;

const num = z.number().finite();
const nnum = num.nullable();
const interval = z.tuple([num, num]).nullable();

/** The metrics summarised across cycles, in display order, with their units. */
export const SUMMARY_METRICS = [
  { key: 'energy_per_output_token_j', label: 'energy/token', unit: 'J' },
  { key: 'energy_per_output_token_adjusted_j', label: 'energy/token (adj.)', unit: 'J' },
  { key: 'output_tokens_per_s', label: 'tokens/s', unit: 'tok/s' },
  { key: 'ttft_p50_ms', label: 'TTFT p50', unit: 'ms' },
  { key: 'itl_p50_ms', label: 'ITL p50', unit: 'ms' },
  { key: 'tpot_p50_ms', label: 'TPOT p50', unit: 'ms' },
  { key: 'e2e_p50_ms', label: 'E2E p50', unit: 'ms' },
  { key: 'power_mean_w', label: 'power mean', unit: 'W' },
  { key: 'power_peak_w', label: 'power peak', unit: 'W' },
  { key: 'energy_j', label: 'energy', unit: 'J' },
  { key: 'energy_adjusted_j', label: 'energy (adj.)', unit: 'J' },
  { key: 'energy_per_request_j', label: 'energy/request', unit: 'J' },
  { key: 'requests_per_s', label: 'requests/s', unit: 'req/s' },
  { key: 'temperature_max_c', label: 'temp max', unit: '°C' },
  { key: 'memory_peak_bytes', label: 'memory peak', unit: 'B' },
  { key: 'energy_divergence', label: 'counter/polled divergence', unit: '' },
  // Tail latencies: the x axes of the energy–latency frontier and the aggregate SLO check.
  { key: 'ttft_p95_ms', label: 'TTFT p95', unit: 'ms' },
  { key: 'itl_p95_ms', label: 'ITL p95', unit: 'ms' },
  { key: 'tpot_p95_ms', label: 'TPOT p95', unit: 'ms' },
  { key: 'e2e_p95_ms', label: 'E2E p95', unit: 'ms' },
] as const;
export type SummaryMetricKey = (typeof SUMMARY_METRICS)[number]['key'];
export const SUMMARY_METRIC_KEYS = SUMMARY_METRICS.map((m) => m.key) as SummaryMetricKey[];

export const metricSummarySchema = z.object({
  n: z.number().int(),
  n_missing: z.number().int(),
  mean: nnum,
  std: nnum,
  cv: nnum,
  median: nnum,
  min: nnum,
  max: nnum,
  ci95_bootstrap: interval,
  ci95_t: interval,
  high_variance: z.boolean(),
});
export type MetricSummary = z.infer<typeof metricSummarySchema>;

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

/** n_cycles: auto: why a config stopped measuring, from the manifest's recorded stop. */
export const configStoppingSchema = stopFieldsSchema.extend({
  reason: stopReasonSchema,
  /** The round whose decision stopped it. */
  round: z.number().int(),
});
export type ConfigStopping = z.infer<typeof configStoppingSchema>;

export const configSummarySchema = z.object({
  config_hash: z.string(),
  label: z.string(),
  /** Values of the study's swept fields for this config (flattened dotted names). */
  swept: z.record(z.string(), scalar),
  config: z.record(z.string(), z.unknown()),
  planned_runs: z.number().int(),
  counts: z.object({
    completed: z.number().int(),
    failed: z.number().int(),
    skipped: z.number().int(),
    interrupted: z.number().int(),
    pending: z.number().int(),
    running: z.number().int(),
    /** Runs that ended invalid (summaries written before the validity gate: 0). */
    invalid: z.number().int().default(0),
  }),
  /** Fewer completed runs than planned: statistics cover only what finished. */
  partial: z.boolean(),
  metrics: z.record(z.string(), metricSummarySchema),
  /** How many completed runs carried each validity flag (codes absent = 0). */
  flags: z.record(z.enum(FLAG_CODES), z.number().int()),
  /** Metrics whose CV is above the threshold (energy_divergence excluded: see its own flag). */
  high_variance_metrics: z.array(z.string()),
  /** run_ids of the results the statistics are computed from: each completed run's valid attempt. */
  runs: z.array(z.string()),
  /** n_cycles: auto: why it stopped (null: not stopped yet, the study is unfinished); absent for a fixed n_cycles. */
  stopping: configStoppingSchema.nullable().optional(),
});
export type ConfigSummary = z.infer<typeof configSummarySchema>;

export const excludedRunSchema = z.object({
  index: z.number().int(),
  run_id: z.string(),
  config_hash: z.string(),
  label: z.string(),
  cycle: z.number().int(),
  status: runStatusSchema,
  error_type: z.string().nullable(),
  reason: z.string(),
  attempts: z.number().int(),
  phase_reached: z.string().nullable(),
  /** An invalid run: each attempt the gate judged invalid, with its reasons (absent before the gate: none). */
  invalid_attempts: z.array(z.object({ attempt: z.number().int(), result: z.string(), reasons: z.array(validityReasonSchema) })).default([]),
});
export type ExcludedRun = z.infer<typeof excludedRunSchema>;

// The study-level projection of a run's environment (src/results/schema.ts), recorded once.
export const summaryEnvironmentSchema = environmentSchema
  .pick({ hostname: true, platform: true, node_version: true, llem_version: true, cpu_model: true, cuda_visible_devices: true })
  .extend({
    nvml_available: z.boolean(),
    nvml_reason: z.string().nullable(),
    driver_version: z.string().nullable(),
    cuda_driver_version: z.string().nullable(),
    gpus: z.array(
      gpuSnapshotSchema.pick({
        index: true,
        uuid: true,
        name: true,
        memory_total_bytes: true,
        power_limit_w: true,
        persistence_mode: true,
        mig_mode: true,
      }),
    ),
    extra: z.record(z.string(), z.string().nullable()),
    /** Runs whose environment differs from this one (GPU, driver, host), described; empty = all same. */
    differences: z.array(z.string()),
  });
export type SummaryEnvironment = z.infer<typeof summaryEnvironmentSchema>;

export const studySummarySchema = z.object({
  schema_version: z.literal(SUMMARY_SCHEMA_VERSION),
  generated_at: z.string(),
  study: z.object({
    name: z.string(),
    hash: z.string(),
    source_path: z.string(),
    created_at: z.string(),
    /** From the manifest; 'unknown' when the study dir has none (results read from run dirs only). */
    status: z.enum([...STUDY_STATUSES, 'unknown']),
    /** Some planned run has not finished (pending, running, interrupted) or a config is incomplete. */
    partial: z.boolean(),
    counts: z.object({
      planned: z.number().int(),
      completed: z.number().int(),
      failed: z.number().int(),
      skipped: z.number().int(),
      interrupted: z.number().int(),
      pending: z.number().int(),
      running: z.number().int(),
      invalid: z.number().int().default(0),
    }),
  }),
  protocol: z.object({
    n_cycles: z.number().int(),
    cycle_order: z.string(),
    cycle_seed: z.number(),
    shuffle_seed: z.number().nullable(),
    config_gap_seconds: num,
    cycle_gap_seconds: num,
    cooldown: z.object({ target_temp_c: num, max_wait_seconds: num }).nullable(),
    experiment_timeout_seconds: nnum,
    stall_timeout_seconds: num,
    parallel: z.string(),
    planned_runs: z.number().int(),
    /** n_cycles: auto: the stopping rule (null or absent: a fixed n_cycles). n_cycles is then the most cycles any config took. */
    target: z
      .object({
        metric: z.string(),
        /** As the plan says it: "±5 % of the mean", "±0.5 mJ". */
        ci_half_width: z.string(),
        min_cycles: z.number().int(),
        max_cycles: z.number().int(),
        decide: z.string().nullable(),
      })
      .nullable()
      .optional(),
  }),
  environment: summaryEnvironmentSchema.nullable(),
  statistics: z.object({
    confidence: num,
    bootstrap_method: z.literal('percentile'),
    bootstrap_resamples: z.number().int(),
    bootstrap_seed: z.number().int(),
    /** How each config's resampling seed is derived from bootstrap_seed. */
    seed_derivation: z.string(),
    std: z.literal('sample (n - 1)'),
    quantiles: z.literal('linear interpolation (type 7)'),
    high_variance_cv: num,
    /** The interval shown as ± (results, report, compare); both stay in each metric (absent in older summaries). */
    interval_shown: z.string().optional(),
    metrics: z.array(z.object({ key: z.string(), label: z.string(), unit: z.string() })),
  }),
  swept_fields: z.array(z.string()),
  configs: z.array(configSummarySchema),
  excluded_runs: z.array(excludedRunSchema),
  /**
   * Every attempt the validity gate judged invalid, whether its run was then measured again
   * validly (run_status completed) or ended invalid; none of them is in any statistic.
   */
  invalid_attempts: z.array(invalidAttemptSchema).default([]),
  skipped_configs: z.array(z.object({ label: z.string(), reasons: z.array(z.string()) })),
  warnings: z.array(z.string()),
});
export type StudySummary = z.infer<typeof studySummarySchema>;
