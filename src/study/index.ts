// Public face of src/study for the CLI, runner and UI.
export { planStudy, confirmationNeeded, FULL_EXPANSION_LIMIT, PLAN_FILE_MAX_RUNS } from './plan.ts';
export type { StudyPlan, PlanOptions, BackendBreakdown, PlanExpansion } from './plan.ts';
export { defaultRunTimeoutSeconds, estimatePlan, runDuration, memoryEstimate } from './estimate.ts';
export type { EstimateHistory } from './estimate.ts';
export { StudyInputError, formatIssue } from './errors.ts';
export type { StudyIssue } from './errors.ts';
export { gpuFreeMemoryBytes } from './gpu.ts';
export { GPU_SETTING_KEYS, gpuSettingReasons, gpuSettingsUsed, effectiveGpuSettings, describeGpu } from './gpu-settings.ts';
export type { GpuSettings, GpuSettingKey, GpuDeviceLimits, GpuLimitsInput } from './gpu-settings.ts';
export { configHash, studyHash, canonicalJson } from './hash.ts';
export { permuteIndex, runPosition } from './order.ts';
export * from './types.ts';
