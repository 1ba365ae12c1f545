import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { InputError } from './errors.ts';
import { loadStudyForCli, summaryForCli } from './results.ts';
import { buildReportHtml, type PowerRunInput } from '../results/report.ts';
import type { LoadedStudy } from '../results/summary.ts';
import { writeFileAtomic } from '../atomic-file.ts';
import { parseSlo, sloAnswer, type SloAnswer } from '../results/slo.ts';
import { loadRequestRecords } from '../results/requests.ts';

/** Default number of power timelines: the first completed run of each config, up to this many. */
export const DEFAULT_POWER_RUNS = 12;

export interface ReportOptions {
  out?: string;
  powerRuns?: string;
}

/** Which runs get a power timeline: 'all', 'none', a comma list of run ids, or the default. */
export function choosePowerRuns(study: LoadedStudy, spec: string | undefined): { runIds: string[]; omitted: number } {
  const completed = study.results.slice().sort((a, b) => a.run_id.localeCompare(b.run_id));
  const inSummary = new Set(study.summary.configs.flatMap((c) => c.runs));
  const usable = completed.filter((r) => inSummary.has(r.run_id));
  if (spec === 'none') return { runIds: [], omitted: 0 };
  if (spec === 'all') return { runIds: usable.map((r) => r.run_id), omitted: 0 };
  if (spec) {
    const ids = spec.split(',').map((s) => s.trim()).filter(Boolean);
    const known = new Set(completed.map((r) => r.run_id));
    const unknown = ids.filter((id) => !known.has(id));
    if (unknown.length) throw new InputError(`--power-runs: no completed run ${unknown.join(', ')} in ${study.studyDir}`);
    return { runIds: ids, omitted: 0 };
  }
  const firstPerConfig = new Map<string, string>();
  for (const r of usable) if (!firstPerConfig.has(r.config_hash)) firstPerConfig.set(r.config_hash, r.run_id);
  const ordered = study.summary.configs.map((c) => firstPerConfig.get(c.config_hash)).filter((id): id is string => !!id);
  return { runIds: ordered.slice(0, DEFAULT_POWER_RUNS), omitted: usable.length - Math.min(ordered.length, DEFAULT_POWER_RUNS) };
}

async function powerCsvText(study: LoadedStudy, runId: string): Promise<string | null> {
  const result = study.results.find((r) => r.run_id === runId);
  const rel = study.resultPaths.get(runId);
  if (!result || !rel) return null;
  const runDir = path.dirname(path.resolve(study.studyDir, rel));
  const candidates = [
    result.power_csv ? (path.isAbsolute(result.power_csv) ? result.power_csv : path.resolve(runDir, result.power_csv)) : null,
    path.join(runDir, 'power.csv'),
  ].filter((p): p is string => !!p);
  for (const file of candidates) {
    if (existsSync(file)) return await readFile(file, 'utf8');
  }
  return null;
}

/** Files of the study record that a report must never overwrite. */
const STUDY_OWN_FILES = new Set(['plan.json', 'manifest.json', 'study.yaml', 'events.jsonl', 'summary.json', 'slurm.json']);

/**
 * Where `--out` puts the report: a directory gets `<study dir name>.html` inside it; missing parent
 * directories are created; a file in the way is bad input (checked before the report is built).
 */
export async function reportOutFile(studyDir: string, out: string | undefined): Promise<string> {
  if (out === undefined) return path.resolve(studyDir, 'report.html');
  const abs = path.resolve(out);
  const kind = (p: string) => {
    try {
      return statSync(p).isDirectory() ? 'dir' : 'file';
    } catch {
      return 'missing';
    }
  };
  if (kind(abs) === 'dir') return path.join(abs, `${path.basename(path.resolve(studyDir))}.html`);
  const rel = path.relative(path.resolve(studyDir), abs);
  if (STUDY_OWN_FILES.has(rel) || rel.startsWith(`runs${path.sep}`)) {
    throw new InputError(`--out ${out}: that is the study's own ${rel}; expected an .html file that is not part of the study record`);
  }
  for (let p = path.dirname(abs); ; p = path.dirname(p)) {
    const k = kind(p);
    if (k === 'file') throw new InputError(`--out ${out}: ${p} is a file, so the report cannot be written there`);
    if (k === 'dir' || path.dirname(p) === p) break;
  }
  try {
    await mkdir(path.dirname(abs), { recursive: true });
  } catch (err) {
    throw new InputError(`--out ${out}: cannot create ${path.dirname(abs)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return abs;
}

export async function writeReport(studyDir: string, opts: ReportOptions): Promise<{ file: string; bytes: number; notes: string[] }> {
  const study = await loadStudyForCli(studyDir);
  const file = await reportOutFile(studyDir, opts.out);
  const { summary, notes } = await summaryForCli(study, false);
  const { runIds, omitted } = choosePowerRuns(study, opts.powerRuns);
  const labelOf = new Map(summary.configs.map((c) => [c.config_hash, c.label]));
  const powerRuns: PowerRunInput[] = [];
  for (const id of runIds) {
    const r = study.results.find((x) => x.run_id === id)!;
    powerRuns.push({ run_id: id, label: labelOf.get(r.config_hash) ?? r.config_hash, csvText: await powerCsvText(study, id), flags: [...new Set(r.flags.map((f) => f.code))] });
  }
  const yamlFile = path.join(studyDir, 'study.yaml');
  const studyYaml = existsSync(yamlFile) ? await readFile(yamlFile, 'utf8') : null;
  // The study's own `slo:` (plan.json): goodput per config from each run's requests.jsonl.
  let slo: SloAnswer | null = null;
  let sloWarnings: string[] = [];
  if (study.plan.slo?.length) {
    const used = new Set(summary.configs.flatMap((c) => c.runs));
    const results = study.results.filter((r) => used.has(r.run_id));
    const { records, errors } = await loadRequestRecords(study.studyDir, results, study.resultPaths);
    slo = sloAnswer(summary, results, records, parseSlo(study.plan.slo));
    sloWarnings = errors;
  }
  const html = await buildReportHtml({ summary, plan: study.plan, powerRuns, powerRunsOmitted: omitted, studyYaml, slo, sloWarnings });
  await writeFileAtomic(file, html);
  const { size } = await stat(file);
  return { file, bytes: size, notes };
}

export function register(program: Command): void {
  program
    .command('report')
    .description('Write one self-contained HTML report (design, protocol, table, charts, flags); no network needed to view it')
    .argument('<dir>', 'study directory')
    .option('-o, --out <file>', 'output file, or a directory to write <study dir name>.html into (default: <dir>/report.html)')
    .option('--power-runs <runs>', `power timelines: "all", "none" or RUN_ID,… (default: first run of up to ${DEFAULT_POWER_RUNS} configs)`)
    .action(async (dir: string, opts: ReportOptions) => {
      const { file, bytes, notes } = await writeReport(dir, opts);
      for (const n of notes) process.stderr.write(`${n}\n`);
      process.stdout.write(`wrote ${file} (${(bytes / 1024).toFixed(0)} KiB)\n`);
    });
}
