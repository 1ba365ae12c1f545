// `llem run` pre-flight for `gpu:` settings, before any study dir exists: a study that changes a
// GPU setting needs NVML and the privilege to set it (checked by a dry set of the current value),
// else it is refused (exit 2) with what is needed and the GPU untouched. A study whose every
// setting is default needs neither.
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
  // Issue 15 phase 1: applying, verifying and restoring are built (src/gpu-settings) but the run
  // path does not call them yet; measuring under a setting that was never applied would record a
  // number for an experiment that did not happen. Phase 2 removes this refusal.
  throw new InputError(
    `${plan.source_path}: the study sets ${keys}; this llem plans and checks GPU settings but its runner does not apply them yet, so it refuses to measure under them: set them to default (or remove them) to run`,
  );
}
