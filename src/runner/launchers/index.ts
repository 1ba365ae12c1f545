// Picking the launcher: by name for `llem run` / `llem resume` (--launcher), by what the study
// dir records for `llem status` / `llem watch` (a study some Slurm submission still owns is
// Slurm's; every other is local).
import { existsSync } from 'node:fs';
import { slurmStatePath } from '../../study-dir/files.ts';
import { isSlurmStudy } from '../slurm/state-file.ts';
import { localLauncher, type LocalLauncherOptions } from './local.ts';
import { slurmLauncher, type SlurmLauncherOptions } from './slurm.ts';
import type { LauncherName, StudyLauncher } from './types.ts';

export type { Execution, LauncherName, RemoteExecution, RunnerInfo, StudyLauncher, StudyWatch } from './types.ts';
export type { SlurmLauncherOptions } from './slurm.ts';

export const LAUNCHER_NAMES: readonly LauncherName[] = ['local', 'slurm'];

export function launcherNamed(name: LauncherName, options: LocalLauncherOptions & SlurmLauncherOptions = {}): StudyLauncher {
  return name === 'slurm' ? slurmLauncher(options) : localLauncher(options);
}

/** The launcher that holds `studyDir` now (a damaged slurm.json counts as Slurm's: its refresh says what is wrong). */
export function launcherOf(studyDir: string, options: LocalLauncherOptions & SlurmLauncherOptions = {}): StudyLauncher {
  let slurm: boolean;
  try {
    slurm = isSlurmStudy(studyDir);
  } catch {
    slurm = existsSync(slurmStatePath(studyDir));
  }
  return launcherNamed(slurm ? 'slurm' : 'local', options);
}
