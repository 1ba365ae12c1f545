// What a run records about the GPU settings it ran under (the child puts it in the result's
// environment, phase 2 of issue 15): per GPU the requested values (null = default), what the
// driver reported in force after the change, the original power limit `default` stands for, and
// whether anything drifted during the measurement window (someone else touched the GPU).
import { z } from 'zod';
import type { GpuDeviceRef } from '../native/index.ts';
import { describeGpu, type GpuSettings } from '../study/gpu-settings.ts';
import type { GpuControl } from './control.ts';

const mhzRange = z.tuple([z.number().int().min(1), z.number().int().min(1)]);

/** Power in watts within which a limit counts as the one requested (the "within 1 W"). */
export const POWER_TOLERANCE_W = 1;

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
  clockStepMhz: { sm: number; mem: number } = { sm: 15, mem: 1 },
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
    const lock = (what: string, range: [number, number] | undefined, mhz: number | null, step: number) => {
      if (!range || mhz === null) return;
      if (mhz < range[0] - step || mhz > range[1] + step) reasons.push(`${gpu}: ${what} clock ${mhz} MHz at the end of the window is outside the lock [${range[0]}, ${range[1]}] MHz`);
    };
    lock('SM', requested?.sm_clock_mhz, a.smClockMhz, clockStepMhz.sm);
    lock('memory', requested?.memory_clock_mhz, a.memClockMhz, clockStepMhz.mem);
  }
  return reasons;
}
