// result.json: one run's measurement. Written by the worker (atomically), read by the runner
// (classification), results/summary/report. Versioned; zod-checked on every read.
// MEASUREMENT.md is the source of the definitions; they are embedded in every result.
import { z } from 'zod';
import { gpuSettingsRecordSchema } from '../gpu-settings/record.ts';

export const RESULT_SCHEMA_VERSION = 1 as const;

export const FLAG_CODES = [
  'short_window',
  'few_samples',
  'energy_divergence',
  'thermal_throttle',
  'power_brake',
  'temperature_drift',
  'foreign_gpu_process',
  'warmup_not_converged',
  'persistence_mode_off',
  'energy_unavailable',
  'baseline_stale',
  'counter_reset',
  'builtin_model',
  // issue 16: an open-loop run whose server did not keep up with the offered request rate
  'over_saturated',
  // issue 17: silent errors made visible
  'failed_requests',
  'energy_method_fallback',
  'mig_whole_gpu',
  'baseline_above_load',
  // issue 15: a GPU setting (power limit, clock lock) changed between the apply and the window end
  'gpu_setting_drift',
] as const;
export type FlagCode = (typeof FLAG_CODES)[number];

const num = z.number().finite();
const nnum = num.nullable();

export const percentilesSchema = z.object({
  mean: nnum,
  p50: nnum,
  p90: nnum,
  p95: nnum,
  p99: nnum,
});
export type Percentiles = z.infer<typeof percentilesSchema>;

export const flagSchema = z.object({ code: z.enum(FLAG_CODES), message: z.string() });
export type ValidityFlag = z.infer<typeof flagSchema>;

export const gpuSnapshotSchema = z.object({
  index: z.number().int(),
  uuid: z.string(),
  name: z.string(),
  pci_bus_id: z.string().nullable(),
  memory_total_bytes: nnum,
  memory_used_bytes: nnum,
  power_limit_w: nnum,
  power_limit_default_w: nnum,
  persistence_mode: z.boolean().nullable(),
  mig_mode: z.boolean().nullable(),
  sm_clock_mhz: nnum,
  mem_clock_mhz: nnum,
  temperature_c: nnum,
  foreign_processes: z.array(z.object({ pid: z.number().int(), memory_bytes: nnum })),
});

export const environmentSchema = z.object({
  hostname: z.string(),
  platform: z.string(),
  node_version: z.string(),
  llem_version: z.string(),
  cpu_model: z.string().nullable(),
  cuda_visible_devices: z.string().nullable(),
  nvml: z.object({
    available: z.boolean(),
    reason: z.string().nullable(),
    driver_version: z.string().nullable(),
    cuda_driver_version: z.string().nullable(),
  }),
  gpus: z.array(gpuSnapshotSchema),
  /** Backend-specific versions (torch, transformers, vllm …). */
  extra: z.record(z.string(), z.string().nullable()).default({}),
  /**
   * The GPU settings the run ran under (issue 15): per GPU requested (null = default) and enforced
   * values, and whether one drifted. Absent without NVML and in results written before.
   */
  gpu_settings: gpuSettingsRecordSchema.optional(),
});
export type EnvironmentSnapshot = z.infer<typeof environmentSchema>;

// issue 16 (request-rate workloads): how the arrivals went. Absent in closed-loop runs and in
// results written before request rates existed.
export const arrivalMetricsSchema = z.object({
  /** The config's request_rate: requests/s, or 'inf' (every request scheduled at once). */
  offered_rate_per_s: z.union([num, z.literal('inf')]),
  arrival: z.string(),
  /** Rate of the seeded schedule as drawn: (scheduled requests − 1) ÷ (last − first scheduled time). */
  scheduled_rate_per_s: nnum,
  /** Departure rate: (completed requests − 1) ÷ (last − first completion time). */
  achieved_rate_per_s: nnum,
  /** Time from a request's scheduled arrival to the moment it was sent (ms): waiting for one of
   * the batch_size in-flight slots. */
  queueing_ms: z.object({ mean: nnum, p50: nnum, p95: nnum }),
  /** achieved_rate_per_s < (1 − 0.05) × scheduled_rate_per_s; null at 'inf' (nothing to fall short of). */
  over_saturated: z.boolean().nullable(),
});
export type ArrivalMetrics = z.infer<typeof arrivalMetricsSchema>;

export const metricsSchema = z.object({
  // energy (joules); null + energy_unavailable_reason when it could not be measured, never 0
  energy_j: nnum,
  energy_polled_j: nnum,
  energy_divergence: nnum,
  energy_method: z.enum(['counter', 'polled']).nullable(),
  energy_unavailable_reason: z.string().nullable(),
  baseline_power_w: nnum,
  baseline_reused: z.boolean().nullable(),
  energy_adjusted_j: nnum,
  energy_per_output_token_j: nnum,
  energy_per_output_token_adjusted_j: nnum,
  energy_per_request_j: nnum,
  energy_per_request_adjusted_j: nnum,
  cpu_energy_j: nnum,
  cpu_energy_unavailable_reason: z.string().nullable(),
  load_s: nnum,
  load_energy_j: nnum,
  // throughput
  requests: z.number().int(),
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  window_s: num,
  output_tokens_per_s: nnum,
  requests_per_s: nnum,
  // latency (milliseconds)
  ttft_ms: percentilesSchema,
  ttft_content_ms: percentilesSchema,
  itl_ms: percentilesSchema,
  tpot_ms: percentilesSchema,
  e2e_ms: percentilesSchema,
  // device
  power_mean_w: nnum,
  power_peak_w: nnum,
  temperature_max_c: nnum,
  temperature_start_c: nnum,
  temperature_end_c: nnum,
  memory_peak_bytes: nnum,
  throttle_s: z.object({ thermal: nnum, power_cap: nnum, power_brake: nnum }),
  samples: z.number().int(),
  // warmup
  warmup_prompts: z.number().int(),
  warmup_cv: nnum,
  /** null when no warmup ran (warmup_not_run_reason says why). */
  warmup_converged: z.boolean().nullable(),
  // Issue 17. Optional only so that results written before it still parse; the worker always
  // writes them (see docs/MEASUREMENT.md for each definition).
  requests_failed: z.number().int().optional(),
  output_tokens_failed: z.number().int().optional(),
  /** Why energy_method is what it is (polled: why not the counter). */
  energy_method_reason: z.string().nullable().optional(),
  throttle_fraction: z.object({ thermal: nnum, power_cap: nnum, power_brake: nnum }).optional(),
  warmup_not_run_reason: z.string().nullable().optional(),
  arrival: arrivalMetricsSchema.nullable().optional(),
});
export type RunMetrics = z.infer<typeof metricsSchema>;

