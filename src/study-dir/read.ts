// Every read of a study directory's files goes through here: plan.json, manifest.json (and its
// chunks), each run's result.json, summary.json, slurm.json and the lock owner, each checked with
// its one zod schema (./schema.ts). A damaged or missing file is a StudyDirError naming the file
// and the first bad field: bad input to the command that reads it (exit 2, no stack).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { runResultSchema, type RunResult } from '../results/schema.ts';
import { studySummarySchema, type StudySummary } from '../results/summary-schema.ts';
import type { PlanFile } from '../study/types.ts';
import {
  CHUNK_DIR,
  LOCK_OWNER_FILE,
  PLAN_FILE,
  chunkFileName,
  manifestPath,
  slurmStatePath,
} from './files.ts';
import {
  countStatuses,
  lockOwnerSchema,
  manifestSchema,
  planFileSchema,
  slurmStateSchema,
  type LockOwner,
  type Manifest,
  type SlurmState,
} from './schema.ts';

export class StudyDirError extends Error {
  /** A damaged study dir is bad input to the command that reads it (src/cli/errors.ts exitCodeOf). */
  readonly exitCode = 2;
  constructor(
    message: string,
    readonly file: string,
    /** The first bad field (dotted path), when the file parsed but failed its schema. */
    readonly field: string | null = null,
  ) {
    super(message);
    this.name = 'StudyDirError';
  }
}

/** What to tell the user after the error, per file kind. */
const REPAIR_HINT = (studyDir: string) => `; run \`llem repair-manifest ${studyDir}\` to rebuild it`;
const PLAN_HINT = '; the plan cannot be rebuilt, start the study again from its study.yaml';
const SUMMARY_HINT = '; recompute it with `llem results --recompute`';

function readText(file: string, missing: string | null = null): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && missing) throw new StudyDirError(`${file}: ${missing}`, file);
    throw new StudyDirError(`${file}: cannot read: ${code ?? (err as Error).message}`, file);
  }
}

function parseJson(file: string, text: string, hint = ''): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new StudyDirError(`${file}: not valid JSON (${(err as Error).message})${hint}`, file);
  }
}

/** Checks `raw` against `schema`; a failure names `file` and the first bad field. */
export function parseWith<S extends z.ZodTypeAny>(schema: S, raw: unknown, file: string, hint = '', fieldOf: (p: Array<string | number>) => { file: string; field: string } = (p) => ({ file, field: p.join('.') || '(root)' })): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const at = fieldOf(issue.path);
  throw new StudyDirError(`${at.file}: field "${at.field}": ${issue.message}${hint}`, at.file, at.field);
}

/** plan.json: the expanded configs, run order and execution settings the runner executes. */
export function readPlan(studyDir: string): PlanFile {
  const file = path.join(studyDir, PLAN_FILE);
  const raw = parseJson(file, readText(file, 'not found (is this a study directory? `llem run <study.yaml>` creates one)'), PLAN_HINT);
  return parseWith(planFileSchema, raw, file, PLAN_HINT);
}

/**
 * manifest.json, with the runs of a chunked manifest read from manifest.d/. Counts are derived data:
 * recomputed here rather than trusted from a header written before its chunk.
 */
export function readManifest(studyDir: string): Manifest {
  const file = manifestPath(studyDir);
  const hint = REPAIR_HINT(studyDir);
  const raw = parseJson(file, readText(file), hint);
  const header = raw as { run_chunks?: { dir?: unknown; count?: unknown; runs_per_chunk?: unknown }; runs?: unknown } | null;
  const chunks = header && typeof header === 'object' && header.run_chunks && typeof header.run_chunks === 'object' ? header.run_chunks : null;
  if (chunks) {
    const runs: unknown[] = [];
    for (let i = 0; i < Number(chunks.count); i++) {
      const chunkFile = path.join(studyDir, String(chunks.dir ?? CHUNK_DIR), chunkFileName(i));
      const chunk = parseJson(chunkFile, readText(chunkFile), hint);
      if (!Array.isArray(chunk)) throw new StudyDirError(`${chunkFile}: expected an array of runs${hint}`, chunkFile);
      runs.push(...chunk);
    }
    header!.runs = runs;
  }
  const roundsRef = header && typeof header === 'object' ? (header as { rounds_file?: unknown }).rounds_file : undefined;
  const roundsFile = typeof roundsRef === 'string' ? path.join(studyDir, roundsRef) : null;
  if (roundsFile) (header as { rounds?: unknown }).rounds = parseJson(roundsFile, readText(roundsFile), hint);
  const manifest = parseWith(manifestSchema, raw, file, hint, (p) => {
    if (roundsFile && p[0] === 'rounds') return { file: roundsFile, field: p.slice(1).join('.') || '(root)' };
    // a bad run of a chunked manifest is named in its chunk file, at its position there
    if (chunks && p[0] === 'runs' && typeof p[1] === 'number') {
      const per = Number(chunks.runs_per_chunk) || 1;
      return { file: path.join(studyDir, String(chunks.dir ?? CHUNK_DIR), chunkFileName(Math.floor(p[1] / per))), field: [p[1] % per, ...p.slice(2)].join('.') };
    }
    return { file, field: p.join('.') || '(root)' };
  });
  manifest.counts = countStatuses(manifest.runs);
  return manifest;
}

export type CheckedResult = { ok: true; result: RunResult } | { ok: false; reason: string };

/**
 * One run's result.json, as the runner judges a run by it: the reason says what is wrong
 * ("wrote no result file", not valid JSON, the field that fails the schema).
 */
export function checkResult(file: string): CheckedResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { ok: false, reason: `wrote no result file (${file})` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `${file} is not valid JSON (${(err as Error).message})` };
  }
  const parsed = runResultSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, reason: `${file} fails its schema: field "${issue.path.join('.') || '(root)'}": ${issue.message}` };
  }
  return { ok: true, result: parsed.data };
}

/** One run's result.json; throws StudyDirError naming the file and field. */
export function readResult(file: string): RunResult {
  return parseWith(runResultSchema, parseJson(file, readText(file)), file);
}

/** summary.json (or the file given); a newer schema version than this llem reads is named as such. */
export function readSummary(file: string): StudySummary {
  const raw = parseJson(file, readText(file), SUMMARY_HINT);
  if (raw && typeof raw === 'object' && 'schema_version' in raw && (raw as { schema_version: unknown }).schema_version !== 1) {
    throw new StudyDirError(
      `${file}: summary schema_version ${String((raw as { schema_version: unknown }).schema_version)} is not supported (this llem reads 1)${SUMMARY_HINT}`,
      file,
      'schema_version',
    );
  }
  return parseWith(studySummarySchema, raw, file, SUMMARY_HINT);
}

/** The study's Slurm submissions; an empty state when it was never submitted to Slurm. */
export function readSlurmState(studyDir: string): SlurmState {
  const file = slurmStatePath(studyDir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { schema_version: 1, submissions: [], provisional: [] };
    throw new StudyDirError(`${file}: cannot read: ${(err as Error).message}`, file);
  }
  return parseWith(slurmStateSchema, parseJson(file, text), file);
}

/** Who holds the study lock (`.lock-owner.json`); null when nobody or unreadable (it is advisory). */
export function readLockOwner(studyDir: string): LockOwner | null {
  try {
    const parsed = lockOwnerSchema.safeParse(JSON.parse(readFileSync(path.join(studyDir, LOCK_OWNER_FILE), 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
