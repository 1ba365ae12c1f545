// Pre-flight: can this process change the GPU settings a study asks for? Checked before anything
// runs, by a dry set (the power limit set to the value it already has: no change). Setting limits
// and locking clocks needs root, and NVML's power-limit and clock setters check the same thing, so
// one dry set of the power limit answers for both; a GPU that cannot set a power limit at all is
// asked nothing more (the first clock lock then tells, and fails that run with the reason).
import type { GpuDeviceRef } from '../native/index.ts';
import { describeGpu, type GpuSettingKey } from '../study/gpu-settings.ts';
import { GpuSettingsError, settingsErrorFrom, type GpuControl } from './control.ts';
import { resolveRunGpus } from './apply.ts';

/** What an unprivileged user is told to do. */
export const PRIVILEGE_NEEDED =
  'changing a GPU power limit or locking its clocks needs root: run llem as root (e.g. `sudo -E llem run …`), ' +
  'have an administrator apply the setting (nvidia-smi -pl / -lgc / -lmc) and leave the key at default, ' +
  'or set every gpu.* key to default';

export interface PrivilegeCheck {
  /** The GPUs checked. */
  devices: GpuDeviceRef[];
  /** What could not be checked, and why (not a refusal). */
  notes: string[];
}

/** What a dry set of one GPU's power limit says about changing its settings. */
export type DrySet =
  | { status: 'allowed'; powerLimitMw: number }
  /** The GPU reports no power limit: nothing to dry-set (clocks may still be lockable). */
  | { status: 'no_limit'; why: string }
  | { status: 'refused'; error: GpuSettingsError };

/** Sets `ref`'s power limit to the value it already has (no change) and says whether that was allowed. */
export function drySetPowerLimit(control: GpuControl, ref: GpuDeviceRef): DrySet {
  const info = control.read(ref.index);
  if (info.powerLimitMw === null) return { status: 'no_limit', why: info.errors.powerLimitMw?.message ?? 'not reported' };
  try {
    control.setPowerLimitMw(ref.index, info.powerLimitMw);
    return { status: 'allowed', powerLimitMw: info.powerLimitMw };
  } catch (err) {
    const e = settingsErrorFrom(err, `a dry set of the power limit (${info.powerLimitMw / 1000} W, its current value)`, describeGpu(ref));
    return { status: 'refused', error: e.kind === 'no_permission' ? new GpuSettingsError('no_permission', `${e.message}: ${PRIVILEGE_NEEDED}`, e.nvmlCode) : e };
  }
}

/**
 * Throws GpuSettingsError (kind no_permission, with PRIVILEGE_NEEDED; unsupported; no_device)
 * when the study cannot change `used` settings on the GPUs CUDA_VISIBLE_DEVICES selects. With
 * nothing used (every setting default) it touches no GPU and needs no privilege.
 */
export function checkGpuSettingsPrivilege(control: GpuControl, opts: { cudaVisibleDevices: string | null; used: readonly GpuSettingKey[] }): PrivilegeCheck {
  if (opts.used.length === 0) return { devices: [], notes: [] };
  const devices = resolveRunGpus(control, opts.cudaVisibleDevices);
  const notes: string[] = [];
  for (const ref of devices) {
    const gpu = describeGpu(ref);
    const dry = drySetPowerLimit(control, ref);
    if (dry.status === 'no_limit') {
      if (opts.used.includes('power_limit_w')) throw new GpuSettingsError('unsupported', `${gpu} has no power limit to set (${dry.why})`);
      notes.push(`${gpu}: privilege not checked (no power limit to dry-set: ${dry.why})`);
    } else if (dry.status === 'refused') {
      if (dry.error.kind === 'unsupported' && !opts.used.includes('power_limit_w')) notes.push(`${gpu}: privilege not checked (${dry.error.message})`);
      else throw dry.error;
    }
  }
  return { devices, notes };
}
