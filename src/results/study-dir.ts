// Reading a study directory for the results commands: plan.json, the runner's snapshot (manifest),
// every completed run's result.json and power.csv. Errors name the file and the field.
import { existsSync } from 'node:fs';
import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { PlanFile } from '../study/types.ts';
import type { StudySnapshot } from '../runner/events.ts';
import { runResultSchema, type RunResult } from './schema.ts';
import { SUMMARY_FILE, studySummarySchema, type StudySummary } from './summary-schema.ts';

export class StudyDirError extends Error {
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message);
    this.name = 'StudyDirError';
  }
}

function describeZodError(file: string, err: z.ZodError): string {
  const issue = err.issues[0]!;
  const field = issue.path.join('.') || '(root)';
  return `${file}: field "${field}": ${issue.message}`;
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new StudyDirError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, file);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new StudyDirError(`${file}: not valid JSON (${(err as Error).message})`, file);
  }
}

// Only what the results code relies on; the study package owns the full plan format.
const planShape = z
  .object({
    schema_version: z.literal(1),
    study_name: z.string(),
    study_hash: z.string(),
    source_path: z.string(),
    created_at: z.string(),
    execution: z.object({ n_cycles: z.number().int() }).passthrough(),
    cycle_seed: z.number(),
    configs: z.array(z.object({ config_hash: z.string(), label: z.string(), config: z.record(z.string(), z.unknown()) })),
    skipped: z.array(z.object({ label: z.string(), reasons: z.array(z.string()) }).passthrough()),
    order: z.array(z.object({ index: z.number().int(), config_hash: z.string(), cycle: z.number().int() })),
  })
  .passthrough();

export async function readPlan(studyDir: string): Promise<PlanFile> {
  const file = path.join(studyDir, 'plan.json');
  if (!existsSync(file)) throw new StudyDirError(`${studyDir}: not a study directory (no plan.json)`, file);
  const raw = await readJson(file);
  const parsed = planShape.safeParse(raw);
  if (!parsed.success) throw new StudyDirError(describeZodError(file, parsed.error), file);
  return parsed.data as unknown as PlanFile;
}

type SnapshotLoader = (studyDir: string) => StudySnapshot | Promise<StudySnapshot>;

/** The runner's view of the study (statuses, attempts, error types, result paths), or null when
 * the directory has no manifest. The CLI passes the runner's loadSnapshot result in; this lazy
 * import serves writeSummary(studyDir) without one. Lazy because the runner imports this package
 * to write the summary at study end (no import cycle at load time; results stay runner-free). */
export async function loadStudySnapshot(studyDir: string): Promise<StudySnapshot | null> {
  if (!existsSync(path.join(studyDir, 'manifest.json'))) return null;
  const runnerIndex = '../runner/index.ts';
  const mod = (await import(runnerIndex)) as { loadSnapshot: (dir: string) => Promise<StudySnapshot> };
  return await mod.loadSnapshot(studyDir);
}

export interface LoadedResults {
  results: RunResult[];
  /** result path (relative to the study dir) of each result, by run_id. */
  resultPaths: Map<string, string>;
  errors: Array<{ path: string; message: string }>;
}

export async function readResultFile(file: string): Promise<RunResult> {
  const raw = await readJson(file);
  const parsed = runResultSchema.safeParse(raw);
  if (!parsed.success) throw new StudyDirError(describeZodError(file, parsed.error), file);
  return parsed.data;
}

/** Completed runs' results: the paths the snapshot names, or every runs/<dir>/result.json when
 * there is no snapshot. Unreadable files are collected, not thrown: one bad run must not hide the
 * rest of a study. */
export async function loadResults(studyDir: string, snapshot: StudySnapshot | null): Promise<LoadedResults> {
  const rels: string[] = [];
  if (snapshot) {
    for (const run of snapshot.runs) {
      if (run.status !== 'completed') continue;
      if (run.result) rels.push(run.result);
      else {
        const last = run.attempts.at(-1);
        if (last) rels.push(path.join(relativeRunDir(studyDir, last.run_dir), 'result.json'));
      }
    }
  } else {
    const runsDir = path.join(studyDir, 'runs');
    const dirs = existsSync(runsDir) ? (await readdir(runsDir, { withFileTypes: true })).filter((d) => d.isDirectory()) : [];
    for (const d of dirs.map((d) => d.name).sort()) {
      if (existsSync(path.join(runsDir, d, 'result.json'))) rels.push(path.join('runs', d, 'result.json'));
    }
  }
  const results: RunResult[] = [];
  const resultPaths = new Map<string, string>();
  const errors: LoadedResults['errors'] = [];
  for (const rel of rels) {
    const file = path.resolve(studyDir, rel);
    try {
      const r = await readResultFile(file);
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

export async function readSummaryFile(file: string): Promise<StudySummary> {
  const raw = await readJson(file);
  if (raw && typeof raw === 'object' && 'schema_version' in raw && (raw as { schema_version: unknown }).schema_version !== 1) {
    throw new StudyDirError(`${file}: summary schema_version ${String((raw as { schema_version: unknown }).schema_version)} is not supported (this llem reads 1); recompute it with \`llem results --recompute\``, file);
  }
  const parsed = studySummarySchema.safeParse(raw);
  if (!parsed.success) throw new StudyDirError(`${describeZodError(file, parsed.error)}; recompute it with \`llem results --recompute\``, file);
  return parsed.data;
}

export function summaryPath(studyDir: string): string {
  return path.join(studyDir, SUMMARY_FILE);
}

export { writeFileAtomic } from '../atomic-file.ts';
