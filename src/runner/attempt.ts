// One attempt of one run, the same for every launcher (the local runner, one slot per GPU, a Slurm
// array task): prepare it (attempt number and run dir, timeouts from runTimeouts in src/study/estimate.ts,
// run.json, environment), supervise the child (ChildHandle: own process group, worker.log, IPC,
// timeouts), classify how it ended — a result the validity gate judges unusable makes the attempt
// `invalid` — and hand that to the launcher, which records it through the manifest transitions of
// ./transitions.ts (requeueInvalid measures an invalid run again).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { resolveModelBytes } from '../backends/model-size.ts';
import { nodeArgsFor, srcPath } from '../node-entry.ts';
import { POWER_CSV_FILE, RESULT_FILE, RUN_SPEC_FILE, WORKER_LOG_FILE, runDirFor, runIdFor } from '../study-dir/files.ts';
import { checkResult } from '../study-dir/read.ts';
import type { RunRecord, RunTimeouts, TimeoutOverride } from '../study-dir/schema.ts';
import { runTimeouts } from '../study/estimate.ts';
import type { ExperimentConfig, PlanFile } from '../study/types.ts';
import { invalidMessage, type ValidityPolicy } from '../measure/validity.ts';
import type { RunResult } from '../results/schema.ts';
import type { GpuDeviceSettings } from '../gpu-settings/record.ts';
import { ChildHandle, type ChildOutcome } from './child-handle.ts';
import { PROTOCOL_VERSION, type ChildMessage, type RunSpec } from './protocol.ts';
import { heartbeatMsFor, KILL_GRACE_MS } from './timing.ts';
import { judgeAttempt, type AttemptEnd } from './transitions.ts';

/** How the worker is started for a run.json: command and argv. */
export type WorkerCommand = (runSpecPath: string) => { command: string; args: string[] };

/** A worker entry (.ts or .js) started with this Node: `node [--import tsx] <entry> --run-spec <run.json>`. */
export function workerCommandFor(entryPath: string): WorkerCommand {
  return (runSpecPath) => ({ command: process.execPath, args: nodeArgsFor(entryPath, ['--run-spec', runSpecPath]) });
}

/** The real worker, src/worker/main.ts (compiled in dist/ when fresh). */
export const defaultWorkerCommand: WorkerCommand = (runSpecPath) => workerCommandFor(srcPath('worker/main.ts'))(runSpecPath);

/** `LLEM_WORKER_ENTRY=<file>` replaces the real worker (tests, e2e, custom workers), in every launcher. */
export function workerEntryFromEnv(env: NodeJS.ProcessEnv = process.env): string | null {
  return env.LLEM_WORKER_ENTRY ? path.resolve(env.LLEM_WORKER_ENTRY) : null;
}

export type NextAttempt =
  | { kind: 'fresh'; attempt: number; runId: string; runDir: string }
  /** A worker left a valid result in this attempt's dir without its runner recording it: adopt it. */
  | { kind: 'leftover'; attempt: number; runDir: string; result: RunResult };

/**
 * The number and dir of `run`'s next attempt. A dir for it can exist when a runner died between
 * spawning a child and recording it: a result that child left is returned for adoption, and a dir
 * without one is never reused.
 */
export function nextAttempt(studyDir: string, run: Pick<RunRecord, 'index' | 'config_hash' | 'cycle' | 'attempts'>): NextAttempt {
  let attempt = (run.attempts.at(-1)?.attempt ?? 0) + 1;
  for (;;) {
    const runId = runIdFor(run, attempt);
    const runDir = runDirFor(studyDir, runId);
    if (!existsSync(runDir)) return { kind: 'fresh', attempt, runId, runDir };
    const checked = checkResult(path.join(runDir, RESULT_FILE));
    if (checked.ok) return { kind: 'leftover', attempt, runDir, result: checked.result };
    attempt++;
  }
}

export interface PreparedAttempt {
  studyDir: string;
  index: number;
  attempt: number;
  runId: string;
  runDir: string;
  specPath: string;
  spec: RunSpec;
  timeouts: RunTimeouts;
  env: NodeJS.ProcessEnv;
}

