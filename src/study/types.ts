// Contract between the grammar (src/study), the runner, the worker and the UI.
// These are the *effective* shapes after YAML loading, defaults and validation.
import type { GpuSettings } from './gpu-settings.ts';
import type { CycleTarget } from './target.ts';
import type { ValidityPolicy } from '../measure/validity.ts';

/** Backends known to the registry. The grammar never hard-codes this list; it is here for types. */
export type BackendName =
  | 'llamacpp'
  | 'vllm'
  | 'sglang'
  | 'trtllm'
  | 'llama-server'
  | 'openai'
  | 'command'
  | 'pytorch';

export type DatasetSpec =
  | { kind: 'builtin'; name: string } // the prompt set we ship (`dataset: builtin`)
  | { kind: 'jsonl'; path: string } // absolute path after resolution against the study file
  | { kind: 'synthetic'; input_tokens: number }; // seeded synthetic prompts of ~input_tokens

export interface WarmupConfig {
  /** Stop warming up when latency CV over the last `window` prompts falls below this. */
  cv_threshold: number;
  window: number;
  min_prompts: number;
  max_prompts: number;
}

export interface BaselineConfig {
  enabled: boolean;
  duration_seconds: number;
  /** Reuse a baseline of the same study measured within this many seconds (0 = never). */
  reuse_seconds: number;
}

export interface EnergyConfig {
  /** Polling interval of the addon's sampler thread. */
  sample_interval_ms: number;
  /** Live samples sent to the parent every this many ms (for the UI). */
  live_interval_ms: number;
  /** Also read CPU package energy through RAPL when readable. */
  rapl: boolean;
}

/**
 * One experiment: everything that determines *what is measured*. `params` holds the section of
 * the experiment's backend (`llamacpp:` in YAML) with that backend's defaults applied.
 * The config hash is computed over exactly this object (canonical JSON).
 */
export interface ExperimentConfig {
  model: string;
  backend: BackendName | string;
  precision: string;
  n: number;
  max_new_tokens: number;
  batch_size: number;
  dataset: DatasetSpec;
  seed: number;
  warmup: WarmupConfig;
  baseline: BaselineConfig;
  energy: EnergyConfig;
  /** GPU operating point; absent when every setting is `default` (src/study/gpu-settings.ts). */
  gpu?: GpuSettings;
  params: Record<string, unknown>;
  // issue 16 (open-loop workloads). Present only when the study sets request_rate, so the hashes
  // of closed-loop configs are what they were before request rates existed.
  /** Offered requests per second, or 'inf' (every request at once); batch_size stays the in-flight cap. */
  request_rate?: number | 'inf';
  /** Arrival process of an open loop: poisson (default), constant or gamma(<burstiness>). */
  arrival?: string;
}

export type CycleOrder = 'sequential' | 'interleaved' | 'shuffled';

export interface ExecutionConfig {
  /** Cycles planned now. With `target` (YAML `n_cycles: auto`) it starts at target.min_cycles and
   * grows as rounds are added; without, it is the fixed count. */
  n_cycles: number;
  /** The stopping rule of `n_cycles: auto` (src/study/target.ts); null or absent (plan.json written
   * before it existed) = a fixed number of cycles. */
  target?: CycleTarget | null;
  cycle_order: CycleOrder;
  /** Seed of the `shuffled` order; null in YAML means "derived from the study hash" (recorded). */
  shuffle_seed: number | null;
  config_gap_seconds: number;
  cycle_gap_seconds: number;
  cooldown: { target_temp_c: number; max_wait_seconds: number } | null;
  /** null = model-size aware default computed per run by the runner. */
  experiment_timeout_seconds: number | null;
  stall_timeout_seconds: number;
  max_runs_without_confirmation: number;
  parallel: 'off' | 'per_gpu';
  /**
   * The validity gate's policy with defaults applied (always written by the planner; absent in
   * plan.json files written before it: read it through validityPolicyOf).
   */
  validity?: ValidityPolicy;
}

/** A valid experiment in the plan. */
export interface PlannedConfig {
  config_hash: string;
  /** Short label from the swept fields, e.g. "llamacpp bs=4 tok=32". */
  label: string;
  config: ExperimentConfig;
}

export interface SkippedConfig {
  label: string;
  config: Record<string, unknown>;
  reasons: string[];
}

/** One run in execution order: (config_hash, cycle). `index` is the position in the order. */
export interface PlannedRun {
  index: number;
  config_hash: string;
  cycle: number;
}

export type MemoryFit = 'fits' | 'tight' | 'wont_fit' | 'unknown';

/** Where an estimate's durations come from: the run history (src/history), the heuristic, or both. */
export type EstimateSource = 'history' | 'heuristic' | 'mixed';

/** Expected cycles or runs, with a range (equal for a fixed n_cycles). */
export interface ExpectedCount {
  expected: number;
  low: number;
  high: number;
}

export interface Estimate {
  total_seconds: number;
  low_seconds: number;
  high_seconds: number;
  /** ISO time the study would finish if started now. */
  finish_at: string;
  per_config: Array<{
    config_hash: string;
    run_seconds: number;
    low_seconds: number;
    high_seconds: number;
    /** The total timeout a run of this config gets (src/study/estimate.ts runTimeouts); absent in older plans. */
    timeout_seconds?: number;
    memory_need_bytes: number | null;
    memory_free_bytes: number | null;
    memory_fit: MemoryFit;
    memory_reason: string;
    /** Absent in plan.json files written before the history existed (the fields below too). */
    source?: 'history' | 'heuristic';
    /** The history match used, e.g. "same config on this machine (4 runs)"; null for the heuristic. */
    match?: string | null;
    cycles?: ExpectedCount;
  }>;
  source?: EstimateSource;
  /** Runs the study is expected to take (n_cycles: auto: a range; fixed: the planned count). */
  runs?: ExpectedCount;
  /** What the estimate assumed, in words (history used, pilot assumption of n_cycles: auto …). */
  notes?: string[];
}

/** Contents of plan.json in the study directory: what the runner executes. */
export interface PlanFile {
  schema_version: 1;
  study_name: string;
  study_hash: string;
  /** Absolute path of the study YAML it came from. */
  source_path: string;
  created_at: string;
  execution: ExecutionConfig;
  /** The seed actually used for `shuffled` (recorded even when derived). */
  cycle_seed: number;
  configs: PlannedConfig[];
  skipped: SkippedConfig[];
  order: PlannedRun[];
  warnings: string[];
  estimate: Estimate;
  /** issue 16: the study's `slo:` conditions as written (e.g. ttft_p95_ms<=200); absent = none. */
  slo?: string[];
}
