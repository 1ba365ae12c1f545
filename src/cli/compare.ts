import type { Command } from 'commander';
import { CliError, InputError } from './errors.ts';
import { loadStudyForCli, summaryForCli } from './results.ts';
import { compareSummaries } from '../results/compare.ts';
import { filterRows, OUTPUT_FORMATS, parseWhere, render, sortRows, type OutputFormat } from '../results/table.ts';

export interface CompareOptions {
  format: string;
  sort?: string;
  where: string[];
  /** Print the comparison even when the environments differ in ways that change the numbers. */
  allowEnvDiff?: boolean;
}

export async function compareText(dirA: string, dirB: string, opts: CompareOptions, termColumns = 120): Promise<{ stdout: string; stderr: string }> {
  const format = opts.format as OutputFormat;
  if (!OUTPUT_FORMATS.includes(format)) throw new InputError(`--format ${opts.format}: expected one of ${OUTPUT_FORMATS.join(', ')}`);
  const studyA = await loadStudyForCli(dirA);
  const studyB = await loadStudyForCli(dirB);
  const a = await summaryForCli(studyA, false);
  const b = await summaryForCli(studyB, false);
  const result = compareSummaries({ summary: a.summary, results: studyA.results }, { summary: b.summary, results: studyB.results });
  const meaningful = result.differences.filter((d) => d.severity === 'meaning');
  if (meaningful.length && !opts.allowEnvDiff) {
    // A table of ratios across different drivers or GPUs reads as an effect of the configs.
    throw new CliError(
      `${dirA} and ${dirB} differ in ways that change the meaning of the numbers:\n${meaningful
        .map((d) => `  ${d.field === 'workload' ? `workload ${d.label}` : `${d.field} (${d.label})`}: A ${d.a} · B ${d.b}`)
        .join('\n')}\nrefusing to compare; pass --allow-env-diff to compare anyway (the differences are then printed with the table)`,
      2,
    );
  }
  if (result.matched === 0) {
    // an empty table with exit 0 reads as "no differences"; say what happened instead
    const list = (xs: string[]) => (xs.length > 5 ? `${xs.slice(0, 5).join(', ')}, … (${xs.length})` : xs.join(', ') || 'none');
    throw new InputError(
      `${dirA} and ${dirB} share no config, nothing to compare (configs match by hash, else by label): only in A: ${list(result.onlyA)}; only in B: ${list(result.onlyB)}`,
    );
  }
  let table = { ...result.table, notes: [...a.notes.map((n) => `A: ${n}`), ...b.notes.map((n) => `B: ${n}`), ...result.table.notes] };
  try {
    table = filterRows(table, opts.where.map(parseWhere));
    if (opts.sort) table = sortRows(table, opts.sort);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
  const machine = format === 'csv' || format === 'json';
  return { stdout: render(table, format, termColumns), stderr: machine ? [...table.notes, ...(table.legend ?? [])].join('\n') + '\n' : '' };
}

export function register(program: Command): void {
  program
    .command('compare')
    .description('Two studies side by side: environment differences first (exit 2 on ones that change the numbers), then per shared config and metric the ratio B/A with a bootstrap CI and whether it is distinguishable from noise')
    .argument('<dirA>', 'baseline study directory')
    .argument('<dirB>', 'study directory compared against A')
    .option('-f, --format <format>', `output format: ${OUTPUT_FORMATS.join('|')}`, 'table')
    .option('-s, --sort <column>', 'sort by a column (prefix with - for descending), e.g. -change_pct')
    .option('-w, --where <expr>', 'keep rows where FIELD=VALUE (also !=, <, <=, >, >=), e.g. metric=output_tokens_per_s', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--allow-env-diff', 'compare even when GPU, driver, CUDA, power limit, engine or llem versions, dataset or workload differ (they head the table)')
    .action(async (dirA: string, dirB: string, opts: CompareOptions) => {
      const { stdout, stderr } = await compareText(dirA, dirB, opts, process.stdout.columns ?? 120);
      if (stderr) process.stderr.write(stderr);
      process.stdout.write(stdout);
    });
}
