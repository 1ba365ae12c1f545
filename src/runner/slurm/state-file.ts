// `<study>/slurm.json`: which job array owns which runs (format: src/study-dir/schema.ts, read
// with src/study-dir/read.ts readSlurmState). Written only under the study lock, atomically. The
// array index of a task is the run index, so job id + run index names the task.
import { writeFileAtomicSync } from '../../atomic-file.ts';
import { slurmStatePath } from '../../study-dir/files.ts';
import { readSlurmState } from '../../study-dir/read.ts';
import type { SlurmState, SlurmSubmission } from '../../study-dir/schema.ts';

/** Call under the study lock. */
export function writeSlurmState(studyDir: string, state: SlurmState): void {
  writeFileAtomicSync(slurmStatePath(studyDir), JSON.stringify(state, null, 2) + '\n');
}

/** Submissions that still own runs (a local runner has not taken the study over since). */
export function activeSubmissions(state: SlurmState): SlurmSubmission[] {
  return state.submissions.filter((s) => s.released_at === null);
}

/** The study is Slurm's: some submission still owns runs of it. */
export function isSlurmStudy(studyDir: string): boolean {
  return activeSubmissions(readSlurmState(studyDir)).length > 0;
}

/** The newest submission that owns run `index` (the only one whose task may run it). */
export function submissionOwning(state: SlurmState, index: number): SlurmSubmission | null {
  for (let i = state.submissions.length - 1; i >= 0; i--) {
    const s = state.submissions[i]!;
    if (s.released_at === null && s.indices.includes(index)) return s;
  }
  return null;
}

/**
 * A local runner takes over every run of the study: no submission owns a run any more, so a later
 * poll (`llem status`, `llem watch`) never records Slurm's account of an old task over what the
 * local runner did. Call under the study lock. Returns the job ids released.
 */
export function releaseSlurmSubmissions(studyDir: string): string[] {
  const state = readSlurmState(studyDir);
  const active = activeSubmissions(state);
  if (active.length === 0) return [];
  const at = new Date().toISOString();
  for (const s of active) s.released_at = at;
  state.provisional = [];
  writeSlurmState(studyDir, state);
  return active.map((s) => s.job_id);
}
