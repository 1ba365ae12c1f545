// Names and paths inside a study directory (docs/ARCHITECTURE.md "Study directory"). Every reader
// and writer of a study dir takes its file names from here.
import path from 'node:path';
import type { PlannedRun } from '../study/types.ts';

export const STUDY_YAML_FILE = 'study.yaml';
export const PLAN_FILE = 'plan.json';
export const MANIFEST_FILE = 'manifest.json';
export const JOURNAL_FILE = 'events.jsonl';
export const SUMMARY_FILE = 'summary.json';
export const SLURM_STATE_FILE = 'slurm.json';
/** Batch scripts and Slurm's own stdout/stderr of each task (`%A_%a.out`). */
export const SLURM_DIR = 'slurm';
/** n_cycles: auto: the rounds decided and each config's stop, kept out of the manifest header (see src/runner/manifest.ts). */
export const ROUNDS_FILE = 'rounds.json';
/** Run chunks of a large manifest (see src/runner/manifest.ts). */
export const CHUNK_DIR = 'manifest.d';
export const RUNS_DIR = 'runs';
export const RESULT_FILE = 'result.json';
export const POWER_CSV_FILE = 'power.csv';
export const WORKER_LOG_FILE = 'worker.log';
export const RUN_SPEC_FILE = 'run.json';
/** proper-lockfile's lock of the one runner (src/runner/lock.ts). */
export const LOCK_DIR = '.lock';
/** Who holds the lock, so that a refusal can name the holder. */
export const LOCK_OWNER_FILE = '.lock-owner.json';
/** Exists while one process takes over a dead holder's lock. */
export const LOCK_TAKEOVER_DIR = '.lock-takeover';

export function chunkFileName(i: number): string {
  return `runs-${String(i).padStart(5, '0')}.json`;
}

/** `<NNNN>-<hash8>-c<cycle>[-a<attempt>]`: the run dir's basename (attempt 1 has no suffix). */
export function runIdFor(run: Pick<PlannedRun, 'index' | 'config_hash' | 'cycle'>, attempt = 1): string {
  const base = `${String(run.index).padStart(4, '0')}-${run.config_hash.slice(0, 8)}-c${run.cycle}`;
  return attempt > 1 ? `${base}-a${attempt}` : base;
}

export function runDirFor(studyDir: string, runId: string): string {
  return path.join(studyDir, RUNS_DIR, runId);
}

export function manifestPath(studyDir: string): string {
  return path.join(studyDir, MANIFEST_FILE);
}

export function summaryPath(studyDir: string): string {
  return path.join(studyDir, SUMMARY_FILE);
}

export function slurmStatePath(studyDir: string): string {
  return path.join(studyDir, SLURM_STATE_FILE);
}
