// Shared by the runner tests: PlanFiles built directly, temp study dirs, the fixture worker.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from '../../src/node-entry.ts';
import { isExitedState, readProcStat } from '../../src/runner/proc.ts';
import '../isolate-state.ts';
import { createStudyDir } from '../../src/runner/study-dir.ts';
import type { WorkerCommand } from '../../src/runner/attempt.ts';
import type { CycleOrder, ExecutionConfig, ExperimentConfig, PlanFile, PlannedRun } from '../../src/study/types.ts';
import { DEFAULT_EXECUTION } from '../../src/study/plan-schema.ts';

export const fixtureWorkerPath = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url));
export const llemBin = fileURLToPath(new URL('../../bin/llem.js', import.meta.url));
/** What a `llem …` process printed and how it ended. */
export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `llem …` through bin/llem.js in its own process group (signals go to it and its children
 * alone), with CI=true (no live frames); `proc` is the process (for signals), `done` its end.
 */
export function spawnLlem(args: string[], env: NodeJS.ProcessEnv): { proc: ChildProcess; done: Promise<Ran> } {
  const proc = spawn(process.execPath, [llemBin, ...args], { env: { ...env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d) => (stdout += d));
  proc.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Ran>((resolve) => proc.on('close', (code) => resolve({ code, stdout, stderr })));
  return { proc, done };
}

export const fixtureWorker: WorkerCommand = (specPath) => ({
  command: process.execPath,
  args: nodeArgsFor(fixtureWorkerPath, ['--run-spec', specPath]),
});

export function configFor(params: Record<string, unknown>): ExperimentConfig {
  return {
    model: 'builtin:tiny-random',
    backend: 'llamacpp',
    precision: 'q8_0',
    n: 1,
    max_new_tokens: 1,
    batch_size: 1,
    dataset: { kind: 'builtin', name: 'default' },
    seed: 0,
    warmup: { cv_threshold: 0.1, window: 3, min_prompts: 1, max_prompts: 2 },
    baseline: { enabled: false, duration_seconds: 0, reuse_seconds: 0 },
    energy: { sample_interval_ms: 100, live_interval_ms: 500, rapl: false },
    params,
  };
}

export function orderFor(hashes: string[], nCycles: number, order: CycleOrder): PlannedRun[] {
  const runs: Array<{ config_hash: string; cycle: number }> = [];
  if (order === 'sequential') {
    for (const h of hashes) for (let c = 1; c <= nCycles; c++) runs.push({ config_hash: h, cycle: c });
  } else {
    for (let c = 1; c <= nCycles; c++) {
      const hs = order === 'shuffled' ? [...hashes].reverse() : hashes;
      for (const h of c % 2 === 0 && order === 'shuffled' ? hashes : hs) runs.push({ config_hash: h, cycle: c });
    }
  }
  return runs.map((r, index) => ({ index, ...r }));
}

/** A plan of one config per entry of `params` (each a fixture behaviour). */
export function makePlan(
  params: Array<Record<string, unknown>>,
  options: { nCycles?: number; order?: CycleOrder; execution?: Partial<ExecutionConfig>; sourcePath?: string } = {},
): PlanFile {
  const nCycles = options.nCycles ?? 1;
  const configs = params.map((p, i) => ({
    config_hash: (i.toString(16).padStart(2, '0') + 'ab'.repeat(7)).slice(0, 16),
    label: `fixture ${JSON.stringify(p)}`,
    config: configFor(p),
  }));
  const order = options.order ?? 'interleaved';
  return {
    schema_version: 1,
    study_name: 'fixture-study',
    study_hash: 'f'.repeat(16),
    source_path: options.sourcePath ?? '/nonexistent/study.yaml',
    created_at: new Date().toISOString(),
    execution: {
      ...DEFAULT_EXECUTION,
      n_cycles: nCycles,
      cycle_order: order,
      config_gap_seconds: 0,
      cycle_gap_seconds: 0,
      experiment_timeout_seconds: 60,
      stall_timeout_seconds: 30,
      ...options.execution,
    },
    cycle_seed: 1,
    configs,
    skipped: [],
    order: orderFor(configs.map((c) => c.config_hash), nCycles, order),
    warnings: [],
    estimate: { total_seconds: 1, low_seconds: 1, high_seconds: 1, finish_at: new Date().toISOString(), per_config: [] },
  };
}

export interface TempStudy {
  root: string;
  yamlPath: string;
  studyDir: string;
  cleanup(): void;
}

export function tempStudy(plan: PlanFile | ((yamlPath: string) => PlanFile)): TempStudy {
  const root = mkdtempSync(path.join(os.tmpdir(), 'llem-runner-test-'));
  const yamlPath = path.join(root, 'study.yaml');
  writeFileSync(yamlPath, 'name: fixture-study\n');
  const p = typeof plan === 'function' ? plan(yamlPath) : plan;
  const studyDir = createStudyDir(p, yamlPath, path.join(root, 'out'));
  return { root, yamlPath, studyDir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** `pid` exists and has not exited (a zombie waiting for its parent to reap it has exited). */
export function processRunning(pid: number): boolean {
  const s = readProcStat(pid);
  return s !== null && !isExitedState(s.state);
}

/** pids in process group `pgid` (ps), excluding zombies. */
export function groupMembers(pgid: number): number[] {
  let out = '';
  try {
    out = execFileSync('ps', ['-e', '-o', 'pid=,pgid=,stat='], { encoding: 'utf8' });
  } catch {
    return [];
  }
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 3 && Number(f[1]) === pgid && !f[2]!.startsWith('Z'))
    .map((f) => Number(f[0]));
}

export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
