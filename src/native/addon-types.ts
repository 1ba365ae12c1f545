// The shape of addon/build/Release/llem_native.node (addon/src/addon.cc). Only src/native/index.ts
// loads the addon; everything else goes through its typed functions.

/** Metric columns, in the addon's order (kMetricNames). NaN in sampler columns, null in readings. */
export const METRIC_NAMES = [
  'energy_mj',
  'power_mw',
  'temp_c',
  'sm_clock_mhz',
  'mem_clock_mhz',
  'util_gpu_pct',
  'util_mem_pct',
  'mem_used_bytes',
  'throttle_reasons',
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** A thrown addon error: `code` is LIB_NOT_FOUND, SYMBOL_MISSING, NOT_OPEN, INVALID_ARGUMENT, NVML_ERROR_*, CUDA_ERROR_*, ERRNO_*, UNSUPPORTED. */
export interface AddonError extends Error {
  code: string;
  fn: string;
  pathsTried?: string[];
}

export interface AddonNvmlOpenInfo {
  libraryPath: string;
  driverVersion: string | null;
  /** e.g. 12040 for CUDA 12.4. */
  cudaDriverVersion: number | null;
  deviceCount: number;
  /** Entry point → the symbol it was bound to (nvmlInit → nvmlInit_v2). */
  bound: Record<string, string>;
  /** Optional entry points this library lacks. */
  missing: string[];
}

export type AddonReading = { index: number; t_ns: bigint; error: AddonError | null } & Record<MetricName, number | null>;

export interface AddonDeviceInfo {
  index: number;
  uuid: string | null;
  name: string | null;
  pciBusId: string | null;
  memoryTotalBytes: number | null;
  memoryUsedBytes: number | null;
  memoryFreeBytes: number | null;
  powerLimitMw: number | null;
  powerLimitDefaultMw: number | null;
  persistenceMode: boolean | null;
  migMode: boolean | null;
  processes: Array<{ pid: number; usedMemoryBytes: number | null }> | null;
  supported: Record<MetricName, boolean>;
  reading: AddonReading;
}

export type AddonSampleBatch = {
  count: number;
  /** CLOCK_MONOTONIC ns, the clock of process.hrtime.bigint(). */
  t_ns: BigInt64Array;
  /** Position in the sampler's device list. */
  device: Int32Array;
  errors: Array<AddonError & { device: number; t_ns: bigint }>;
  /** Samples lost because the ring buffer filled before a drain. */
  dropped: number;
} & Record<MetricName, Float64Array>;

export interface AddonSampler {
  start(): void;
  drain(): AddonSampleBatch;
  /** Resolves when the thread has exited (never blocks the JS thread on an NVML call). */
  stop(): Promise<void>;
  /** Stops and joins on the JS thread: for exit paths only. */
  stopSync(): void;
  readonly running: boolean;
  readonly ticks: number;
  /** Wall ns the thread spent reading and buffering (no sleep, no wake-up latency). */
  readonly workNs: number;
}

export interface AddonCudaInfo {
  libraryPath: string;
  driverVersion: number | null;
  devices: Array<{ ordinal: number; uuid: string | null; name: string | null; totalMemBytes: number | null }>;
  missing: string[];
}

/** Why one field of AddonGpuSettings is null (an NVML code, or NVML_ERROR_FUNCTION_NOT_FOUND for an absent entry point). */
export interface AddonErrorInfo {
  code: string;
  fn: string;
  message: string;
}

export type AddonGpuSettingsField =
  | 'powerLimitMw'
  | 'powerLimitDefaultMw'
  | 'enforcedPowerLimitMw'
  | 'powerLimitMinMw'
  | 'powerLimitMaxMw'
  | 'smClockMhz'
  | 'memClockMhz'
  | 'supportedClocks';

/** A GPU's settable state as NVML reports it (addon.cc NvmlGpuSettings); null fields say why in `errors`. */
export interface AddonGpuSettings {
  index: number;
  /** The power limit set (nvmlDeviceGetPowerManagementLimit). */
  powerLimitMw: number | null;
  powerLimitDefaultMw: number | null;
  /** What the driver enforces after every limiter (nvmlDeviceGetEnforcedPowerLimit). */
  enforcedPowerLimitMw: number | null;
  powerLimitMinMw: number | null;
  powerLimitMaxMw: number | null;
  /** Current clocks: NVML has no getter for a locked range, so this is what verification reads. */
  smClockMhz: number | null;
  memClockMhz: number | null;
  /** Clocks the driver accepts for locking: graphics clocks per memory clock, highest first. */
  supportedClocks: Array<{ memMhz: number; smMhz: number[] }> | null;
  errors: Partial<Record<AddonGpuSettingsField, AddonErrorInfo>>;
}

export interface NativeAddon {
  nvmlOpen(): AddonNvmlOpenInfo;
  /** Same, with nvmlInit on a pool thread (it can take seconds without persistence mode). */
  nvmlOpenAsync(): Promise<AddonNvmlOpenInfo>;
  nvmlClose(): void;
  nvmlRefCount(): number;
  nvmlDeviceInfo(index: number): AddonDeviceInfo;
  nvmlDeviceIdentity(index: number): { index: number; uuid: string | null; name: string | null };
  nvmlResolveUuid(uuid: string): { index: number; viaMig: boolean } | null;
  nvmlRead(indices: number[]): AddonReading[];
  nvmlReadAsync(indices: number[]): Promise<AddonReading[]>;
  /** GPU settings (synchronous; between runs only). Setters throw AddonError with the NVML code. */
  nvmlGpuSettings(index: number): AddonGpuSettings;
  nvmlSetPowerLimit(index: number, mw: number): void;
  nvmlSetGpuLockedClocks(index: number, minMhz: number, maxMhz: number): void;
  nvmlResetGpuLockedClocks(index: number): void;
  nvmlSetMemoryLockedClocks(index: number, minMhz: number, maxMhz: number): void;
  nvmlResetMemoryLockedClocks(index: number): void;
  cudaProbe(): AddonCudaInfo;
  monotonicNs(): bigint;
  /** prctl(PR_SET_CHILD_SUBREAPER, on = true): orphaned descendants are re-parented to this process. */
  setChildSubreaper(on?: boolean): void;
  isChildSubreaper(): boolean;
  /** Whether this process has any child at all (running or zombie); reaps nothing. */
  hasChildren(): boolean;
  /** waitpid(pid, WNOHANG), for processes re-parented to us only (never one libuv spawned). */
  reapChild(pid: number): 'reaped' | 'running' | 'not_child';
  Sampler: new (indices: number[], intervalMs: number, capacity?: number) => AddonSampler;
  napiVersion: number;
}
