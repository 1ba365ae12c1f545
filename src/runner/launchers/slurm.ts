// The slurm launcher: the runs to do go to Slurm as one job array (src/runner/slurm/launcher.ts),
// whose tasks each perform one run through the run-attempt path (src/runner/slurm/task.ts). No
// process holds the study lock for the whole study; the resume rules are applied under a short
// one, and a poller records what Slurm did to tasks whose worker could not.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { manifestPath } from '../../study-dir/files.ts';
import { readManifest, readPlan, readSlurmState } from '../../study-dir/read.ts';
import { ManifestStore } from '../manifest.ts';
import { RunnerInputError } from '../errors.ts';
import { applyResumeRules, waitForOrphanedWorkers, type ResumeOptions } from '../resume-rules.ts';
import { advanceRound, releaseRetriedStops, TargetValues } from '../rounds.ts';
import { followSlurmStudy, pollIntervalMs, pollSlurmWhileWatching, refreshStudyFromSlurm } from '../slurm/follow.ts';
import { activeJobIds, pollQueue, reconcileStudy, submitStudy, type SlurmSubmitOptions, type SubmitResult } from '../slurm/launcher.ts';
import { verdictForSlurmState } from '../slurm/states.ts';
import { activeSubmissions, isSlurmStudy } from '../slurm/state-file.ts';
import { withStudyLock } from '../slurm/study-lock.ts';
import type { Execution, RemoteExecution, StudyLauncher } from './types.ts';

export interface SlurmLauncherOptions extends SlurmSubmitOptions {
  /** Where the launcher's own messages go (warnings, a top-up): the CLI's stderr. */
  say?: (text: string) => void;
}

function remote(studyDir: string, sub: SubmitResult): RemoteExecution {
  return {
    studyDir,
    summary:
      `submitted ${sub.indices.length} run(s) as Slurm job array ${sub.jobId} (--array=${sub.array}, --time=${sub.timeLimit}) → ${studyDir}\n` +
      `  cycle order is kept by array order only with --max-concurrent 1 on one node; with more, runs overlap\n`,
    detached: (json) => ({
      stdout: `${json ? JSON.stringify({ study_dir: studyDir, job_id: sub.jobId, runs: sub.indices }) : `${sub.jobId} ${studyDir}`}\n`,
      stderr: `follow with: llem watch ${studyDir}    cancel with: llem cancel ${studyDir}\n`,
    }),
    followPlain: ({ line, signal }) => followSlurmStudy(studyDir, { line, signal }),
    onInterrupt: `\ndetached; the Slurm tasks keep running. follow: llem watch ${studyDir}   cancel: llem cancel ${studyDir}\n`,
  };
}

/** The resume rules under a short hold of the study lock (no runner holds it for the whole study here). */
export async function applyResumeUnderLock(studyDir: string, resume: ResumeOptions, warn: (message: string) => void): Promise<void> {
  await withStudyLock(studyDir, () => {
    const store = ManifestStore.open(studyDir);
    try {
      const { plan, events } = applyResumeRules(store, readPlan(studyDir), studyDir, resume, warn);
      if (plan.execution.target) {
        // n_cycles: auto continues where it stopped: a round that ended unrecorded is decided now
        releaseRetriedStops(store);
        const step = advanceRound(store, plan, studyDir, new TargetValues(studyDir, plan.execution.target.metric));
        if (step) events.push(...step.events);
      }
      store.commit(events);
    } finally {
      store.close();
    }
  });
}

export function slurmLauncher(options: SlurmLauncherOptions = {}): StudyLauncher {
  const { say = () => {}, ...submitOptions } = options;
  return {
    name: 'slurm',
    executesHere: false,
    async start(studyDir) {
      try {
        return { kind: 'remote', remote: remote(studyDir, await submitStudy(studyDir, submitOptions)) };
      } catch (err) {
        // nothing was submitted, nothing ran: leave no study dir behind
        rmSync(studyDir, { recursive: true, force: true });
        throw err;
      }
    },
    async resume(studyDir, resume: ResumeOptions): Promise<Execution> {
      const dir = path.resolve(studyDir);
      if (isSlurmStudy(dir)) {
        await reconcileStudy(dir, { minIntervalMs: 0 });
        const active = await activeJobIds(dir);
        if (active.length > 0) throw new RunnerInputError(`${dir}: Slurm job(s) ${active.join(', ')} of this study are still queued or running; wait, or llem cancel ${dir} first`);
      }
      const before = readManifest(dir);
      await waitForOrphanedWorkers(before, manifestPath(dir), { warn: (m) => say(`warning: ${m}\n`) });
      await applyResumeUnderLock(dir, resume, (m) => say(`warning: ${m}\n`));
      const m = readManifest(dir);
      if (m.n_cycles > before.n_cycles) say(`topped up from ${before.n_cycles} to ${m.n_cycles} cycles: ${m.runs.length - before.runs.length} run(s) added\n`);
      const todo = m.runs.filter((r) => r.status === 'pending').map((r) => r.index);
      if (todo.length === 0) {
        return {
          kind: 'nothing',
          message: `${dir}: every run is completed${resume.retryFailed ? '' : ' (or failed or invalid: pass --retry-failed to rerun those)'}; nothing to submit\n`,
          exitCode: m.counts.failed + m.counts.invalid > 0 ? 1 : 0,
        };
      }
      return { kind: 'remote', remote: remote(dir, await submitStudy(dir, { ...submitOptions, indices: todo })) };
    },
    async refresh(studyDir) {
      const r = await refreshStudyFromSlurm(studyDir);
      return r.kind === 'unavailable' ? r.reason : null;
    },
    async runner(studyDir) {
      try {
        // the poll cache the refresh just filled answers: no second squeue
        const ids = activeSubmissions(readSlurmState(studyDir)).map((s) => s.job_id);
        const queued = ids.length > 0 ? await pollQueue(studyDir, ids, { minIntervalMs: pollIntervalMs() }) : [];
        const jobs = [...new Set(queued.filter((t) => verdictForSlurmState({ state: t.state }).kind === 'active').map((t) => t.jobId))];
        return { launcher: 'slurm', pid: null, host: null, alive: jobs.length > 0, since: null, slurm_jobs: jobs };
      } catch {
        // Slurm unreachable from here, or slurm.json damaged (the refresh said so): whether it runs cannot be told
        return { launcher: 'slurm', pid: null, host: null, alive: null, since: null, slurm_jobs: [] };
      }
    },
    watch(studyDir, warn) {
      const poller = pollSlurmWhileWatching(studyDir, { warn });
      // the poller records what Slurm did to every task, study_finished included: the journal ends the view
      return { stop: () => poller?.stop(), runnerGone: async () => false };
    },
  };
}
