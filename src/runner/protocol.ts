// Parent ↔ child contract. Messages are small and versioned; anything large travels as a file in
// the run directory and the message carries its path. Both sides zod-check what they receive.
import { z } from 'zod';
import type { ExperimentConfig } from '../study/types.ts';
import type { GpuDeviceSettings } from '../gpu-settings/record.ts';
import { treeCleanupSchema } from './process-tree.ts';

export const PROTOCOL_VERSION = 1 as const;

export const PHASES = ['preflight', 'baseline', 'load', 'warmup', 'measure', 'teardown'] as const;
export type Phase = (typeof PHASES)[number];

export const ERROR_TYPES = [
  'TimeoutError',
  'StallTimeout',
  'ProcessCrash',
  'OutOfMemory',
  'BackendError',
  'InvalidResult',
  'PreflightError',
  'UserSkipped',
  'UserInterrupted',
] as const;
export type ErrorType = (typeof ERROR_TYPES)[number];

/**
 * Written by the parent to `<run_dir>/run.json` before spawning; the child gets its path as
 * `--run-spec <path>` and reads it. Everything the child needs to perform one run.
 */
export interface RunSpec {
  v: 1;
  study_dir: string;
  run_dir: string;
  /** `<NNNN>-<hash>-c<cycle>[-a<attempt>]`, also the run dir's basename. */
  run_id: string;
  index: number;
  config_hash: string;
  cycle: number;
  attempt: number;
  config: ExperimentConfig;
  /** Where the child writes result.json and power.csv. */
  result_path: string;
  power_csv_path: string;
  heartbeat_ms: number;
  /** CUDA_VISIBLE_DEVICES the child must measure (copied from the parent env or the launcher). */
  cuda_visible_devices: string | null;
  /**
   * The GPU settings the parent applied and verified for this run (src/runner/gpu-settings.ts),
   * one per GPU; null or absent when it changed nothing (the study sets no gpu.*).
   */
  gpu_settings?: GpuDeviceSettings[] | null;
}

const samplePoint = z.object({
  t_ms: z.number(), // ms since the measure window started (or since phase start)
  power_w: z.number().nullable(),
  temp_c: z.number().nullable(),
});

export const childMessageSchema = z.discriminatedUnion('type', [
  z.object({ v: z.literal(1), type: z.literal('hello'), pid: z.number().int(), run_id: z.string() }),
  z.object({ v: z.literal(1), type: z.literal('heartbeat'), t_ms: z.number() }),
  z.object({ v: z.literal(1), type: z.literal('phase'), phase: z.enum(PHASES), t_ms: z.number() }),
  z.object({
    v: z.literal(1),
    type: z.literal('progress'),
    phase: z.enum(PHASES),
    done: z.number(),
    total: z.number().nullable(),
    warmup_cv: z.number().nullable().optional(),
  }),
  z.object({
    v: z.literal(1),
    type: z.literal('power'),
    samples: z.array(samplePoint).max(1000),
    energy_so_far_j: z.number().nullable(),
  }),
  z.object({
    v: z.literal(1),
    type: z.literal('log'),
    level: z.enum(['debug', 'info', 'warn', 'error']),
    message: z.string().max(4096),
  }),
  z.object({ v: z.literal(1), type: z.literal('result'), path: z.string() }),
  /** Sent before a normal exit when the worker had to end processes of its own (process-tree.ts). */
  z.object({ v: z.literal(1), type: z.literal('tree_cleanup'), cleanup: treeCleanupSchema }),
  z.object({
    v: z.literal(1),
    type: z.literal('error'),
    error_type: z.enum(ERROR_TYPES),
    message: z.string().max(16384),
    phase: z.enum(PHASES).nullable(),
    stack: z.string().max(8192).optional(),
  }),
]);
export type ChildMessage = z.infer<typeof childMessageSchema>;

export const parentMessageSchema = z.discriminatedUnion('type', [
  /** The parent has recorded the result; the child may exit now. */
  z.object({ v: z.literal(1), type: z.literal('result_ack') }),
  /** Stop cleanly as soon as possible (dispose the backend, exit non-zero). */
  z.object({ v: z.literal(1), type: z.literal('shutdown'), reason: z.string() }),
]);
export type ParentMessage = z.infer<typeof parentMessageSchema>;
