// Layout of a study directory (see ARCHITECTURE.md "Study directory") and its creation.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { PlanFile, PlannedRun } from '../study/types.ts';
import {
  MANIFEST_SCHEMA_VERSION,
  PLAN_FILE,
  ManifestStore,
  countStatuses,
  writeFileAtomicSync,
  type Manifest,
  type RunRecord,
} from './manifest.ts';

export const STUDY_YAML_FILE = 'study.yaml';
export const RUNS_DIR = 'runs';

/** `<NNNN>-<hash8>-c<cycle>[-a<attempt>]`: the run dir's basename (attempt 1 has no suffix). */
export function runIdFor(run: Pick<PlannedRun, 'index' | 'config_hash' | 'cycle'>, attempt = 1): string {
  const base = `${String(run.index).padStart(4, '0')}-${run.config_hash.slice(0, 8)}-c${run.cycle}`;
  return attempt > 1 ? `${base}-a${attempt}` : base;
}

export function runDirFor(studyDir: string, runId: string): string {
  return path.join(studyDir, RUNS_DIR, runId);
}

export function sha256File(file: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return null;
  }
}

function timestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'study';
}

export function pendingRecord(run: PlannedRun): RunRecord {
  return {
    index: run.index,
    run_id: runIdFor(run),
    config_hash: run.config_hash,
    cycle: run.cycle,
    status: 'pending',
    attempts: [],
    error_type: null,
    result: null,
    headline: null,
  };
}

export function initialManifest(plan: PlanFile, studyYamlSha256: string | null): Manifest {
  const now = new Date().toISOString();
  const runs = [...plan.order].sort((a, b) => a.index - b.index).map(pendingRecord);
  return {
    schema_version: MANIFEST_SCHEMA_VERSION,
    study_name: plan.study_name,
    study_hash: plan.study_hash,
    study_yaml_sha256: studyYamlSha256,
    status: 'running',
    n_cycles: plan.execution.n_cycles,
    created_at: now,
    started_at: now,
    updated_at: now,
    counts: countStatuses(runs),
    runs,
  };
}

/**
 * Creates `<outDir>/<study-name>-<YYYYmmdd-HHMMSS>/` with the frozen study.yaml, plan.json, an
 * all-pending manifest.json and runs/. Returns the study dir's absolute path.
 * Errors: the YAML cannot be read, or outDir cannot be created.
 */
export function createStudyDir(plan: PlanFile, studyYamlPath: string, outDir: string): string {
  mkdirSync(outDir, { recursive: true });
  const base = path.resolve(outDir, `${safeName(plan.study_name)}-${timestamp(new Date())}`);
  let dir = base;
  for (let n = 2; existsSync(dir); n++) dir = `${base}-${n}`;
  mkdirSync(path.join(dir, RUNS_DIR), { recursive: true });
  copyFileSync(studyYamlPath, path.join(dir, STUDY_YAML_FILE));
  writePlan(dir, plan);
  const store = new ManifestStore(dir, initialManifest(plan, sha256File(path.join(dir, STUDY_YAML_FILE))));
  store.commit();
  store.close();
  return dir;
}

export function writePlan(studyDir: string, plan: PlanFile): void {
  // plan.json is written whole and rarely (creation, top-up): plain atomic JSON
  writeFileAtomicSync(path.join(studyDir, PLAN_FILE), JSON.stringify(plan, null, 2) + '\n');
}

/** A missing or damaged plan.json: bad input to the command that reads it (exit 2, no stack). */
export class PlanFileError extends Error {
  readonly exitCode = 2;
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message);
    this.name = 'PlanFileError';
  }
}

/** Reads plan.json; errors name the file and field. */
export function readPlan(studyDir: string): PlanFile {
  const file = path.join(studyDir, PLAN_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'not found (is this a study directory? `llem run <study.yaml>` creates one)' : `cannot read the plan: ${(err as Error).message}`;
    throw new PlanFileError(`${file}: ${why}`, file);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PlanFileError(`${file}: not valid JSON (${(err as Error).message}); the plan cannot be rebuilt, start the study again from its study.yaml`, file);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new PlanFileError(`${file}: expected a JSON object (the study plan)`, file);
  const plan = raw as Partial<PlanFile>;
  const need = (ok: boolean, field: string) => {
    if (!ok) throw new PlanFileError(`${file}: field "${field}" is missing or malformed`, file);
  };
  need(plan.schema_version === 1, 'schema_version');
  need(typeof plan.study_name === 'string', 'study_name');
  need(typeof plan.study_hash === 'string', 'study_hash');
  need(Array.isArray(plan.configs), 'configs');
  need(Array.isArray(plan.order), 'order');
  need(typeof plan.execution === 'object' && plan.execution !== null, 'execution');
  for (const [i, r] of plan.order!.entries()) {
    need(r !== null && typeof r === 'object' && Number.isInteger(r.index) && typeof r.config_hash === 'string' && Number.isInteger(r.cycle), `order.${i}`);
  }
  return plan as PlanFile;
}
