// ─── LEAD: WIRE TO NVML HERE ────────────────────────────────────────────────────────────────────
// Free GPU memory for the pre-flight memory check. src/study is pure and must not load the native
// addon itself, so this returns null until the lead connects it (e.g. by passing
// `gpuFreeMemoryBytes` to planStudy from the CLI, read through src/measure / src/native).
export interface GpuFreeMemory {
  /** Free bytes on the GPU(s) the study will use; null = unknown. */
  bytes: number | null;
  /** Why it is unknown (shown as the memory-fit reason). */
  reason: string;
}

export function gpuFreeMemoryBytes(): GpuFreeMemory {
  return { bytes: null, reason: 'GPU free memory not read (NVML not wired into planning yet)' };
}