// ── Issue 17: provenance of the energy numbers (optional: absent in results written before it) ──

/** One counter/power read at a window edge; t_s is seconds from the window's start_monotonic_ns. */
export const edgeReadSchema = z.object({ t_s: num, energy_mj: nnum, power_w: nnum });

/** The edges of the measurement window: energy_j is reproducible from these and power.csv. */
export const energyWindowSchema = z.object({
  /** CLOCK_MONOTONIC ns (as a decimal string) of the earliest start read: t = 0 in power.csv. */
  start_monotonic_ns: z.string(),
  devices: z.array(
    z.object({
      index: z.number().int(),
      uuid: z.string(),
      start: edgeReadSchema,
      /** null when the stop read failed (error says why). */
      stop: edgeReadSchema.nullable(),
      error: z.string().nullable(),
    }),
  ),
  /** Sampler errors of the window (first SAMPLER_ERRORS_KEPT), every one counted in sampler_errors_total. */
  sampler_errors: z.array(z.string()),
  sampler_errors_total: z.number().int(),
  samples_dropped: z.number().int(),
});
export type EnergyWindowRecord = z.infer<typeof energyWindowSchema>;

export const baselineProvenanceSchema = z.object({
  source: z.enum(['measured', 'reused', 'disabled', 'unavailable']),
  /** Why it was measured, reused, or not taken. */
  reason: z.string(),
  power_w: nnum,
  /** counter = counter energy ÷ duration; polled = mean of polled power (counter unavailable). */
  method: z.enum(['counter', 'polled']).nullable(),
  duration_s: nnum,
  measured_at: z.string().nullable(),
  /** Run that measured a reused baseline (null when measured here, or stored before run ids were). */
  source_run_id: z.string().nullable(),
  age_s: nnum,
  /** GPU temperature when the baseline was measured, and at this run's preflight. */
  temperature_c: nnum,
  current_temperature_c: nnum,
});
export type BaselineProvenance = z.infer<typeof baselineProvenanceSchema>;

export const foreignProcessCheckSchema = z.object({
  /** Compute processes on the measured GPUs that are neither this worker nor its descendants. */
  processes: z.array(z.object({ pid: z.number().int(), gpu_uuid: z.string(), memory_bytes: nnum })),
  memory_bytes: num,
  /** Highest GPU utilisation over the measured GPUs at that instant (%). */
  gpu_util_pct: nnum,
});
export type ForeignProcessCheck = z.infer<typeof foreignProcessCheckSchema>;

/** Foreign GPU processes seen at preflight (before the model loads) and at the window edges. */
export const foreignGpuSchema = z.object({
  preflight: foreignProcessCheckSchema.nullable(),
  window_start: foreignProcessCheckSchema.nullable(),
  window_stop: foreignProcessCheckSchema.nullable(),
});
export type ForeignGpu = z.infer<typeof foreignGpuSchema>;

export const runResultSchema = z.object({
  schema_version: z.literal(RESULT_SCHEMA_VERSION),
  run_id: z.string(),
  config_hash: z.string(),
  cycle: z.number().int(),
  attempt: z.number().int(),
  config: z.record(z.string(), z.unknown()),
  backend: z.object({ name: z.string(), version: z.string().nullable() }),
  model: z.object({
    id: z.string(),
    path: z.string().nullable(),
    size_bytes: nnum,
    /** sha256 of size + first/last 16 MiB for big files, of the whole file below that. */
    file_hash: z.string().nullable(),
    builtin: z.boolean(),
  }),
  started_at: z.string(),
  ended_at: z.string(),
  /** Monotonic ms offsets of each phase from child start. */
  phases: z.record(z.string(), z.object({ start_ms: num, end_ms: num })),
  environment: environmentSchema,
  metrics: metricsSchema,
  flags: z.array(flagSchema),
  /** Metric definitions as written in MEASUREMENT.md, so a result file explains itself. */
  definitions: z.record(z.string(), z.string()),
  power_csv: z.string().nullable(),
  /** issue 16: identity of the prompt set, so that two studies can be checked for the same data.
   * Absent in results written before it was recorded. */
  dataset: z.object({ sha256: z.string(), prompts: z.number().int() }).nullable().optional(),
  // issue 17 (optional only for results written before it)
  energy_window: energyWindowSchema.nullable().optional(),
  baseline: baselineProvenanceSchema.optional(),
  foreign_gpu: foreignGpuSchema.optional(),
  /** Notes on how CUDA_VISIBLE_DEVICES was mapped to NVML devices (ignored entries, index order, MIG). */
  device_selection_notes: z.array(z.string()).optional(),
});
export type RunResult = z.infer<typeof runResultSchema>;
