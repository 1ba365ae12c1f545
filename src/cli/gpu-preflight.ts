// `llem run` / `llem resume` pre-flight for `gpu:` settings, before anything runs (for `run`, before
// a study dir exists): a study that changes a GPU setting needs NVML and the privilege to set it
// (checked by a dry set of the current value), else it is refused (exit 2) with what is needed and
// the GPU untouched. A study whose every setting is default needs neither. The Slurm launcher
// skips it (the submitting node may have no GPU): each task checks its own GPUs.
import { checkGpuSettingsPrivilege, GpuSettingsError, openGpuControl } from '../gpu-settings/index.ts';
import { gpuSettingsUsed } from '../study/gpu-settings.ts';
import type { PlanFile } from '../study/types.ts';
import { InputError } from './errors.ts';

export function gpuSettingsPreflight(plan: PlanFile, cudaVisibleDevices: string | null = process.env.CUDA_VISIBLE_DEVICES ?? null): void {
  const used = gpuSettingsUsed(plan.configs.map((c) => c.config));
  if (used.length === 0) return;
  const keys = used.map((k) => `gpu.${k}`).join(', ');
  const opened = openGpuControl();
  if (opened.status === 'unavailable') {
    throw new InputError(`${plan.source_path}: the study sets ${keys}, which needs NVML to apply and restore: ${opened.reason.split(/;? tried:|\n/)[0]}`);
  }
  try {
    checkGpuSettingsPrivilege(opened.control, { cudaVisibleDevices, used });
  } catch (err) {
    if (err instanceof GpuSettingsError) throw new InputError(`${plan.source_path}: the study sets ${keys}, and ${err.message}`);
    throw err;
  } finally {
    opened.control.close();
  }
}