export interface PrepareInput {
  studyDir: string;
  plan: PlanFile;
  run: Pick<RunRecord, 'index' | 'config_hash' | 'cycle'>;
  attempt: number;
  runId: string;
  runDir: string;
  /** `llem resume --experiment-timeout/--stall-timeout` (manifest.timeout_override). */
  timeoutOverride: TimeoutOverride | null | undefined;
  env: NodeJS.ProcessEnv;
  /** The GPU(s) the child measures: a per-GPU slot's, Slurm's allocation, or the parent's. */
  cudaVisibleDevices: string | null;
  /** Tests: a fixed heartbeat instead of heartbeatMsFor(stall timeout). */
  heartbeatMs?: number;
  /** The GPU settings applied and verified for this run (src/runner/gpu-settings.ts); null: none. */
  gpuSettings?: GpuDeviceSettings[] | null;
}

/** The config run `run` measures. Errors: the plan has no config with the run's hash. */
export function configOf(plan: PlanFile, run: Pick<RunRecord, 'index' | 'config_hash'>): ExperimentConfig {
  const planned = plan.configs.find((c) => c.config_hash === run.config_hash);
  if (!planned) throw new Error(`plan.json of ${plan.study_name}: no config ${run.config_hash} for run ${run.index}`);
  return planned.config;
}

/** The timeouts an attempt of `run` runs under (runTimeouts in src/study/estimate.ts, with the model's size as resolved here). */
export function attemptTimeouts(plan: PlanFile, run: Pick<RunRecord, 'index' | 'config_hash'>, override: TimeoutOverride | null | undefined, env: NodeJS.ProcessEnv): RunTimeouts {
  const config = configOf(plan, run);
  return runTimeouts(plan.execution, config, resolveModelBytes(config, env), override);
}

/**
 * Creates the run dir and writes run.json. Errors: the plan has no config with the run's hash,
 * or the run dir cannot be written.
 */
export function prepareAttempt(input: PrepareInput): PreparedAttempt {
  const config = configOf(input.plan, input.run);
  const timeouts = attemptTimeouts(input.plan, input.run, input.timeoutOverride, input.env);
  mkdirSync(input.runDir, { recursive: true });
  const spec: RunSpec = {
    v: PROTOCOL_VERSION,
    study_dir: input.studyDir,
    run_dir: input.runDir,
    run_id: input.runId,
    index: input.run.index,
    config_hash: input.run.config_hash,
    cycle: input.run.cycle,
    attempt: input.attempt,
    config,
    result_path: path.join(input.runDir, RESULT_FILE),
    power_csv_path: path.join(input.runDir, POWER_CSV_FILE),
    heartbeat_ms: input.heartbeatMs ?? heartbeatMsFor(timeouts.stall_timeout_seconds),
    cuda_visible_devices: input.cudaVisibleDevices,
    gpu_settings: input.gpuSettings ?? null,
  };
  const specPath = path.join(input.runDir, RUN_SPEC_FILE);
  writeFileSync(specPath, JSON.stringify(spec, null, 2) + '\n');
  const env = input.cudaVisibleDevices === null ? input.env : { ...input.env, CUDA_VISIBLE_DEVICES: input.cudaVisibleDevices };
  return { studyDir: input.studyDir, index: input.run.index, attempt: input.attempt, runId: input.runId, runDir: input.runDir, specPath, spec, timeouts, env };
}

export interface SuperviseOptions {
  workerCommand: WorkerCommand;
  /** SIGTERM → SIGKILL grace of the child group (default KILL_GRACE_MS). */
  killGraceMs?: number;
  onMessage?: (msg: ChildMessage) => void;
  onOutput?: (chunk: Buffer) => void;
}

/** The child of a prepared attempt, not yet started. */
export function superviseAttempt(p: PreparedAttempt, options: SuperviseOptions): ChildHandle {
  const { command, args } = options.workerCommand(p.specPath);
  return new ChildHandle({
    command,
    args,
    env: p.env,
    logPath: path.join(p.runDir, WORKER_LOG_FILE),
    resultPath: p.spec.result_path,
    timeoutMs: p.timeouts.timeout_seconds * 1000,
    stallTimeoutMs: p.timeouts.stall_timeout_seconds === null ? null : p.timeouts.stall_timeout_seconds * 1000,
    killGraceMs: options.killGraceMs ?? KILL_GRACE_MS,
    onMessage: options.onMessage,
    onOutput: options.onOutput,
  });
}

