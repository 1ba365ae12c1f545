// Contract between the grammar (src/study), the runner, the worker and the UI: the *effective*
// shapes after YAML loading, defaults and validation. Each is defined once as a zod schema in
// ./plan-schema.ts (field docs there); these are their types.
import type { z } from 'zod';
import type {
  baselineConfigSchema,
  cycleOrderSchema,
  datasetSpecSchema,
  energyConfigSchema,
  estimateSchema,
  estimateSourceSchema,
  executionConfigSchema,
  expectedCountSchema,
  experimentConfigSchema,
  memoryFitSchema,
  planFileSchema,
  plannedConfigSchema,
  plannedRunSchema,
  skippedConfigSchema,
  warmupConfigSchema,
} from './plan-schema.ts';

/** Backends known to the registry. The grammar never hard-codes this list; it is here for docs. */
export type BackendName =
  | 'llamacpp'
  | 'vllm'
  | 'sglang'
  | 'trtllm'
  | 'llama-server'
  | 'openai'
  | 'command'
  | 'pytorch';

export type DatasetSpec = z.infer<typeof datasetSpecSchema>;
export type WarmupConfig = z.infer<typeof warmupConfigSchema>;
export type BaselineConfig = z.infer<typeof baselineConfigSchema>;
export type EnergyConfig = z.infer<typeof energyConfigSchema>;
/** One experiment: everything that determines *what is measured*; its config hash is over exactly this. */
export type ExperimentConfig = z.infer<typeof experimentConfigSchema>;
export type CycleOrder = z.infer<typeof cycleOrderSchema>;
export type ExecutionConfig = z.infer<typeof executionConfigSchema>;
/** A valid experiment in the plan. */
export type PlannedConfig = z.infer<typeof plannedConfigSchema>;
export type SkippedConfig = z.infer<typeof skippedConfigSchema>;
/** One run in execution order: (config_hash, cycle). `index` is the position in the order. */
export type PlannedRun = z.infer<typeof plannedRunSchema>;
export type MemoryFit = z.infer<typeof memoryFitSchema>;
/** Where an estimate's durations come from: the run history (src/history), the heuristic, or both. */
export type EstimateSource = z.infer<typeof estimateSourceSchema>;
/** Expected cycles or runs, with a range (equal for a fixed n_cycles). */
export type ExpectedCount = z.infer<typeof expectedCountSchema>;
export type Estimate = z.infer<typeof estimateSchema>;
/** Contents of plan.json in the study directory: what the runner executes. */
export type PlanFile = z.infer<typeof planFileSchema>;
