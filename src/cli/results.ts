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
import { computeFrontier, DEFAULT_FRONTIER_X, DEFAULT_FRONTIER_Y, FRONTIER_X_AXES, FRONTIER_Y_AXES, frontierAxis } from '../results/frontier.ts';
import { parseSlo, SloParseError, sloAnswer, type SloCondition } from '../results/slo.ts';
import { frontierView, sloView } from '../results/answers.ts';
import { loadRequestRecords } from '../results/requests.ts';

export interface ResultsOptions {
  format: string;
  sort?: string;
  where: string[];
  runs?: boolean;
  recompute?: boolean;
  bootstrapResamples?: string;
  /** issue 16: the CI-aware energy–latency frontier instead of the config table. */
  frontier?: boolean;
  x?: string;
  y?: string;
  /** issue 16: SLO conditions (repeatable, comma lists allowed): goodput and J per good token. */
  slo?: string[];
}

/** `--slo` values → conditions; bad text is bad input naming the flag. */
export function sloFromFlags(values: readonly string[] | undefined): SloCondition[] | null {
  if (!values || values.length === 0) return null;
  try {
    return parseSlo(values);
  } catch (err) {
    if (err instanceof SloParseError) throw new InputError(`--slo ${err.message}`);
    throw err;
  }
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
  const slo = sloFromFlags(opts.slo);
  if (!opts.frontier && (opts.x !== undefined || opts.y !== undefined)) throw new InputError('--x and --y choose the axes of --frontier: add --frontier');
  const xAxis = opts.frontier ? axisFromFlag(FRONTIER_X_AXES, opts.x ?? DEFAULT_FRONTIER_X, '--x') : null;
  const yAxis = opts.frontier ? axisFromFlag(FRONTIER_Y_AXES, opts.y ?? DEFAULT_FRONTIER_Y, '--y') : null;
  if ((xAxis || slo) && opts.runs) throw new InputError('--frontier and --slo answer per config: drop --runs');
  const study = await loadStudyForCli(studyDir, summaryOptions);
  const { summary, notes } = await summaryForCli(study, !!opts.recompute);
  if (xAxis || slo) return answersText(study, summary, notes, { xAxis, yAxis, slo }, opts, format, termColumns);
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

function axisFromFlag(axes: typeof FRONTIER_X_AXES, name: string, flag: string) {
  try {
    return frontierAxis(axes, name, flag);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
}

/** --frontier and/or --slo: the answer views (both: frontier first). JSON: the frontier alone is an
 * array of configs (each with on_frontier and dominated_by), the SLO alone an object, both {frontier, slo}. */
async function answersText(
  study: LoadedStudy,
  summary: StudySummary,
  notes: string[],
  q: { xAxis: ReturnType<typeof frontierAxis> | null; yAxis: ReturnType<typeof frontierAxis> | null; slo: SloCondition[] | null },
  opts: ResultsOptions,
  format: OutputFormat,
  termColumns: number,
): Promise<{ stdout: string; stderr: string }> {
  const views: Array<{ data: TableData; json: unknown }> = [];
  const json: Record<string, unknown> = {};
  if (q.xAxis && q.yAxis) {
    const v = frontierView(summary, computeFrontier(summary, q.xAxis, q.yAxis));
    views.push(v);
    json.frontier = v.json;
  }
  if (q.slo) {
    const used = new Set(summary.configs.flatMap((c) => c.runs));
    const results = study.results.filter((r) => used.has(r.run_id));
    const { records, errors } = await loadRequestRecords(study.studyDir, results, study.resultPaths);
    const v = sloView(summary, sloAnswer(summary, results, records, q.slo));
    v.data = { ...v.data, notes: [...v.data.notes, ...errors.map((e) => `warning: ${e}`)] };
    views.push(v);
    json.slo = v.json;
  }
  const allNotes = [studyHeadline(summary), ...notes];
  const machine = format === 'csv' || format === 'json';
  let stdout: string;
  if (format === 'json') {
    const keys = Object.keys(json);
    stdout = JSON.stringify(keys.length === 1 ? json[keys[0]!] : json, null, 2) + '\n';
  } else {
    try {
      stdout = views
        .map((v, i) => {
          let data = filterRows(v.data, opts.where.map(parseWhere));
          if (opts.sort) data = sortRows(data, opts.sort);
          return render({ ...data, notes: [...(i === 0 ? allNotes : []), ...data.notes] }, format, termColumns);
        })
        .join(format === 'csv' ? '' : '\n');
    } catch (err) {
      throw new InputError((err as Error).message);
    }
  }
  const stderrNotes = [...allNotes, ...views.flatMap((v) => [...v.data.notes, ...(v.data.legend ?? [])])];
  return { stdout, stderr: machine ? stderrNotes.join('\n') + '\n' : '' };
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
    .option('--frontier', 'the CI-aware energy–latency Pareto frontier: configs dominated only beyond the overlap of their 95 % intervals')
    .option('--x <axis>', `frontier x axis: ${FRONTIER_X_AXES.map((a) => a.name).join('|')} (default ${DEFAULT_FRONTIER_X})`)
    .option('--y <axis>', `frontier y axis: ${FRONTIER_Y_AXES.map((a) => a.name).join('|')} (default ${DEFAULT_FRONTIER_Y})`)
    .option('--slo <conditions>', "SLO conditions, e.g. 'ttft_p95_ms<=200,itl_p95_ms<=50' (repeatable): goodput, J per good token and the lowest-energy config that meets it", (v: string, acc: string[] = []) => [...acc, v])
    .action(async (dir: string, opts: ResultsOptions) => {
      const { stdout, stderr } = await resultsText(dir, opts, process.stdout.columns ?? 120);
      if (stderr) process.stderr.write(stderr);
      process.stdout.write(stdout);
    });
}
