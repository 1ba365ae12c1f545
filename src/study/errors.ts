// Bad study input. Thrown by the loader, the grammar and planStudy; the CLI prints the message
// alone and exits 2 (`exitCode` is read by src/cli/errors.ts exitCodeOf, duck-typed, so src/study
// does not import the CLI).
import { closest, distance } from 'fastest-levenshtein';

export interface StudyIssue {
  file: string;
  /** 1-based; null when the problem has no single place (e.g. every config invalid). */
  line: number | null;
  col: number | null;
  /** Dotted field path, e.g. `sweep.vllm.max_num_seqs[2]`; '' for the whole file. */
  path: string;
  message: string;
}

export function formatIssue(issue: StudyIssue): string {
  const where = issue.line !== null ? `${issue.file}:${issue.line}:${issue.col ?? 1}` : issue.file;
  return issue.path ? `${where}: ${issue.path}: ${issue.message}` : `${where}: ${issue.message}`;
}

export class StudyInputError extends Error {
  readonly exitCode = 2;
  readonly issues: StudyIssue[];
  constructor(issues: StudyIssue[] | StudyIssue) {
    const list = Array.isArray(issues) ? issues : [issues];
    super(list.map(formatIssue).join('\n'));
    this.name = 'StudyInputError';
    this.issues = list;
  }
}

/** " (did you mean \"x\"?)" when a candidate is close enough to be a plausible typo, else ''. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  if (candidates.length === 0) return '';
  // a case slip (`vLLM`, `Batch_Size`) is far in edit distance on short words but obvious
  const sameLetters = candidates.find((c) => c.toLowerCase() === word.toLowerCase());
  if (sameLetters !== undefined) return ` (did you mean "${sameLetters}"?)`;
  const best = closest(word, candidates as string[]);
  const limit = Math.max(2, Math.floor(word.length / 3));
  return distance(word, best) <= limit ? ` (did you mean "${best}"?)` : '';
}

export function formatPath(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out;
}
