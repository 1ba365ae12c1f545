import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { InputError } from './errors.ts';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-file.ts';
import { loadStudy, type LoadedStudy } from '../results/summary.ts';
import type { SummaryOptions } from '../results/summarize.ts';
import { summaryPath } from '../study-dir/files.ts';
import { readSummary, StudyDirError } from '../study-dir/read.ts';
import {
  configTable,
  filterRows,
  OUTPUT_FORMATS,
  parseWhere,
  render,
  runTable,
  sortRows,
  studyHeadline,
  type OutputFormat,
  type TableData,
} from '../results/table.ts';
import type { StudySummary } from '../results/summary-schema.ts';

export interface ResultsOptions {
  format: string;
  sort?: string;
  where: string[];
  runs?: boolean;
  recompute?: boolean;
  bootstrapResamples?: string;
}

/** Loads a study for the results commands; bad directories and files are input errors (exit 2). */
export async function loadStudyForCli(studyDir: string, summaryOptions: Partial<SummaryOptions> = {}): Promise<LoadedStudy> {
  if (!existsSync(studyDir)) throw new InputError(`${studyDir}: no such study directory`);
  try {
    // The runner's view from the manifest (statuses, attempts, error types, result paths), when there is one.
    return await loadStudy(studyDir, { summary: summaryOptions });
  } catch (err) {
    if (err instanceof StudyDirError) throw new InputError(err.message);
    throw err;
  }
}

/**
 * The summary to show: summary.json as written when it is current; recomputed (and written) with
 * --recompute; computed fresh in memory, with a note, when the run files moved on since it was
 * written or it does not exist yet (unfinished study).
 */
export async function summaryForCli(study: LoadedStudy, recompute: boolean): Promise<{ summary: StudySummary; notes: string[] }> {
  const file = summaryPath(study.studyDir);
  if (recompute) {
    await writeFileAtomic(file, JSON.stringify(study.summary, null, 2) + '\n');
    return { summary: study.summary, notes: [`recomputed ${file}`] };
  }
  if (!existsSync(file)) return { summary: study.summary, notes: [] };
  let stored: StudySummary;
  try {
    stored = readSummary(file);
  } catch (err) {
    return { summary: study.summary, notes: [`${(err as Error).message}; showing statistics computed from the run files`] };
  }
  const fresh = study.summary.study.counts;
  const same = (Object.keys(fresh) as Array<keyof typeof fresh>).every((k) => stored.study.counts[k] === fresh[k]);
  if (!same) {
    return { summary: study.summary, notes: [`${file} is older than the run files; showing fresh statistics (write them with --recompute)`] };
  }
  return { summary: stored, notes: [] };
}

/** stdout and stderr of `llem results`: notes (partial study, warnings) go above a table or
 * Markdown, and to stderr for CSV/JSON so that stdout stays parseable. */
export async function resultsText(studyDir: string, opts: ResultsOptions, termColumns = 120): Promise<{ stdout: string; stderr: string }> {
  const format = opts.format as OutputFormat;
  if (!OUTPUT_FORMATS.includes(format)) throw new InputError(`--format ${opts.format}: expected one of ${OUTPUT_FORMATS.join(', ')}`);
  const summaryOptions: Partial<SummaryOptions> = {};
  if (opts.bootstrapResamples !== undefined) {
    const b = Number(opts.bootstrapResamples);
    if (!Number.isInteger(b) || b < 100 || b > 1_000_000) throw new InputError(`--bootstrap-resamples ${opts.bootstrapResamples}: expected an integer from 100 to 1000000`);
    if (!opts.recompute) throw new InputError('--bootstrap-resamples changes summary.json: use it with --recompute');
    summaryOptions.bootstrapResamples = b;
  }
  const study = await loadStudyForCli(studyDir, summaryOptions);
  const { summary, notes } = await summaryForCli(study, !!opts.recompute);
  let data: TableData = opts.runs ? runTable(study.plan, study.snapshot, study.results, summary) : configTable(summary);
  try {
    data = filterRows(data, opts.where.map(parseWhere));
    if (opts.sort) data = sortRows(data, opts.sort);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
  data = { ...data, notes: [studyHeadline(summary), ...notes, ...data.notes] };
  const machine = format === 'csv' || format === 'json';
  return { stdout: render(data, format, termColumns), stderr: machine && data.notes.length ? data.notes.join('\n') + '\n' : '' };
}

export function register(program: Command): void {
  program
    .command('results')
    .description('Cross-cycle statistics of a study: one row per config (mean ± 95 % CI), or one per run')
    .argument('<dir>', 'study directory')
    .option('-f, --format <format>', `output format: ${OUTPUT_FORMATS.join('|')}`, 'table')
    .option('-s, --sort <column>', 'sort by a column (prefix with - for descending), e.g. -tokens_per_s')
    .option('-w, --where <expr>', 'keep rows where FIELD=VALUE (also !=, <, <=, >, >=); repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--runs', 'one row per run instead of per config (for pandas: use with --format csv or json)')
    .option('--recompute', 'recompute summary.json from the run files and write it')
    .option('--bootstrap-resamples <n>', 'with --recompute: bootstrap resamples per metric (default 1000)')
    .action(async (dir: string, opts: ResultsOptions) => {
      const { stdout, stderr } = await resultsText(dir, opts, process.stdout.columns ?? 120);
      if (stderr) process.stderr.write(stderr);
      process.stdout.write(stdout);
    });
}
