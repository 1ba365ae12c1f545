// What each GPU accepts (power limit range, lockable clocks), from NVML's answers, in the shape the
// planner and the pre-run check take (src/study/gpu-settings.ts GpuDeviceLimits).
import type { AddonGpuSettings, GpuDeviceRef } from '../native/index.ts';
import { clockStepMhz, type GpuDeviceLimits, type GpuLimitsInput } from '../study/gpu-settings.ts';
import { openGpuControlAsync, type GpuControl } from './control.ts';

function why(info: AddonGpuSettings, field: keyof AddonGpuSettings['errors']): string {
  const e = info.errors[field];
  return e ? e.message : `NVML did not report ${field}`;
}

export function limitsOf(ref: GpuDeviceRef, info: AddonGpuSettings): GpuDeviceLimits {
  const power: GpuDeviceLimits['power_limit_w'] =
    info.powerLimitMinMw !== null && info.powerLimitMaxMw !== null
      ? { min: info.powerLimitMinMw / 1000, max: info.powerLimitMaxMw / 1000 }
      : { unsupported: why(info, 'powerLimitMinMw') };
  let sm: GpuDeviceLimits['sm_clock_mhz'] = { unsupported: why(info, 'supportedClocks') };
  let mem: GpuDeviceLimits['memory_clock_mhz'] = { unsupported: why(info, 'supportedClocks') };
  const tables = info.supportedClocks;
  if (tables && tables.length > 0) {
    const smAll = tables.flatMap((t) => t.smMhz);
    const memAll = tables.map((t) => t.memMhz);
    if (smAll.length) sm = { min: Math.min(...smAll), max: Math.max(...smAll), step: clockStepMhz(smAll) };
    else sm = { unsupported: 'NVML lists no graphics clocks' };
    mem = { min: Math.min(...memAll), max: Math.max(...memAll), values: [...new Set(memAll)].sort((a, b) => b - a) };
  }
  return { index: ref.index, uuid: ref.uuid, name: ref.name, power_limit_w: power, sm_clock_mhz: sm, memory_clock_mhz: mem };
}

/** Limits of the GPUs a process with this CUDA_VISIBLE_DEVICES sees, through an open control. */
export function readLimits(control: GpuControl, cudaVisibleDevices: string | null): GpuLimitsInput {
  const resolved = control.resolve(cudaVisibleDevices);
  if (resolved.status === 'unavailable') return { status: 'unknown', reason: resolved.reason };
  try {
    return { status: 'known', devices: resolved.devices.map((d) => limitsOf(d, control.read(d.index))) };
  } catch (err) {
    return { status: 'unknown', reason: `NVML: ${(err as Error).message}` };
  }
}

/**
 * For the planner: the limits of the visible GPUs (default: this process's CUDA_VISIBLE_DEVICES),
 * or why they are unknown, in one line (`llem doctor` tells the whole story).
 */
export async function readGpuLimits(cudaVisibleDevices: string | null = process.env.CUDA_VISIBLE_DEVICES ?? null): Promise<GpuLimitsInput> {
  const opened = await openGpuControlAsync();
  if (opened.status === 'unavailable') return { status: 'unknown', reason: opened.reason.split(/;? tried:|\n/)[0]!.trim() };
  try {
    return readLimits(opened.control, cudaVisibleDevices);
  } finally {
    opened.control.close();
  }
}
