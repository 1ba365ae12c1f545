// One run, inside the isolated child: the phases in order (phases.ts: preflight → baseline → load
// → warmup → measure → teardown), then result.json (atomic) and the result message.
// Dependencies (parent link, meter, backend, log sink) are injected so the whole sequence runs in
// tests with a scripted meter and fixture backends.
import { hostname, cpus, platform, release } from 'node:os';
import { readFileSync } from 'node:fs';
import { PROTOCOL_VERSION, type ChildMessage, type ErrorType, type Phase, type RunSpec } from '../runner/protocol.ts';
import type { EnergyMeter, GpuEnvironment } from '../measure/types.ts';
import { RESULT_SCHEMA_VERSION, runResultSchema, type EnvironmentSnapshot, type RunResult } from '../results/schema.ts';
import { ClassifiedError } from '../backends/errors.ts';
import { DatasetError } from './workload.ts';
import { computeFlags, computeMetrics, resultDefinitions } from './metrics.ts';
import { modelFileHash, writeFileAtomic } from './files.ts';
import { workerLog } from './log.ts';
import { arrivalFlags, arrivalMetrics } from './arrival-metrics.ts';
import {
  baselinePhase, loadPhase, measurePhase, preflightPhase, teardownPhase, warmupPhase,
  type BaselineOutcome, type LoadOutcome, type MeasureOutcome, type PhaseDeps, type Preflight, type RunState, type WarmupOutcome,
} from './phases.ts';

export interface ChildLink {
  send(msg: ChildMessage): Promise<void>;
  /** Sends the result path and resolves true once the parent acknowledged it. */
  reportResult(path: string): Promise<boolean>;
}

export interface ChildDeps extends PhaseDeps {
  link: ChildLink;
  /** For tests: environment used for snapshots (defaults to process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * Where the worker's log lines go (bounded by workerLog). Default: this process's stderr, which
   * the runner pipes into the run's worker.log and shows in the UI.
   */
  logSink?: (text: string) => void;
}

export interface ChildOutcome {
  exitCode: number;
  result: RunResult | null;
  error: { type: ErrorType; message: string; phase: Phase | null } | null;
}

const STACK_CAP = 8000;
const MESSAGE_CAP = 16000;

export function llemVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

export function classifyError(err: unknown): ErrorType {
  if (err instanceof ClassifiedError) return err.errorType;
  if (err instanceof DatasetError) return 'PreflightError';
  const msg = String((err as Error)?.message ?? err);
  if (/out of memory|CUDA_ERROR_OUT_OF_MEMORY|ErrorOutOfDeviceMemory|failed to allocate/i.test(msg)) return 'OutOfMemory';
  return 'BackendError';
}

/** The environment as this child sees it (the GPU list comes from the meter's devices). */
export function environmentSnapshot(
  spec: RunSpec,
  meter: EnergyMeter,
  gpuEnv: GpuEnvironment | null,
  extra: Record<string, string | null>,
): EnvironmentSnapshot {
  return {
    hostname: hostname(),
    platform: `${platform()} ${release()}`,
    node_version: process.version,
    llem_version: llemVersion(),
    cpu_model: cpus()[0]?.model ?? null,
    cuda_visible_devices: spec.cuda_visible_devices,
    nvml: {
      available: meter.unavailableReason === null,
      reason: meter.unavailableReason,
      driver_version: gpuEnv?.driver_version ?? null,
      cuda_driver_version: gpuEnv?.cuda_driver_version ?? null,
    },
    gpus: gpuEnv?.gpus ?? [],
    extra,
  };
}

