// `<study>/slurm.json`: which job array owns which runs. Written only under the study lock,
// atomically. The array index of a task is the run index, so job id + run index names the task.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomicSync } from '../manifest.ts';

export const SLURM_STATE_FILE = 'slurm.json';
/** Batch scripts and Slurm's own stdout/stderr of each task (`%A_%a.out`). */
export const SLURM_DIR = 'slurm';

const submissionSchema = z.object({
  job_id: z.string(),
  submitted_at: z.string(),
  /** Run indices = array task ids. */
  indices: z.array(z.number().int().min(0)),
  array: z.string(),
  time_limit: z.string(),
  partition: z.string().nullable(),
  gpus_per_run: z.number().int().nullable(),
  sbatch_args: z.array(z.string()),
  worker_entry: z.string().nullable(),
  script: z.string(),
  /** Set by `llem cancel` (and by resume before resubmitting): tasks of it must not start runs. */
  cancelled_at: z.string().nullable(),
});
export type SlurmSubmission = z.infer<typeof submissionSchema>;

/**
 * A run its worker recorded while Slurm was still ending the task (JobState=COMPLETING hides why:
 * scancel, preemption, node failure); the poller replaces the provisional record with Slurm's
 * final state once the task has ended.
 */
const provisionalSchema = z.object({
  index: z.number().int().min(0),
  attempt: z.number().int().min(1),
  job_id: z.string(),
  recorded_at: z.string(),
});
export type ProvisionalVerdict = z.infer<typeof provisionalSchema>;

const stateSchema = z.object({
  schema_version: z.literal(1),
  submissions: z.array(submissionSchema),
  provisional: z.array(provisionalSchema).default([]),
});
export type SlurmState = z.infer<typeof stateSchema>;

export function slurmStatePath(studyDir: string): string {
  return path.join(studyDir, SLURM_STATE_FILE);
}

/** The study's submissions; an empty state when it was never submitted to Slurm. Errors name the file and field. */
export function readSlurmState(studyDir: string): SlurmState {
  const file = slurmStatePath(studyDir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { schema_version: 1, submissions: [], provisional: [] };
    throw new Error(`${file}: cannot read: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
  const parsed = stateSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${file}: field "${issue.path.join('.') || '(root)'}": ${issue.message}`);
  }
  return parsed.data;
}

/** Call under the study lock. */
export function writeSlurmState(studyDir: string, state: SlurmState): void {
  writeFileAtomicSync(slurmStatePath(studyDir), JSON.stringify(state, null, 2) + '\n');
}

export function isSlurmStudy(studyDir: string): boolean {
  return readSlurmState(studyDir).submissions.length > 0;
}

/** The newest submission that includes run `index` (the only one whose task may run it). */
export function submissionOwning(state: SlurmState, index: number): SlurmSubmission | null {
  for (let i = state.submissions.length - 1; i >= 0; i--) {
    if (state.submissions[i]!.indices.includes(index)) return state.submissions[i]!;
  }
  return null;
}
