// plan.json and the *effective* shapes it holds (after YAML loading, defaults and validation): the
// contract between the grammar, the runner, the worker and the UI. Each is defined once here in
// zod; ./types.ts exports their types by z.infer, and the YAML schemas (./schema.ts) are the
// partial forms of these. Imports stay leaf-ward (no ./schema.ts, no backend registry) so that
// reading plan.json (src/study-dir/read.ts) pulls in no grammar.
import { z } from 'zod';
import { gpuSettingsSchema } from './gpu-settings.ts';
import { cycleTargetSchema } from './target.ts';
import { DEFAULT_VALIDITY, validityPolicySchema } from '../measure/validity.ts';
import { ARRIVAL_EXPECTED, parseArrival } from '../arrival.ts';
import type { ExecutionConfig } from './types.ts';

const int = () => z.number().int();

// ── one experiment ──────────────────────────────────────────────────────────────────────────

export const datasetSpecSchema = z.discriminatedUnion('kind', [
  /** The prompt set we ship (`dataset: builtin`). */
  z.object({ kind: z.literal('builtin'), name: z.string() }).strict(),
  /** Absolute path after resolution against the study file. */
  z.object({ kind: z.literal('jsonl'), path: z.string() }).strict(),
  /** Seeded synthetic prompts of ~input_tokens. */
  z.object({ input_tokens: int().min(1), kind: z.literal('synthetic') }).strict(),
]);

// Keys in sorted order, as the grammar builds them (canonical JSON): a parsed config keeps that order.
export const warmupConfigSchema = z
  .object({
    /** Stop warming up when latency CV over the last `window` prompts falls below this. */
    cv_threshold: z.number().gt(0).max(1),
    max_prompts: int().min(0),
    min_prompts: int().min(0),
    window: int().min(2),
  })
  .strict();

export const baselineConfigSchema = z
  .object({
    duration_seconds: z.number().min(0),
    enabled: z.boolean(),
    /** Reuse a baseline of the same study measured within this many seconds (0 = never). */
    reuse_seconds: z.number().min(0),
  })
  .strict();

export const energyConfigSchema = z
  .object({
    /** Live samples sent to the parent every this many ms (for the UI). */
    live_interval_ms: int().min(50),
    /** Also read CPU package energy through RAPL when readable. */
    rapl: z.boolean(),
    /** Polling interval of the addon's sampler thread. */
    sample_interval_ms: int().min(10),
  })
  .strict();

/** `request_rate`: requests per second (> 0), or inf. */
export const requestRateSchema = z.union([z.number().positive().finite(), z.literal('inf')], {
  errorMap: () => ({ message: 'expected requests per second (a number > 0) or inf' }),
});

export const arrivalSchema = z.string().refine((v) => parseArrival(v) !== null, { message: ARRIVAL_EXPECTED });

/**
 * One experiment: everything that determines *what is measured*. `params` holds the section of
 * the experiment's backend (`llamacpp:` in YAML) with that backend's defaults applied.
 * The config hash is computed over exactly this object (canonical JSON), so it is strict: a field
 * this llem does not know is refused rather than dropped from what is measured.
 */
export const experimentConfigSchema = z
  .object({
    // issue 16 (open-loop workloads): request_rate and arrival are present only when the study
    // sets a rate, so the hashes of closed-loop configs are what they were before request rates.
    /** Arrival process of an open loop: poisson (default), constant or gamma(<burstiness>). */
    arrival: arrivalSchema.optional(),
    /** A backend of the registry (src/backends/registry.ts). */
    backend: z.string().min(1),
    baseline: baselineConfigSchema,
    batch_size: int().min(1),
    dataset: datasetSpecSchema,
    energy: energyConfigSchema,
    /** GPU operating point; absent when every setting is `default` (src/study/gpu-settings.ts). */
    gpu: gpuSettingsSchema.optional(),
    max_new_tokens: int().min(1),
    model: z.string().min(1),
    n: int().min(1),
    params: z.record(z.string(), z.unknown()),
    precision: z.string().min(1),
    /** Offered requests per second, or 'inf' (every request at once); batch_size stays the in-flight cap. */
    request_rate: requestRateSchema.optional(),
    seed: int().min(0),
    warmup: warmupConfigSchema,
  })
  .strict();

// ── execution ───────────────────────────────────────────────────────────────────────────────

export const cycleOrderSchema = z.enum(['sequential', 'interleaved', 'shuffled']);

export const cooldownSchema = z
  .object({ target_temp_c: z.number().min(15).max(110), max_wait_seconds: z.number().min(0).default(300) })
  .strict();

