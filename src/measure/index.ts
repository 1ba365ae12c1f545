// Energy meters: GPU (NVML through src/native) and CPU package/DRAM (RAPL), reported separately.
export type { EnergyMeter, EnergyWindow, GpuEnvironment, GpuSnapshot, LivePowerSample, OpenMeterOptions } from './types.ts';
export { openGpuMeter, unavailableMeter, unavailableWindow } from './gpu-meter.ts';
export { computeWindow, counterDeltaMj, trapezoidMj, THROTTLE_BITS } from './window.ts';
export { readGpuTemperatures, gpuFreeMemoryBytes, gpuFreeMemory } from '../native/index.ts';
export { openRaplMeter, discoverRaplZones, raplDeltaUj } from './rapl.ts';
export type { RaplMeter, RaplWindow, RaplZone, OpenRaplOptions } from './rapl.ts';
