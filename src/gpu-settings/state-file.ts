// <study>/gpu-state.json: the GPU settings each node had before llem changed them, and what llem
// has changed and not yet restored. Written (atomically, under a lock: several Slurm tasks of one
// study may write it at once) BEFORE the first change, so that a runner killed at any instant
// leaves what is needed to restore: `llem resume` and `llem restore-gpu` read it.
//
// Keyed by node (Slurm node name, else hostname), then by GPU UUID: indices can change across reboots, UUIDs do not.
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { writeFileAtomicSync } from '../atomic-file.ts';
import { GpuSettingsError } from './control.ts';

export const GPU_STATE_FILE = 'gpu-state.json';
const LOCK_PATH = '.gpu-state.lock';
const LOCK_WAIT_MS = 30_000;
const LOCK_STALE_MS = 10_000;

const mw = z.number().int().min(0);
const mhzRange = z.tuple([z.number().int().min(1), z.number().int().min(1)]);

/** What llem has set on a GPU and not restored yet; empty: the GPU is as it was. */
export const appliedSettingsSchema = z
  .object({ power_limit_mw: mw.optional(), sm_clock_mhz: mhzRange.optional(), memory_clock_mhz: mhzRange.optional() })
  .strict();
export type AppliedSettings = z.infer<typeof appliedSettingsSchema>;

export const gpuStateDeviceSchema = z
  .object({
    uuid: z.string().min(1),
    /** NVML index when recorded (restore finds the GPU by UUID). */
    index: z.number().int().min(0),
    name: z.string(),
    /**
     * Read just before llem's first change since the GPU was last restored. Clocks are the clocks
     * then: NVML has no getter for a locked range, so a restore of clocks is a reset (unlocked).
     */
    original: z
      .object({
        power_limit_mw: mw.nullable(),
        power_limit_default_mw: mw.nullable(),
        sm_clock_mhz: z.number().int().nullable(),
        memory_clock_mhz: z.number().int().nullable(),
        recorded_at: z.string(),
      })
      .strict(),
    applied: appliedSettingsSchema,
    changed_at: z.string().nullable(),
    restored_at: z.string().nullable(),
    /** Why the last restore of what `applied` lists failed (absent or null: none failed). */
    restore_error: z.string().nullable().optional(),
  })
  .strict();
export type GpuStateDevice = z.infer<typeof gpuStateDeviceSchema>;

export const gpuStateNodeSchema = z
  .object({
    /** The process that last wrote this node's record. */
    pid: z.number().int(),
    updated_at: z.string(),
    devices: z.record(z.string(), gpuStateDeviceSchema),
  })
  .strict();
export type GpuStateNode = z.infer<typeof gpuStateNodeSchema>;

export const gpuStateFileSchema = z
  .object({ schema_version: z.literal(1), nodes: z.record(z.string(), gpuStateNodeSchema) })
  .strict();
export type GpuStateFile = z.infer<typeof gpuStateFileSchema>;

export function gpuStatePath(studyDir: string): string {
  return path.join(studyDir, GPU_STATE_FILE);
}

/**
 * The key of this machine's record: the Slurm node name inside a Slurm job (what a task records
 * under), else the hostname. `llem restore-gpu --node` reaches a record kept under another name.
 */
export function thisHost(env: NodeJS.ProcessEnv = process.env): string {
  return env.SLURMD_NODENAME || os.hostname();
}

/** Whether a device record holds a change llem has not restored. */
export function isChanged(d: GpuStateDevice): boolean {
  return Object.keys(d.applied).length > 0;
}

/** The state file, or null when there is none; a file that does not parse names file and field. */
export function readGpuState(studyDir: string): GpuStateFile | null {
  const file = gpuStatePath(studyDir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new GpuSettingsError('state_file', `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new GpuSettingsError('state_file', `${file}: not valid JSON (${(err as Error).message})`);
  }
  const parsed = gpuStateFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new GpuSettingsError('state_file', `${file}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  return parsed.data;
}

type ProperLockfile = typeof import('proper-lockfile');
let lockfileModule: ProperLockfile | null = null;
// Loaded on first use, as src/runner/lock.ts does: proper-lockfile installs signal listeners when
// loaded, which must not happen in commands that never write this file (plan, run's planning).
function lockfile(): ProperLockfile {
  lockfileModule ??= createRequire(import.meta.url)('proper-lockfile') as ProperLockfile;
  return lockfileModule;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/**
 * Read-modify-write of this node's record under the study's GPU-state lock; synchronous, so it
 * can run on any exit path. `change` gets the node's record (undefined: none) and returns the
 * new one (undefined: leave the file as it is). Returns what was written (or the record as read).
 */
export function updateGpuState(
  studyDir: string,
  host: string,
  change: (node: GpuStateNode | undefined) => GpuStateNode | undefined,
): GpuStateNode | undefined {
  const target = gpuStatePath(studyDir);
  const lf = lockfile();
  const deadline = Date.now() + LOCK_WAIT_MS;
  let release: () => void;
  for (;;) {
    try {
      // The lock is held for milliseconds (no await inside): a compromise cannot happen in that time.
      release = lf.lockSync(target, { lockfilePath: path.join(studyDir, LOCK_PATH), realpath: false, stale: LOCK_STALE_MS, onCompromised: () => undefined });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() > deadline) {
        throw new GpuSettingsError('state_file', `${target}: cannot take ${LOCK_PATH} (${(err as Error).message})`);
      }
      sleepSync(20);
    }
  }
  try {
    const state = readGpuState(studyDir) ?? { schema_version: 1 as const, nodes: {} };
    const before = state.nodes[host];
    const after = change(before);
    if (after === undefined) return before;
    state.nodes[host] = { ...after, pid: process.pid, updated_at: new Date().toISOString() };
    writeFileAtomicSync(target, JSON.stringify(state, null, 2) + '\n');
    return state.nodes[host];
  } finally {
    release();
  }
}