/** The study's execution section with its defaults applied, as the planner resolves it. */
export const executionConfigSchema = z
  .object({
    /** Cycles planned now. With `target` (YAML `n_cycles: auto`) it starts at target.min_cycles and
     * grows as rounds are added; without, it is the fixed count. */
    n_cycles: int().min(1),
    /** The stopping rule of `n_cycles: auto` (src/study/target.ts); null or absent (plan.json written
     * before it existed) = a fixed number of cycles. */
    target: cycleTargetSchema.nullable().optional(),
    cycle_order: cycleOrderSchema,
    /** Seed of the `shuffled` order; null in YAML means "derived from the study hash" (recorded). */
    shuffle_seed: int().min(0).max(0xffffffff).nullable(),
    config_gap_seconds: z.number().min(0),
    cycle_gap_seconds: z.number().min(0),
    cooldown: cooldownSchema.nullable(),
    /** null = model-size aware default computed per run by the runner. */
    experiment_timeout_seconds: z.number().positive().nullable(),
    stall_timeout_seconds: z.number().positive(),
    max_runs_without_confirmation: int().min(0),
    parallel: z.enum(['off', 'per_gpu']),
    /**
     * The validity gate's policy with defaults applied (always written by the planner; absent in
     * plan.json files written before it: read it through validityPolicyOf).
     */
    validity: validityPolicySchema.optional(),
  })
  .strict();

export const DEFAULT_EXECUTION: ExecutionConfig = {
  n_cycles: 3,
  cycle_order: 'shuffled',
  shuffle_seed: null,
  config_gap_seconds: 5,
  cycle_gap_seconds: 30,
  cooldown: null,
  experiment_timeout_seconds: null,
  stall_timeout_seconds: 120,
  max_runs_without_confirmation: 100,
  parallel: 'off',
  target: null,
  validity: DEFAULT_VALIDITY,
};

/** plan.json's execution: a field missing from an older plan.json takes its default. */
const planExecutionSchema = executionConfigSchema
  .partial()
  .transform((e): ExecutionConfig => ({ ...DEFAULT_EXECUTION, ...e }));

// ── the plan ────────────────────────────────────────────────────────────────────────────────

/** A valid experiment in the plan. */
export const plannedConfigSchema = z.object({
  config_hash: z.string(),
  /** Short label from the swept fields, e.g. "llamacpp bs=4 tok=32". */
  label: z.string(),
  config: experimentConfigSchema,
});

/** An experiment the planner refused, with why; its config as far as it was built. */
export const skippedConfigSchema = z.object({
  label: z.string(),
  config: z.record(z.string(), z.unknown()),
  reasons: z.array(z.string()),
});

/** One run in execution order: (config_hash, cycle). `index` is the position in the order. */
export const plannedRunSchema = z.object({
  index: int().min(0),
  config_hash: z.string(),
  cycle: int(),
});

// ── the estimate ────────────────────────────────────────────────────────────────────────────

export const memoryFitSchema = z.enum(['fits', 'tight', 'wont_fit', 'unknown']);

/** Where an estimate's durations come from: the run history (src/history), the heuristic, or both. */
export const estimateSourceSchema = z.enum(['history', 'heuristic', 'mixed']);

/** Expected cycles or runs, with a range (equal for a fixed n_cycles). */
export const expectedCountSchema = z.object({ expected: z.number(), low: z.number(), high: z.number() });

export const configEstimateSchema = z.object({
  config_hash: z.string(),
  run_seconds: z.number(),
  low_seconds: z.number(),
  high_seconds: z.number(),
  /** The total timeout a run of this config gets (src/study/estimate.ts runTimeouts); absent in older plans. */
  timeout_seconds: z.number().optional(),
  memory_need_bytes: z.number().nullable(),
  memory_free_bytes: z.number().nullable(),
  memory_fit: memoryFitSchema,
  memory_reason: z.string(),
  /** Absent in plan.json files written before the history existed (the fields below too). */
  source: estimateSourceSchema.exclude(['mixed']).optional(),
  /** The history match used, e.g. "same config on this machine (4 runs)"; null for the heuristic. */
  match: z.string().nullable().optional(),
  cycles: expectedCountSchema.optional(),
});

export const estimateSchema = z.object({
  total_seconds: z.number(),
  low_seconds: z.number(),
  high_seconds: z.number(),
  /** ISO time the study would finish if started now. */
  finish_at: z.string(),
  per_config: z.array(configEstimateSchema),
  source: estimateSourceSchema.optional(),
  /** Runs the study is expected to take (n_cycles: auto: a range; fixed: the planned count). */
  runs: expectedCountSchema.optional(),
  /** What the estimate assumed, in words (history used, pilot assumption of n_cycles: auto …). */
  notes: z.array(z.string()).optional(),
});

/** Contents of plan.json in the study directory: what the runner executes. */
export const planFileSchema = z.object({
  schema_version: z.literal(1),
  study_name: z.string(),
  study_hash: z.string(),
  /** Absolute path of the study YAML it came from. */
  source_path: z.string(),
  created_at: z.string(),
  execution: planExecutionSchema,
  /** The seed actually used for `shuffled` (recorded even when derived). */
  cycle_seed: z.number(),
  configs: z.array(plannedConfigSchema),
  skipped: z.array(skippedConfigSchema),
  order: z.array(plannedRunSchema),
  warnings: z.array(z.string()).default([]),
  estimate: estimateSchema,
  /** issue 16: the study's `slo:` conditions as written (e.g. ttft_p95_ms<=200), canonical; absent = none. */
  slo: z.array(z.string()).optional(),
});
