// `llem export <dir> --format mlenergy|aienergyscore|csv|parquet [--out FILE]`: the study in open
// formats (src/results/export.ts); every file gets a <file>.meta.json with the study hash and the
// definition and unit of every column.
import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { InputError } from './errors.ts';
import { loadStudyForCli, summaryForCli } from './results.ts';
import { EXPORT_FORMATS, writeExport, type ExportFormat } from '../results/export.ts';

export interface ExportOptions {
  format: string;
  out?: string;
}

const EXTENSION: Record<ExportFormat, string> = { mlenergy: 'parquet', aienergyscore: 'csv', csv: 'csv', parquet: 'parquet' };

/** Where the export goes: --out (a file, or a directory to put the default name in), else the study dir. */
export function exportOutFile(studyDir: string, format: ExportFormat, out: string | undefined): string {
  const name = `${path.basename(path.resolve(studyDir))}-${format}.${EXTENSION[format]}`;
  if (out === undefined) return path.resolve(studyDir, name);
  const abs = path.resolve(out);
  if (existsSync(abs) && statSync(abs).isDirectory()) return path.join(abs, name);
  const rel = path.relative(path.resolve(studyDir), abs);
  if (['plan.json', 'manifest.json', 'study.yaml', 'summary.json', 'events.jsonl'].includes(rel) || rel.startsWith(`runs${path.sep}`)) {
    throw new InputError(`--out ${out}: that is part of the study record; choose another file`);
  }
  return abs;
}

export async function runExport(studyDir: string, opts: ExportOptions): Promise<{ files: string[]; rows: number; notes: string[] }> {
  const format = opts.format as ExportFormat;
  if (!EXPORT_FORMATS.includes(format)) throw new InputError(`--format ${opts.format}: expected one of ${EXPORT_FORMATS.join(', ')}`);
  const study = await loadStudyForCli(studyDir);
  const file = exportOutFile(studyDir, format, opts.out);
  try {
    await mkdir(path.dirname(file), { recursive: true });
  } catch (err) {
    throw new InputError(`--out ${opts.out}: cannot create ${path.dirname(file)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const { summary, notes } = await summaryForCli(study, false);
  const written = await writeExport(format, study, summary, file);
  return { ...written, notes };
}

export function register(program: Command): void {
  program
    .command('export')
    .description('Write a study in open formats: mlenergy (ML.ENERGY run records, Parquet + CSV), aienergyscore (Wh per 1,000 queries), csv or parquet (one row per run); each with <file>.meta.json (study hash, column definitions)')
    .argument('<dir>', 'study directory')
    .requiredOption('-f, --format <format>', `${EXPORT_FORMATS.join('|')}`)
    .option('-o, --out <file>', 'output file, or a directory for <study dir name>-<format>.<ext> (default: inside the study dir)')
    .action(async (dir: string, opts: ExportOptions) => {
      const { files, rows, notes } = await runExport(dir, opts);
      for (const n of notes) process.stderr.write(`${n}\n`);
      process.stdout.write(`${files.map((f) => `wrote ${f}`).join('\n')}\n(${rows} rows)\n`);
    });
}
