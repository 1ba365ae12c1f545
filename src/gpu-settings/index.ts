// GPU settings (power limit, locked SM/memory clocks) as sweep dimensions: read the limits for
// the planner, check the privilege before a study, apply → verify before each run, restore from
// <study>/gpu-state.json at the end, on every stop, before a resume, or alone (`llem restore-gpu`).
// docs/ARCHITECTURE.md (GPU settings) describes the design; src/runner/gpu-settings.ts is the run path's side.
export { openGpuControl, openGpuControlAsync, NvmlGpuControl, GpuSettingsError } from './control.ts';
export type { GpuControl, GpuSettingsErrorKind } from './control.ts';
export { applyGpuSettings, restoreGpuSettings, changedGpuSettings, resolveRunGpus, unrestoredGpuSettings, unrestoredLines, describeApplied, restoreReportLines } from './apply.ts';
export type { GpuSettingsContext, RestoreReport, RestoreStatus, DeviceRestore } from './apply.ts';
export { checkGpuSettingsPrivilege, drySetPowerLimit, PRIVILEGE_NEEDED } from './privilege.ts';
export type { PrivilegeCheck, DrySet } from './privilege.ts';
export { limitsOf, readLimits, readGpuLimits } from './limits.ts';
export {
  gpuSettingsRecordSchema,
  gpuDeviceSettingsSchema,
  snapshotGpuSettings,
  settingDrift,
  runGpuSettingsRecord,
  gpuSettingsLine,
  POWER_TOLERANCE_W,
  CLOCK_EVENT_GPU_IDLE,
} from './record.ts';
export type { GpuSettingsRecord, GpuDeviceSettings, GpuSettingsSnapshot } from './record.ts';
export { GPU_STATE_FILE, gpuStatePath, readGpuState, gpuStateFileSchema, isChanged, thisHost } from './state-file.ts';
export type { GpuStateFile, GpuStateNode, GpuStateDevice, AppliedSettings } from './state-file.ts';
