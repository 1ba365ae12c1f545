// What the planner learns from this machine's GPUs (read here, through src/native, so that
// src/study stays pure): free memory for the fit check, and the limits `gpu:` settings are checked
// against. Both NVML opens overlap, so nvmlInit runs once.
import { gpuFreeMemory } from '../measure/index.ts';
import { readGpuLimits } from '../gpu-settings/limits.ts';
import type { PlanOptions } from '../study/plan.ts';

export async function planInputs(): Promise<Pick<PlanOptions, 'gpuFreeMemoryBytes' | 'gpuFreeMemoryReason' | 'gpuLimits'>> {
  const [free, gpuLimits] = await Promise.all([gpuFreeMemory(), readGpuLimits()]);
  return { gpuFreeMemoryBytes: free.bytes, gpuFreeMemoryReason: free.reason, gpuLimits };
}
