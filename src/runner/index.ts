// Public face of the runner for the CLI, the TUI and `llem watch`.
export { StudyRunner, loadSnapshot, defaultWorkerCommand, RunnerInputError, trueCycleBoundaryBetween, headlineOf } from './study-runner.ts';
export type { StudyRunnerOptions, ResumeOptions, WorkerCommand } from './study-runner.ts';
export { createStudyDir, readPlan, runIdFor, runDirFor } from './study-dir.ts';
export { readManifest, ManifestError, ManifestStore } from './manifest.ts';
export type { Manifest, RunRecord } from './manifest.ts';
export { StudyLockedError, readLockOwner } from './lock.ts';
export { repairManifest } from './repair.ts';
export { statusJson } from './status-json.ts';
export type { StatusJson } from './status-json.ts';
export type * from './events.ts';
