// summary.json for a study directory: load → summarise (pure, ./summarize.ts) → atomic write.
// The runner calls writeSummary(studyDir, snapshot) at study end with its own snapshot;
// `llem results --recompute` calls it again, reading the manifest.
import { writeFileAtomic } from '../atomic-file.ts';
import { summaryPath } from '../study-dir/files.ts';
import { readPlan } from '../study-dir/read.ts';
import type { StudySnapshot } from '../study-dir/schema.ts';
import type { PlanFile } from '../study/types.ts';
import type { RunResult } from './schema.ts';
import { summarizeStudy, type SummaryOptions } from './summarize.ts';
import type { StudySummary } from './summary-schema.ts';
import { loadResults, loadStudySnapshot } from './study-dir.ts';

export { summarizeStudy } from './summarize.ts';

export interface LoadedStudy {
  studyDir: string;
  plan: PlanFile;
  snapshot: StudySnapshot | null;
  results: RunResult[];
  /** result.json path relative to the study dir, by run_id. */
  resultPaths: Map<string, string>;
  summary: StudySummary;
}

/** Everything the results commands need, summary computed fresh from the run files. */
export async function loadStudy(
  studyDir: string,
  options: { snapshot?: StudySnapshot | null; summary?: Partial<SummaryOptions> } = {},
): Promise<LoadedStudy> {
  const plan = readPlan(studyDir);
  const snapshot = options.snapshot !== undefined ? options.snapshot : loadStudySnapshot(studyDir);
  const loaded = loadResults(studyDir, snapshot);
  const summary = summarizeStudy({ plan, snapshot, results: loaded.results, loadErrors: loaded.errors, options: options.summary });
  return { studyDir, plan, snapshot, results: loaded.results, resultPaths: loaded.resultPaths, summary };
}

/**
 * Recompute and atomically (re)write `<studyDir>/summary.json`. `snapshot` lets the runner pass
 * its in-memory state; without it the manifest is read. Errors: StudyDirError for a missing or
 * invalid plan.json / manifest; unreadable result files become warnings in the summary.
 */
export async function writeSummary(studyDir: string, snapshot?: StudySnapshot | null): Promise<void> {
  const { summary } = await loadStudy(studyDir, { snapshot });
  await writeFileAtomic(summaryPath(studyDir), JSON.stringify(summary, null, 2) + '\n');
}
