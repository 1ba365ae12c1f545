// The local launcher: runs go to children of this process through a StudyRunner, one at a time
// or one per GPU (execution.parallel: per_gpu). The runner holds the study lock for the whole
// study; its owner file says who runs the study and whether that process is alive.
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LOCK_DIR } from '../../study-dir/files.ts';
import { readLockOwner } from '../../study-dir/read.ts';
import type { WorkerCommand } from '../attempt.ts';
import { RunnerInputError } from '../errors.ts';
import { pidAlive } from '../lock.ts';
import { activeJobIds } from '../slurm/launcher.ts';
import { isSlurmStudy } from '../slurm/state-file.ts';
import { StudyRunner } from '../study-runner.ts';
import { LOCK_STALE_MS } from '../timing.ts';
import type { RunnerInfo, StudyLauncher } from './types.ts';

export interface LocalLauncherOptions {
  workerCommand?: WorkerCommand;
}

/** The lock holder and whether it lives: its pid on this host, the lock's freshness on another (shared filesystem). */
export function localRunnerInfo(studyDir: string): RunnerInfo {
  const owner = readLockOwner(studyDir);
  let alive = false;
  if (owner) {
    if (owner.hostname === os.hostname()) alive = pidAlive(owner.pid);
    else {
      try {
        // proper-lockfile refreshes the lock's mtime while its holder lives
        alive = Date.now() - statSync(path.join(studyDir, LOCK_DIR)).mtimeMs < LOCK_STALE_MS;
      } catch {
        alive = false;
      }
    }
  }
  return { launcher: 'local', pid: owner?.pid ?? null, host: owner?.hostname ?? null, alive, since: owner?.started_at ?? null, slurm_jobs: [] };
}

export function localLauncher(options: LocalLauncherOptions = {}): StudyLauncher {
  return {
    name: 'local',
    executesHere: true,
    async start(studyDir) {
      return { kind: 'runner', runner: new StudyRunner(studyDir, { workerCommand: options.workerCommand }) };
    },
    async resume(studyDir, resume) {
      // a study sent to Slurm must not also run here while its tasks may still run
      if (isSlurmStudy(studyDir)) {
        const active = await activeJobIds(studyDir);
        if (active.length > 0) {
          throw new RunnerInputError(`${studyDir}: Slurm job(s) ${active.join(', ')} of this study are still queued or running; llem cancel ${studyDir} first, or resume with --launcher slurm once they end`);
        }
      }
      return { kind: 'runner', runner: new StudyRunner(studyDir, { workerCommand: options.workerCommand, resume }) };
    },
    async refresh() {
      return null;
    },
    async runner(studyDir) {
      return localRunnerInfo(studyDir);
    },
    watch(studyDir) {
      return { stop: () => {}, runnerGone: async () => !localRunnerInfo(studyDir).alive };
    },
  };
}
