// The small interface through which src/gpu-settings touches a GPU: resolve the GPUs of a run by
// UUID, read their settable state, set and reset. `openGpuControl` implements it over NVML (the
// addon, or the fake library in tests, through the same dlopen path).
import {
  isAddonError,
  openNvml,
  openNvmlAsync,
  resolveVisibleDevices,
  type AddonGpuSettings,
  type Availability,
  type GpuDeviceRef,
  type NvmlSession,
} from '../native/index.ts';

export interface GpuControl {
  /** The physical GPUs a process with this CUDA_VISIBLE_DEVICES uses (null: all), by UUID. */
  resolve(cudaVisibleDevices: string | null): Availability<{ devices: GpuDeviceRef[]; notes: string[] }>;
  /** The GPU with this UUID on this host, or null (indices can change across reboots; UUIDs do not). */
  find(uuid: string): GpuDeviceRef | null;
  read(index: number): AddonGpuSettings;
  /** Clock-event (throttle) reason bits now, or null: tells an idle GPU from an unlocked one. */
  clockEventReasons(index: number): number | null;
  setPowerLimitMw(index: number, mw: number): void;
  setGpuLockedClocks(index: number, minMhz: number, maxMhz: number): void;
  resetGpuLockedClocks(index: number): void;
  setMemoryLockedClocks(index: number, minMhz: number, maxMhz: number): void;
  resetMemoryLockedClocks(index: number): void;
  close(): void;
}

export class NvmlGpuControl implements GpuControl {
  constructor(private readonly session: NvmlSession) {}

  resolve(cudaVisibleDevices: string | null) {
    return resolveVisibleDevices(this.session, cudaVisibleDevices);
  }

  find(uuid: string): GpuDeviceRef | null {
    return this.session.devices().find((d) => d.uuid === uuid) ?? null;
  }

  read(index: number): AddonGpuSettings {
    return this.session.gpuSettings(index);
  }

  clockEventReasons(index: number): number | null {
    return this.session.readSync([index])[0]?.throttle_reasons ?? null;
  }

  setPowerLimitMw(index: number, mw: number): void {
    this.session.setPowerLimitMw(index, mw);
  }

  setGpuLockedClocks(index: number, minMhz: number, maxMhz: number): void {
    this.session.setGpuLockedClocks(index, minMhz, maxMhz);
  }

  resetGpuLockedClocks(index: number): void {
    this.session.resetGpuLockedClocks(index);
  }

  setMemoryLockedClocks(index: number, minMhz: number, maxMhz: number): void {
    this.session.setMemoryLockedClocks(index, minMhz, maxMhz);
  }

  resetMemoryLockedClocks(index: number): void {
    this.session.resetMemoryLockedClocks(index);
  }

  close(): void {
    this.session.close();
  }
}

/** NVML opened for GPU settings; unavailable (with the reason) without the addon, library or a GPU. */
export function openGpuControl(): Availability<{ control: GpuControl }> {
  const opened = openNvml();
  if (opened.status === 'unavailable') return opened;
  return { status: 'available', control: new NvmlGpuControl(opened.session) };
}

/** The same with nvmlInit off the JS thread (it can take seconds without persistence mode). */
export async function openGpuControlAsync(): Promise<Availability<{ control: GpuControl }>> {
  const opened = await openNvmlAsync();
  if (opened.status === 'unavailable') return opened;
  return { status: 'available', control: new NvmlGpuControl(opened.session) };
}

/** How a GPU-settings step failed: the CLI and the run record tell these apart. */
export type GpuSettingsErrorKind =
  | 'no_permission'
  | 'unsupported'
  | 'out_of_range'
  | 'mismatch'
  | 'no_device'
  | 'mig'
  | 'state_file'
  | 'driver_error';

export class GpuSettingsError extends Error {
  constructor(
    readonly kind: GpuSettingsErrorKind,
    message: string,
    /** The NVML code when NVML refused (NVML_ERROR_NO_PERMISSION …). */
    readonly nvmlCode: string | null = null,
  ) {
    super(message);
    this.name = 'GpuSettingsError';
  }
}

/** An NVML failure of `what` on `gpu` as a GpuSettingsError whose kind follows the NVML code. */
export function settingsErrorFrom(err: unknown, what: string, gpu: string): GpuSettingsError {
  if (err instanceof GpuSettingsError) return err;
  if (!isAddonError(err)) return new GpuSettingsError('driver_error', `${what} on ${gpu}: ${String((err as Error)?.message ?? err)}`);
  const kind: GpuSettingsErrorKind =
    err.code === 'NVML_ERROR_NO_PERMISSION'
      ? 'no_permission'
      : err.code === 'NVML_ERROR_NOT_SUPPORTED' || err.code === 'NVML_ERROR_FUNCTION_NOT_FOUND'
        ? 'unsupported'
        : err.code === 'NVML_ERROR_INVALID_ARGUMENT'
          ? 'out_of_range'
          : 'driver_error';
  return new GpuSettingsError(kind, `${what} on ${gpu}: ${err.message}`, err.code);
}
