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
    const info = control.read(ref.index);
    if (info.powerLimitMw === null) {
      const why = info.errors.powerLimitMw?.message ?? 'not reported';
      if (opts.used.includes('power_limit_w')) throw new GpuSettingsError('unsupported', `${gpu} has no power limit to set (${why})`);
      notes.push(`${gpu}: privilege not checked (no power limit to dry-set: ${why})`);
      continue;
    }
    try {
      control.setPowerLimitMw(ref.index, info.powerLimitMw);
    } catch (err) {
      const e = settingsErrorFrom(err, `a dry set of the power limit (${info.powerLimitMw / 1000} W, its current value)`, gpu);
      if (e.kind === 'no_permission') throw new GpuSettingsError('no_permission', `${e.message}: ${PRIVILEGE_NEEDED}`, e.nvmlCode);
      if (e.kind === 'unsupported' && !opts.used.includes('power_limit_w')) {
        notes.push(`${gpu}: privilege not checked (${e.message})`);
        continue;
      }
      throw e;
    }
  }
  return { devices, notes };
}
