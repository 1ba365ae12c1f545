// Free GPU memory for the pre-flight memory check. src/study is pure and must not load the native
// addon itself: the CLI reads NVML (src/measure `gpuFreeMemory`) and passes the figure to
// planStudy. This fallback serves callers that pass nothing (tests, library use).
export interface GpuFreeMemory {
  /** Free bytes on the GPU(s) the study will use; null = unknown. */
  bytes: number | null;
  /** Why it is unknown (shown as the memory-fit reason). */
  reason: string;
}

export function gpuFreeMemoryBytes(): GpuFreeMemory {
  return { bytes: null, reason: 'GPU free memory not read (the caller passed no NVML reading)' };
}
