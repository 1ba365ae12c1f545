// Energy meters: GPU (NVML through src/native) and CPU (RAPL). First version: the API the worker
// codes against; the GPU meter reports "unavailable" until the addon-backed meter lands.
import type { EnergyMeter, EnergyWindow, OpenMeterOptions } from './types.ts';

export type { EnergyMeter, EnergyWindow, LivePowerSample, OpenMeterOptions } from './types.ts';

export function unavailableWindow(reason: string, windowS: number): EnergyWindow {
  return {
    window_s: windowS,
    energy_j: null,
    energy_method: null,
    energy_polled_j: null,
    energy_divergence: null,
    unavailable_reason: reason,
    power_mean_w: null,
    power_peak_w: null,
    temperature_start_c: null,
    temperature_end_c: null,
    temperature_max_c: null,
    memory_peak_bytes: null,
    throttle_s: { thermal: null, power_cap: null, power_brake: null },
    samples: 0,
    counter_reset: false,
    flags: [{ code: 'energy_unavailable', message: reason }],
    per_device: [],
  };
}

/** A meter over the GPUs named by `cudaVisibleDevices`. Never rejects for expected absences. */
export async function openGpuMeter(_opts: OpenMeterOptions): Promise<EnergyMeter> {
  const reason = 'the NVML-backed meter is not built yet in this version';
  let startedAtMs: number | null = null;
  return {
    devices: [],
    unavailableReason: reason,
    async start() {
      startedAtMs = performance.now();
    },
    drainLive: () => [],
    energySoFarJ: () => null,
    async stop() {
      const windowS = startedAtMs === null ? 0 : (performance.now() - startedAtMs) / 1000;
      return unavailableWindow(reason, windowS);
    },
    close() {},
  };
}

export async function readGpuTemperatures(_cudaVisibleDevices: string | null): Promise<number[] | null> {
  return null;
}

export async function gpuFreeMemoryBytes(): Promise<number | null> {
  return null;
}
