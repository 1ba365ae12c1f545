// Which result files the results commands read from a study directory: the paths the runner's
// snapshot names, or every run dir's result.json when there is no manifest. The files themselves
// are read and checked through src/study-dir/read.ts.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { MANIFEST_FILE, RESULT_FILE, RUNS_DIR } from '../study-dir/files.ts';
import { readResult, StudyDirError } from '../study-dir/read.ts';
import type { StudySnapshot } from '../study-dir/schema.ts';
import { readStudySnapshot } from '../study-dir/snapshot.ts';
import type { RunResult } from './schema.ts';

/** The study as its manifest records it, or null when the directory has no manifest. */
export function loadStudySnapshot(studyDir: string): StudySnapshot | null {
  return existsSync(path.join(studyDir, MANIFEST_FILE)) ? readStudySnapshot(studyDir) : null;
}

export interface LoadedResults {
  results: RunResult[];
  /** result path (relative to the study dir) of each result, by run_id. */
  resultPaths: Map<string, string>;
  errors: Array<{ path: string; message: string }>;
}

/** Completed runs' results: the paths the snapshot names, or every runs/<dir>/result.json when
 * there is no snapshot. Unreadable files are collected, not thrown: one bad run must not hide the
 * rest of a study. */
export function loadResults(studyDir: string, snapshot: StudySnapshot | null): LoadedResults {
  const rels: string[] = [];
  if (snapshot) {
    for (const run of snapshot.runs) {
      if (run.status !== 'completed') continue;
      if (run.result) rels.push(run.result);
      else {
        const last = run.attempts.at(-1);
        if (last) rels.push(path.join(relativeRunDir(studyDir, last.run_dir), RESULT_FILE));
      }
    }
  } else {
    const runsDir = path.join(studyDir, RUNS_DIR);
    const dirs = existsSync(runsDir) ? readdirSync(runsDir, { withFileTypes: true }).filter((d) => d.isDirectory()) : [];
    for (const d of dirs.map((d) => d.name).sort()) {
      if (existsSync(path.join(runsDir, d, RESULT_FILE))) rels.push(path.join(RUNS_DIR, d, RESULT_FILE));
    }
  }
  const results: RunResult[] = [];
  const resultPaths = new Map<string, string>();
  const errors: LoadedResults['errors'] = [];
  for (const rel of rels) {
    const file = path.resolve(studyDir, rel);
    try {
      const r = readResult(file);
      results.push(r);
      resultPaths.set(r.run_id, rel);
    } catch (err) {
      errors.push({ path: rel, message: err instanceof StudyDirError ? err.message.replace(`${file}: `, '') : String(err) });
    }
  }
  return { results, resultPaths, errors };
}

function relativeRunDir(studyDir: string, runDir: string): string {
  return path.isAbsolute(runDir) ? path.relative(studyDir, runDir) : runDir;
}
