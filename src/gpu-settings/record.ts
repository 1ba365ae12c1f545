// What a run records about the GPU settings it ran under (the child puts it in the result's
// environment.gpu_settings): per GPU the requested values (null = default), what the
// driver reported in force after the change, the original power limit `default` stands for, and
// whether anything drifted during the measurement window (someone else touched the GPU).
import { z } from 'zod';
import type { GpuDeviceRef } from '../native/index.ts';
import { describeGpu, type GpuSettings } from '../study/gpu-settings.ts';
// Type-only: results/schema.ts reads the record schema, and must not load NVML with it.
import type { GpuControl } from './control.ts';

const mhzRange = z.tuple([z.number().int().min(1), z.number().int().min(1)]);

/** nvmlClocksEventReasonGpuIdle: nothing runs, so clocks sit below a lock until work arrives. */
export const CLOCK_EVENT_GPU_IDLE = 0x1;

/** Power in watts within which a limit counts as the one requested (the issue's "within 1 W"). */
export const POWER_TOLERANCE_W = 1;

/** The SM clock step assumed when NVML lists no supported clocks (H100/H200 and A100 step by 15 MHz). */
export const DEFAULT_SM_CLOCK_STEP_MHZ = 15;

export const gpuDeviceSettingsSchema = z
  .object({
    uuid: z.string(),
    index: z.number().int(),
    name: z.string(),
    /** As the config asks; null = default (the value the GPU had before the study). */
    requested: z
      .object({ power_limit_w: z.number().nullable(), sm_clock_mhz: mhzRange.nullable(), memory_clock_mhz: mhzRange.nullable() })
      .strict(),
    /** In force after applying: the enforced power limit, the current clocks (null: not readable). */
    enforced: z
      .object({ power_limit_w: z.number().nullable(), sm_clock_mhz: z.number().nullable(), memory_clock_mhz: z.number().nullable() })
      .strict(),
    /** The power limit before the study: what `default` means for this GPU. */
    original_power_limit_w: z.number().nullable(),
    /**
     * With an SM clock lock: the spacing of this GPU's supported SM clocks (NVML), the slack the
     * lock is checked with at the window end; null = not known (DEFAULT_SM_CLOCK_STEP_MHZ used).
     * Absent without a lock and in results written before it.
     */
    sm_clock_step_mhz: z.number().nullable().optional(),
    /** How settings were checked when not simply equal (an idle GPU below its clock lock, …). */
    notes: z.array(z.string()),
  })
  .strict();
export type GpuDeviceSettings = z.infer<typeof gpuDeviceSettingsSchema>;

export const gpuSettingsRecordSchema = z
  .object({
    devices: z.array(gpuDeviceSettingsSchema),
    /** A setting changed during the measurement window: the number was not measured under one setting. */
    gpu_setting_drift: z.boolean(),
    drift_reasons: z.array(z.string()),
  })
  .strict();
export type GpuSettingsRecord = z.infer<typeof gpuSettingsRecordSchema>;

/** The settings of one GPU at one instant (the child reads one at the window start and one at its end). */
export interface GpuSettingsSnapshot {
  uuid: string;
  index: number;
  name: string;
  powerLimitMw: number | null;
  enforcedPowerLimitMw: number | null;
  smClockMhz: number | null;
  memClockMhz: number | null;
  clockEventReasons: number | null;
}

export function snapshotGpuSettings(control: GpuControl, devices: readonly GpuDeviceRef[]): GpuSettingsSnapshot[] {
  return devices.map((d) => {
    const s = control.read(d.index);
    return {
      uuid: d.uuid,
      index: d.index,
      name: d.name,
      powerLimitMw: s.powerLimitMw,
      enforcedPowerLimitMw: s.enforcedPowerLimitMw,
      smClockMhz: s.smClockMhz,
      memClockMhz: s.memClockMhz,
      clockEventReasons: control.clockEventReasons(d.index),
    };
  });
}

const changedW = (a: number | null, b: number | null) => a !== null && b !== null && Math.abs(a - b) > POWER_TOLERANCE_W * 1000;

/**
 * Why the settings were not the same over a window (empty: no drift). The power limit and the
 * enforced limit must not move; a clock lock the run asked for must still hold at the end (current
 * clocks move by themselves, so an unlocked clock is never drift).
 */
export function settingDrift(
  before: readonly GpuSettingsSnapshot[],
  after: readonly GpuSettingsSnapshot[],
  requested: GpuSettings | undefined,
  verified: readonly GpuDeviceSettings[] = [],
): string[] {
  const reasons: string[] = [];
  for (const b of before) {
    const a = after.find((x) => x.uuid === b.uuid);
    const gpu = describeGpu(b);
    if (!a) {
      reasons.push(`${gpu} could not be read at the end of the window`);
      continue;
    }
    if (changedW(b.powerLimitMw, a.powerLimitMw)) reasons.push(`${gpu}: power limit changed from ${b.powerLimitMw! / 1000} W to ${a.powerLimitMw! / 1000} W during the window`);
    if (changedW(b.enforcedPowerLimitMw, a.enforcedPowerLimitMw)) {
      reasons.push(`${gpu}: enforced power limit changed from ${b.enforcedPowerLimitMw! / 1000} W to ${a.enforcedPowerLimitMw! / 1000} W during the window`);
    }
    // The window has just ended: a GPU already idle sits below its lock until work arrives again.
    const idle = a.clockEventReasons !== null && (a.clockEventReasons & CLOCK_EVENT_GPU_IDLE) !== 0;
    const lock = (what: string, range: [number, number] | undefined, mhz: number | null, step: number, verifiedMhz: number | null = null) => {
      if (!range || mhz === null) return;
      // the clock the parent verified holds: a lock between two supported clocks runs at the one the driver picked
      if (verifiedMhz !== null && Math.abs(mhz - verifiedMhz) <= step) return;
      if ((mhz < range[0] - step && !idle) || mhz > range[1] + step) reasons.push(`${gpu}: ${what} clock ${mhz} MHz at the end of the window is outside the lock [${range[0]}, ${range[1]}] MHz`);
    };
    const v = verified.find((x) => x.uuid === b.uuid);
    lock('SM', requested?.sm_clock_mhz, a.smClockMhz, v?.sm_clock_step_mhz ?? DEFAULT_SM_CLOCK_STEP_MHZ);
    // memory: within 1 MHz of the lock, or of the listed clock the parent verified it ran at
    lock('memory', requested?.memory_clock_mhz, a.memClockMhz, 1, v?.enforced.memory_clock_mhz ?? null);
  }
  return reasons;
}