/** The manifest keeps a short tail of a failed run's output; worker.log has everything. */
export const STDERR_TAIL_BYTES = 8192;

/**
 * How the attempt ended, from its child's outcome: a completed child's result is judged by the
 * validity gate under `policy` (the plan's `execution.validity`), and an unusable one makes the
 * attempt `invalid`, with every reason.
 */
export function attemptEndOf(outcome: ChildOutcome, policy: ValidityPolicy): AttemptEnd {
  const base = {
    error_type: outcome.error_type,
    message: outcome.message,
    phase_reached: outcome.phase_reached,
    tree_cleanup: outcome.tree_cleanup,
  };
  if (outcome.status !== 'completed' || !outcome.result) {
    const completed = outcome.status === 'completed';
    return {
      ...base,
      status: outcome.status,
      stderr_tail: completed ? null : outcome.stderr_tail.slice(-STDERR_TAIL_BYTES) || null,
      result_path: completed ? outcome.result_path : null,
      result: null,
      validity: null,
    };
  }
  const validity = judgeAttempt(outcome.result, policy);
  return {
    ...base,
    status: validity.valid ? 'completed' : 'invalid',
    message: validity.valid ? outcome.message : invalidMessage(validity.reasons),
    stderr_tail: null,
    result_path: outcome.result_path,
    result: outcome.result,
    validity,
  };
}

export interface AttemptHooks {
  /** The child is spawned (the local launcher records the attempt now, with its pid). */
  started?(handle: ChildHandle): void;
  /** A launcher's own account of the end (a Slurm task asks Slurm why it was terminated). */
  refine?(end: AttemptEnd, outcome: ChildOutcome): Promise<AttemptEnd>;
  /** Records the end (manifest transition). */
  record(end: AttemptEnd): void | Promise<void>;
  /**
   * A completed run goes into the run history (src/history, what the pre-flight estimate learns
   * from) under this study hash; a history that cannot be written is said through `warn` and
   * never fails the run.
   */
  history?: { studyHash: string; warn(message: string): void };
}

/** Records a completed run in the run history; never throws (the history is never required). */
async function recordInHistory(end: AttemptEnd, wallSeconds: number, history: NonNullable<AttemptHooks['history']>): Promise<void> {
  if (end.status !== 'completed' || !end.result) return;
  try {
    // loaded on first use: the history's statistics code stays out of a parent that never completes a run
    const { recordRunInHistory } = await import('../history/record.ts');
    const outcome = recordRunInHistory(end.result, wallSeconds, { studyHash: history.studyHash });
    if (!outcome.recorded) history.warn(`run history: ${outcome.reason}`);
  } catch (err) {
    history.warn(`run history not written: ${(err as Error).message}`);
  }
}

/**
 * Starts the child, waits for its end (its whole process tree gone), classifies it (the validity
 * gate under `policy` included) and records it. Errors: what a hook throws (a manifest write that
 * failed); a child already started is then killed and waited for first, so that nothing of the
 * attempt outlives the error.
 */
export async function performAttempt(handle: ChildHandle, policy: ValidityPolicy, hooks: AttemptHooks): Promise<AttemptEnd> {
  const spawnedMs = Date.now();
  handle.start();
  try {
    hooks.started?.(handle);
  } catch (err) {
    handle.kill('abort');
    await handle.done;
    throw err;
  }
  const outcome = await handle.done;
  // spawn to exit as the parent saw it (what the history's estimate of a run's wall time needs)
  const wallSeconds = (Date.now() - spawnedMs) / 1000;
  let end = attemptEndOf(outcome, policy);
  if (hooks.refine) end = await hooks.refine(end, outcome);
  await hooks.record(end);
  if (hooks.history) await recordInHistory(end, wallSeconds, hooks.history);
  return end;
}
