// Contract between the energy meters (src/measure, built on src/native) and the worker.
import type { z } from 'zod';
import type { EnergyWindowRecord, FlagCode, ForeignProcessCheck, gpuSnapshotSchema } from '../results/schema.ts';
import type { GpuSettingsSnapshot } from '../gpu-settings/record.ts';

/** One GPU as recorded in result.json's environment (results/schema.ts gpuSnapshotSchema). */
export type GpuSnapshot = z.infer<typeof gpuSnapshotSchema>;

/** The NVML part of a run's environment snapshot. */
export interface GpuEnvironment {
  driver_version: string | null;
  /** e.g. "12.4". */
  cuda_driver_version: string | null;
  gpus: GpuSnapshot[];
}

export interface LivePowerSample {
  /** ms since the meter started. */
  t_ms: number;
  /** Sum over the meter's devices; null when power is unsupported. */
  power_w: number | null;
  /** Max over the meter's devices. */
  temp_c: number | null;
}

/** What one measurement window produced. Never 0 for "unknown": null plus a reason. */
export interface EnergyWindow {
  window_s: number;
  /** Counter difference summed over devices (primary), or polled if the counter is unsupported. */
  energy_j: number | null;
  energy_method: 'counter' | 'polled' | null;
  /** Why energy is polled rather than the counter (null with the counter or no energy). */
  energy_method_reason: string | null;
  energy_polled_j: number | null;
  /** |counter − polled| / counter; null unless both exist. */
  energy_divergence: number | null;
  unavailable_reason: string | null;
  power_mean_w: number | null;
  power_peak_w: number | null;
  temperature_start_c: number | null;
  temperature_end_c: number | null;
  temperature_max_c: number | null;
  memory_peak_bytes: number | null;
  throttle_s: { thermal: number | null; power_cap: number | null; power_brake: number | null };
  /** throttle_s ÷ window_s (0…1). */
  throttle_fraction: { thermal: number | null; power_cap: number | null; power_brake: number | null };
  samples: number;
  counter_reset: boolean;
  /** Validity flags this window raises on its own (divergence, throttle, drift, few samples …). */
  flags: Array<{ code: FlagCode; message: string }>;
  per_device: Array<{ uuid: string; energy_j: number | null; energy_polled_j: number | null }>;
  /** Edge reads and sampler errors, so energy_j can be recomputed from the run files (GPU meter only). */
  edges: EnergyWindowRecord | null;
}

export interface EnergyMeter {
  /** Devices measured, by UUID; empty when NVML is unavailable. */
  readonly devices: string[];
  /** Why energy is unavailable (no library, no device …), or null when it is available. */
  readonly unavailableReason: string | null;
  /** Start a window: reads counters, starts the sampler thread at the configured interval. */
  start(): Promise<void>;
  /** Drain samples gathered since the last call, for the live UI (cheap). */
  drainLive(): LivePowerSample[];
  /** Energy so far in the current window (counter delta), for the live UI; null if unknown. */
  energySoFarJ(): number | null;
  /** End the window: read counters, stop sampling, write power.csv if a path was given. */
  stop(): Promise<EnergyWindow>;
  close(): void;
  /** Notes on the device selection (ignored CUDA_VISIBLE_DEVICES entries, index order, MIG). */
  readonly notes?: string[];
  /** UUIDs of GPUs selected through a MIG id: their energy and power are the whole GPU's. */
  readonly migWholeGpu?: string[];
  /** Compute processes on the measured GPUs other than this worker and its descendants, now. */
  foreignProcesses?(): Promise<ForeignProcessCheck>;
  /** Driver versions and a snapshot of each measured GPU (power limit, persistence, MIG, foreign processes). */
  environment?(): Promise<GpuEnvironment>;
  /** The settable state of each measured GPU now (power limit, enforced limit, clocks), synchronously: read at the window edges for drift. */
  gpuSettings?(): GpuSettingsSnapshot[];
}

export interface OpenMeterOptions {
  /** CUDA_VISIBLE_DEVICES value to map to NVML devices by UUID (null = all devices). */
  cudaVisibleDevices: string | null;
  intervalMs: number;
  /** Where the window's full timeline is written (t, per-device power/temp/clocks/mem/util/throttle). */
  powerCsvPath?: string;
}
