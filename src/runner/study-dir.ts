// Creating a study directory (docs/ARCHITECTURE.md "Study directory"): the frozen study.yaml,
// plan.json, an all-pending manifest and runs/. Reading it is src/study-dir/read.ts.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomicSync } from '../atomic-file.ts';
import { PLAN_FILE, RUNS_DIR, STUDY_YAML_FILE, runIdFor } from '../study-dir/files.ts';
import { MANIFEST_SCHEMA_VERSION, countStatuses, type Manifest, type RunRecord } from '../study-dir/schema.ts';
import type { PlanFile, PlannedRun } from '../study/types.ts';
import { ManifestStore } from './manifest.ts';

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
    // n_cycles: auto: rounds are decided as the study goes (src/runner/rounds.ts)
    ...(plan.execution.target ? { rounds: { decided: 0, stops: [] } } : {}),
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