function buildResult(
  run: RunState,
  startedAt: string,
  pre: Preflight,
  baseline: BaselineOutcome,
  load: LoadOutcome,
  warm: WarmupOutcome,
  m: MeasureOutcome,
  modelHash: { size_bytes: number; file_hash: string } | null,
): RunResult {
  const { spec, config } = run;
  const baseMetrics = computeMetrics({
    records: m.records,
    window: m.window,
    baselinePowerW: baseline.powerW,
    baselineReused: baseline.reused,
    cpuEnergyJ: m.cpuEnergyJ,
    cpuEnergyUnavailableReason: m.cpuReason,
    loadS: load.loadS,
    loadEnergyJ: load.loadEnergyJ,
    warmupPrompts: warm.prompts,
    warmupCv: warm.cv,
    warmupConverged: warm.converged,
    warmupNotRunReason: warm.notRunReason,
  });
  const metrics = { ...baseMetrics, arrival: arrivalMetrics(config, m.records) };
  const foreign = { preflight: pre.foreign, window_start: m.foreignStart, window_stop: m.foreignStop };
  const flags = computeFlags({
    window: m.window,
    warmupConverged: warm.converged,
    warmupCv: warm.cv,
    cvThreshold: config.warmup.cv_threshold,
    foreign,
    persistenceModeOff: pre.persistenceModeOff,
    builtinModel: load.info.model_builtin ? config.model : null,
    baselineStaleReason: baseline.staleReason,
    failedRequests: m.failed.length,
    totalRequests: m.records.length,
    firstFailure: m.failed[0]?.error ?? null,
    migWholeGpu: m.meter.migWholeGpu ?? [],
    energyAdjustedJ: metrics.energy_adjusted_j,
    energyJ: metrics.energy_j,
    baselinePowerW: baseline.powerW,
    gpuSettingDrift: m.gpuSettings?.drift_reasons ?? [],
  }).concat(arrivalFlags(metrics.arrival));
  return {
    schema_version: RESULT_SCHEMA_VERSION,
    run_id: spec.run_id,
    config_hash: spec.config_hash,
    cycle: spec.cycle,
    attempt: spec.attempt,
    config,
    backend: { name: config.backend, version: load.info.backend_version },
    model: {
      id: config.model,
      path: load.info.model_path,
      size_bytes: modelHash?.size_bytes ?? null,
      file_hash: modelHash?.file_hash ?? null,
      builtin: load.info.model_builtin,
    },
    started_at: startedAt,
    ended_at: new Date().toISOString(),
    phases: run.phases,
    environment: { ...environmentSnapshot(spec, m.meter, pre.gpuEnv, load.info.extra_versions ?? {}), ...(m.gpuSettings ? { gpu_settings: m.gpuSettings } : {}) },
    metrics,
    flags,
    definitions: resultDefinitions(),
    power_csv: m.window.samples > 0 || m.window.edges !== null ? spec.power_csv_path : null,
    energy_window: m.window.edges,
    baseline: baseline.provenance,
    foreign_gpu: foreign,
    device_selection_notes: [...(m.meter.notes ?? [])],
    dataset: { sha256: pre.prompts.dataset_sha256, prompts: pre.prompts.dataset_prompts },
  };
}

export async function runChild(spec: RunSpec, deps: ChildDeps): Promise<ChildOutcome> {
  const startedAt = new Date().toISOString();
  const logSink = deps.logSink ?? ((text: string) => void process.stderr.write(text));
  const logger = workerLog(logSink);
  const send = (msg: ChildMessage): Promise<void> => deps.link.send(msg).catch(() => {});
  const run: RunState = {
    spec,
    config: spec.config,
    deps,
    phases: {},
    phase: null,
    session: null,
    meters: [],
    abort: new AbortController(),
    send,
    log: (level, message) => logger.line(level, message),
  };
  deps.signal?.addEventListener('abort', () => run.abort.abort(deps.signal?.reason), { once: true });
  const closeMeters = (): void => {
    for (const m of run.meters) {
      try {
        m.close();
      } catch {
        // already closed
      }
    }
    run.meters.length = 0;
  };

  try {
    const pre = await preflightPhase(run);
    const baseline = await baselinePhase(run, pre);
    const load = await loadPhase(run, pre);
    const warm = await warmupPhase(run, pre);
    const measured = await measurePhase(run, pre);
    await teardownPhase(run);

    const modelHash = load.info.model_path ? await modelFileHash(load.info.model_path) : null;
    const result = buildResult(run, startedAt, pre, baseline, load, warm, measured, modelHash);
    const checked = runResultSchema.safeParse(result);
    if (!checked.success) {
      const issue = checked.error.issues[0]!;
      throw new ClassifiedError('InvalidResult', `result.json would not pass its schema: field ${issue.path.join('.')}: ${issue.message}`);
    }
    await writeFileAtomic(spec.result_path, JSON.stringify(checked.data, null, 2) + '\n');
    closeMeters();
    logger.close();
    const acked = await deps.link.reportResult(spec.result_path);
    if (!acked) return { exitCode: 1, result: checked.data, error: { type: 'ProcessCrash', message: 'the parent did not acknowledge the result', phase: run.phase } };
    return { exitCode: 0, result: checked.data, error: null };
  } catch (err) {
    // Whatever the backend threw while being aborted, the cause is the parent's shutdown.
    const interrupted = deps.signal?.aborted === true;
    const type = interrupted ? 'UserInterrupted' : classifyError(err);
    const message = (interrupted ? `stopped by the parent: ${String(deps.signal?.reason ?? 'shutdown')}` : String((err as Error)?.message ?? err)).slice(0, MESSAGE_CAP);
    const stack = typeof (err as Error)?.stack === 'string' ? (err as Error).stack!.slice(0, STACK_CAP) : undefined;
    await send({ v: PROTOCOL_VERSION, type: 'error', error_type: type, message, phase: run.phase, ...(stack ? { stack } : {}) });
    if (run.session) await run.session.dispose().catch(() => {});
    closeMeters();
    logger.close();
    return { exitCode: 1, result: null, error: { type, message, phase: run.phase } };
  }
}