const watts = (mw: number | null): number | null => (mw === null ? null : mw / 1000);

/**
 * What a GPU runs under when llem changed nothing on it (the study sets no gpu.*): every request
 * `default`, the values in force as read now, and `default` standing for the power limit it has.
 */
function unappliedDeviceSettings(s: GpuSettingsSnapshot, requested: GpuSettings | undefined): GpuDeviceSettings {
  return {
    uuid: s.uuid,
    index: s.index,
    name: s.name,
    requested: { power_limit_w: requested?.power_limit_w ?? null, sm_clock_mhz: requested?.sm_clock_mhz ?? null, memory_clock_mhz: requested?.memory_clock_mhz ?? null },
    enforced: { power_limit_w: watts(s.enforcedPowerLimitMw ?? s.powerLimitMw), sm_clock_mhz: s.smClockMhz, memory_clock_mhz: s.memClockMhz },
    original_power_limit_w: watts(s.powerLimitMw),
    notes: requested && Object.keys(requested).length > 0 ? ['the parent did not apply these settings (no record of them in run.json): the enforced values were read by the worker'] : [],
  };
}

/**
 * The record of one run (result.json environment.gpu_settings): per GPU what the parent applied and
 * verified (`applied`, from run.json), else what was in force; and whether a setting moved between
 * the apply and the end of the window. `start`/`stop` are the worker's snapshots at the window
 * edges (null: not readable, `unreadable` says why). Null when there is nothing to record.
 */
export function runGpuSettingsRecord(input: {
  applied: readonly GpuDeviceSettings[] | null;
  start: readonly GpuSettingsSnapshot[] | null;
  stop: readonly GpuSettingsSnapshot[] | null;
  requested: GpuSettings | undefined;
  unreadable: string | null;
}): GpuSettingsRecord | null {
  const { applied, start, stop } = input;
  const devices = applied ? applied.map((d) => ({ ...d, notes: [...d.notes] })) : start ? start.map((s) => unappliedDeviceSettings(s, input.requested)) : null;
  if (!devices) return null;
  const reasons: string[] = [];
  if (start && stop) {
    // Someone may also have changed the GPU between the parent's apply and the window start.
    for (const d of applied ?? []) {
      const s = start.find((x) => x.uuid === d.uuid);
      const atStart = s ? watts(s.enforcedPowerLimitMw ?? s.powerLimitMw) : null;
      if (atStart !== null && d.enforced.power_limit_w !== null && Math.abs(atStart - d.enforced.power_limit_w) > POWER_TOLERANCE_W) {
        reasons.push(`${describeGpu(d)}: enforced power limit ${atStart} W at the window start, not the ${d.enforced.power_limit_w} W verified before the run`);
      }
    }
    reasons.push(...settingDrift(start, stop, input.requested, applied ?? []));
  } else {
    for (const d of devices) d.notes.push(`drift not checked: ${input.unreadable ?? 'the settings could not be read at the window edges'}`);
  }
  return { devices, gpu_setting_drift: reasons.length > 0, drift_reasons: reasons };
}

/** What a run asked of its GPUs as a short key ("" when every setting is default): stored baselines are per settings. */
export function gpuSettingsKey(devices: readonly GpuDeviceSettings[] | null): string {
  const parts = new Set<string>();
  for (const d of devices ?? []) {
    const r = d.requested;
    if (r.power_limit_w !== null) parts.add(`pl${r.power_limit_w}`);
    if (r.sm_clock_mhz) parts.add(`sm${r.sm_clock_mhz.join('-')}`);
    if (r.memory_clock_mhz) parts.add(`mem${r.memory_clock_mhz.join('-')}`);
  }
  return parts.size ? `-gpu-${[...parts].join('-')}` : '';
}

/** "GPU 0 cap 200 W (requested 200 W) · SM 1410 MHz (locked 1410–1410) · mem 2619 MHz": the live panel's line. */
export function gpuSettingsLine(devices: readonly GpuDeviceSettings[]): string {
  return devices
    .map((d) => {
      const r = d.requested;
      const e = d.enforced;
      const cap = `cap ${e.power_limit_w ?? '?'} W (${r.power_limit_w === null ? 'default' : `requested ${r.power_limit_w} W`})`;
      const clock = (what: string, mhz: number | null, lock: [number, number] | null) => `${what} ${mhz ?? '?'} MHz${lock ? ` (locked ${lock[0]}–${lock[1]})` : ''}`;
      return `GPU ${d.index} ${cap} · ${clock('SM', e.sm_clock_mhz, r.sm_clock_mhz)} · ${clock('mem', e.memory_clock_mhz, r.memory_clock_mhz)}`;
    })
    .join('  ');
}
