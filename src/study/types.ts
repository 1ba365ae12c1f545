// Contract between the grammar (src/study), the runner, the worker and the UI.
// These are the *effective* shapes after YAML loading, defaults and validation.

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
  params: Record<string, unknown>;
}

export type CycleOrder = 'sequential' | 'interleaved' | 'shuffled';

export interface ExecutionConfig {
  n_cycles: number;
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
  }>;
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
}
