// One line of the run history (src/history/store.ts): what a finished run teaches the estimate
// about its machine and its config. Versioned; zod-checked on every read (a bad line is skipped).
import { z } from 'zod';
import { SUMMARY_METRICS, type SummaryMetricKey } from '../results/summary-schema.ts';
import { machineSchema } from './machine.ts';

export const HISTORY_RECORD_VERSION = 1 as const;

const num = z.number().finite();
const nnum = num.nullable();
const METRIC_KEYS = SUMMARY_METRICS.map((m) => m.key) as [SummaryMetricKey, ...SummaryMetricKey[]];

/** The knobs that decide how long a run takes, beside its exact config hash (nearer matches). */
export const historyKeySchema = z.object({
  backend: z.string(),
  model: z.string(),
  precision: z.string(),
  batch_size: z.number().int(),
  max_new_tokens: z.number().int(),
  n: z.number().int(),
  dataset: z.string(),
  /** sha256/16 of the canonical backend section (threads, gpu_layers, max_num_seqs …). */
  params_hash: z.string(),
  baseline_seconds: num,
  warmup_max_prompts: z.number().int(),
});
export type HistoryKey = z.infer<typeof historyKeySchema>;

export const historyRecordSchema = z.object({
  v: z.literal(HISTORY_RECORD_VERSION),
  recorded_at: z.string(),
  machine: machineSchema,
  config_hash: z.string(),
  study_hash: z.string().nullable(),
  run_id: z.string(),
  key: historyKeySchema,
  /** Parent's view: spawn to exit (null when the caller did not know it). */
  run_wall_s: nnum,
  /** startup = everything outside baseline/load/warmup/measure (spawn, imports, preflight, teardown, exit). */
  phases_s: z.object({ startup: nnum, baseline: nnum, load: nnum, warmup: nnum, measure: nnum }),
  /** true when this run measured its baseline (false: reused, null: none taken). */
  baseline_measured: z.boolean().nullable(),
  warmup_prompts: z.number().int(),
  output_tokens: z.number().int(),
  requests: z.number().int(),
  output_tokens_per_s: nnum,
  /** The run's value of each summary metric (for the per-cycle spread of a target metric). */
  metrics: z.record(z.enum(METRIC_KEYS), nnum),
  /** Validity flag codes of the run (a reader may leave flagged runs out). */
  flags: z.array(z.string()),
});
export type HistoryRecord = z.infer<typeof historyRecordSchema>;
