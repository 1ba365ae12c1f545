// Public face of the runner for the CLI, the TUI and `llem watch`. The launchers (which load the
// Slurm commands) are imported from src/runner/launchers/index.ts by the commands that need them.
export { StudyRunner } from './study-runner.ts';
export type { StudyRunnerOptions } from './study-runner.ts';
export type { ResumeOptions } from './resume-rules.ts';
export { RunnerInputError } from './errors.ts';
export { defaultWorkerCommand, workerCommandFor, workerEntryFromEnv } from './attempt.ts';
export type { WorkerCommand } from './attempt.ts';
export { trueCycleBoundaryBetween } from './gaps.ts';
export { createStudyDir } from './study-dir.ts';
export { ManifestStore } from './manifest.ts';
export { StudyLockedError } from './lock.ts';
export { repairManifest } from './repair.ts';
export { statusJson } from './status-json.ts';
export type { StatusJson } from './status-json.ts';
export type * from './events.ts';
