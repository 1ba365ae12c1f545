// One run, inside the isolated child: preflight → baseline → load → warmup → measure → teardown,
// then result.json (atomic) and the result message. Dependencies (parent link, meter, backend) are
// injected so the whole sequence runs in tests with a scripted meter and fixture backends.
import { hostname, cpus, platform, release } from 'node:os';
import { readFile, appendFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { PROTOCOL_VERSION, type ChildMessage, type ErrorType, type Phase, type RunSpec } from '../runner/protocol.ts';
import type { Backend, BackendSession, LoadInfo, RequestRecord, Workload } from '../backends/types.ts';
import type { EnergyMeter, EnergyWindow, GpuEnvironment, OpenMeterOptions } from '../measure/types.ts';
import type { RaplMeter } from '../measure/rapl.ts';
import {
  RESULT_SCHEMA_VERSION, runResultSchema, type EnvironmentSnapshot, type RunResult,
} from '../results/schema.ts';
import { ClassifiedError } from '../backends/errors.ts';
import { buildRunPrompts, DatasetError } from './workload.ts';
import {
  baselineReuseDecision, coefficientOfVariation, computeFlags, computeMetrics, METRIC_DEFINITIONS, type BaselineRecord,
} from './metrics.ts';
import { modelFileHash, writeFileAtomic } from './files.ts';
import { arrivalFlags, arrivalMetrics, workloadArrival } from './arrival-metrics.ts';

export interface ChildLink {
  send(msg: ChildMessage): Promise<void>;
  /** Sends the result path and resolves true once the parent acknowledged it. */
  reportResult(path: string): Promise<boolean>;
}

export interface ChildDeps {
  link: ChildLink;
  openMeter(opts: OpenMeterOptions): Promise<EnergyMeter>;
  loadBackend(name: string): Promise<Backend>;
  /** CPU package energy (RAPL), used when config.energy.rapl is set. */
  openRapl?: () => Promise<RaplMeter>;
  /** Aborted when the parent asks for a shutdown. */
  signal?: AbortSignal;
  /** For tests: environment used for snapshots (defaults to process.env). */
  env?: NodeJS.ProcessEnv;
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

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

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

export async function runChild(spec: RunSpec, deps: ChildDeps): Promise<ChildOutcome> {
  const { link } = deps;
  const config = spec.config;
  const startedAt = new Date().toISOString();
  const phases: Record<string, { start_ms: number; end_ms: number }> = {};
  let phase: Phase | null = null;
  let session: BackendSession | null = null;
  const meters: EnergyMeter[] = [];
  const send = (msg: ChildMessage): Promise<void> => link.send(msg).catch(() => {});
  const log = (level: 'debug' | 'info' | 'warn' | 'error', message: string): void => {
    void send({ v: PROTOCOL_VERSION, type: 'log', level, message: message.slice(0, 4096) });
  };
  const enter = async (p: Phase): Promise<void> => {
    const now = performance.now();
    if (phase) phases[phase]!.end_ms = now;
    phase = p;
    phases[p] = { start_ms: now, end_ms: now };
    await send({ v: PROTOCOL_VERSION, type: 'phase', phase: p, t_ms: now });
  };
  const checkAbort = (): void => {
    if (deps.signal?.aborted) throw new ClassifiedError('UserInterrupted', `stopped by the parent: ${String(deps.signal.reason ?? 'shutdown')}`);
  };

  try {
    // ── preflight ────────────────────────────────────────────────────────────────────────────
    await enter('preflight');
    const prompts = await buildRunPrompts(config.dataset, config.seed, config.n, config.warmup.max_prompts);
    const backend = await deps.loadBackend(config.backend);
    const auxMeter = await deps.openMeter({ cudaVisibleDevices: spec.cuda_visible_devices, intervalMs: config.energy.sample_interval_ms });
    meters.push(auxMeter);
    if (auxMeter.unavailableReason !== null) log('warn', `energy unavailable: ${auxMeter.unavailableReason}`);
    for (const note of auxMeter.notes ?? []) log('info', note);
    // Environment snapshot per run: driver, power limits, persistence, MIG, foreign processes.
    let gpuEnv: GpuEnvironment | null = null;
    if (auxMeter.unavailableReason === null && auxMeter.environment) {
      try {
        gpuEnv = await auxMeter.environment();
      } catch (err) {
        log('warn', `GPU environment snapshot failed: ${(err as Error).message}`);
      }
    }
    const foreignProcesses = (gpuEnv?.gpus ?? []).flatMap((g) => g.foreign_processes);
    const persistenceModeOff = (gpuEnv?.gpus ?? []).filter((g) => g.persistence_mode === false).map((g) => `GPU ${g.index} (${g.uuid})`);
    if (foreignProcesses.length > 0) log('warn', `${foreignProcesses.length} foreign process(es) on the measured GPUs; the result will be flagged`);
    checkAbort();

    // ── baseline ─────────────────────────────────────────────────────────────────────────────
    await enter('baseline');
    let baselinePowerW: number | null = null;
    let baselineReused: boolean | null = null;
    let baselineStaleReason: string | null = null;
    // One stored baseline per GPU selection (parallel per-GPU runs measure different devices).
    const baselineKey = (spec.cuda_visible_devices ?? 'all').replace(/[^A-Za-z0-9_.-]/g, '_') || 'none';
    const baselinePath = join(spec.study_dir, `baseline-${baselineKey}.json`);
    if (config.baseline.enabled && auxMeter.unavailableReason === null) {
      let prev: BaselineRecord | null = null;
      try {
        prev = JSON.parse(await readFile(baselinePath, 'utf8')) as BaselineRecord;
      } catch {
        // none yet
      }
      const temps = (gpuEnv?.gpus ?? []).map((g) => g.temperature_c).filter((t): t is number => t !== null);
      const decision = baselineReuseDecision(prev, Date.now(), config.baseline.reuse_seconds, temps.length ? Math.max(...temps) : null);
      log('info', `baseline: ${decision.reuse ? 'reused' : 'measured'} (${decision.why})`);
      if (decision.reuse && prev) {
        baselinePowerW = prev.power_w;
        baselineReused = true;
        baselineStaleReason = decision.staleReason;
      } else {
        await auxMeter.start();
        await sleep(config.baseline.duration_seconds * 1000, deps.signal);
        const w = await auxMeter.stop();
        baselinePowerW = w.power_mean_w ?? (w.energy_j !== null && w.window_s > 0 ? w.energy_j / w.window_s : null);
        baselineReused = false;
        if (baselinePowerW !== null) {
          const rec: BaselineRecord = { measured_at_ms: Date.now(), power_w: baselinePowerW, temperature_c: w.temperature_end_c };
          await writeFileAtomic(baselinePath, JSON.stringify(rec)).catch(() => {});
        }
      }
    }
    checkAbort();

    // ── load ─────────────────────────────────────────────────────────────────────────────────
    await enter('load');
    const loadStart = performance.now();
    const loadMeterOn = auxMeter.unavailableReason === null;
    if (loadMeterOn) await auxMeter.start();
    const abort = new AbortController();
    deps.signal?.addEventListener('abort', () => abort.abort(deps.signal?.reason), { once: true });
    let info: LoadInfo;
    let loadEnergyJ: number | null = null;
    try {
      const loaded = await backend.load(config, {
        runDir: spec.run_dir,
        signal: abort.signal,
        log: (line) => log('debug', line),
      });
      session = loaded.session;
      info = loaded.info;
    } finally {
      if (loadMeterOn) {
        loadEnergyJ = (await auxMeter.stop()).energy_j;
      }
    }
    const loadS = (performance.now() - loadStart) / 1000;
    checkAbort();

    // ── warmup ───────────────────────────────────────────────────────────────────────────────
    await enter('warmup');
    const wc = config.warmup;
    const warmupLatencies: number[] = [];
    let warmupCv: number | null = null;
    let warmupConverged = wc.max_prompts === 0 || session.handlesWarmup === true;
    if (session.handlesWarmup) log('info', `${config.backend} warms up on its own: the worker runs no warmup prompts`);
    for (let i = 0; i < (session.handlesWarmup ? 0 : prompts.warmup.length); i++) {
      checkAbort();
      const recs = await session.run(
        { prompts: [prompts.warmup[i]!], max_new_tokens: config.max_new_tokens, concurrency: 1, seed: config.seed, greedy: true },
        undefined,
        abort.signal,
      );
      const r = recs[0];
      if (r && r.error === null) warmupLatencies.push(r.end_ms - r.start_ms);
      else if (r?.error) log('warn', `warmup request failed: ${r.error}`);
      warmupCv = coefficientOfVariation(warmupLatencies, wc.window);
      await send({ v: PROTOCOL_VERSION, type: 'progress', phase: 'warmup', done: i + 1, total: prompts.warmup.length, warmup_cv: warmupCv });
      if (i + 1 >= wc.min_prompts && warmupLatencies.length >= Math.min(wc.window, 2) && warmupCv !== null && warmupCv < wc.cv_threshold) {
        warmupConverged = true;
        break;
      }
    }
    const warmupPrompts = warmupLatencies.length;

    // ── measure ──────────────────────────────────────────────────────────────────────────────
    await enter('measure');
    const meter = await deps.openMeter({
      cudaVisibleDevices: spec.cuda_visible_devices,
      intervalMs: config.energy.sample_interval_ms,
      powerCsvPath: spec.power_csv_path,
    });
    meters.push(meter);
    const workload: Workload = {
      prompts: prompts.measured,
      max_new_tokens: config.max_new_tokens,
      concurrency: Math.max(1, config.batch_size),
      seed: config.seed,
      greedy: true,
      arrival: workloadArrival(config),
    };
    let done = 0;
    const requestsPath = join(spec.run_dir, 'requests.jsonl');
    const pendingLines: string[] = [];
    let rapl: RaplMeter | null = null;
    if (config.energy.rapl && deps.openRapl) {
      try {
        rapl = await deps.openRapl();
        if (rapl.unavailableReason === null) await rapl.start();
      } catch (err) {
        log('warn', `RAPL unavailable: ${(err as Error).message}`);
        rapl = null;
      }
    }
    // Backends that queue work asynchronously (torch) sync the device at the window edges so the
    // window holds exactly the measured work.
    await session.beginWindow?.();
    await meter.start();
    const cpuAtStart = process.cpuUsage();
    const wallAtStart = performance.now();
    const flushLive = (): void => {
      const samples = meter.drainLive().slice(-1000);
      const soFar = meter.energySoFarJ();
      if (samples.length === 0 && soFar === null) return; // nothing to show (no NVML)
      void send({
        v: PROTOCOL_VERSION,
        type: 'power',
        samples: samples.map((s) => ({ t_ms: s.t_ms, power_w: s.power_w, temp_c: s.temp_c })),
        energy_so_far_j: soFar,
      });
    };
    const live = setInterval(flushLive, Math.max(100, config.energy.live_interval_ms));
    let records: RequestRecord[];
    let window: EnergyWindow;
    let sessionPeakBytes: number | null = null;
    try {
      records = await session.run(
        workload,
        (r) => {
          done++;
          pendingLines.push(JSON.stringify(r));
          void send({ v: PROTOCOL_VERSION, type: 'progress', phase: 'measure', done, total: workload.prompts.length });
        },
        abort.signal,
      );
      const edge = await session.endWindow?.();
      sessionPeakBytes = edge?.memory_peak_bytes ?? null;
    } finally {
      clearInterval(live);
      flushLive(); // the last partial second, so short windows still show up live
      window = await meter.stop();
    }
    // NVML's per-device memory includes every process; the backend's own peak is the better number
    // when NVML has none (no GPU library, or a CPU run).
    if (window.memory_peak_bytes === null && sessionPeakBytes !== null) {
      window = { ...window, memory_peak_bytes: sessionPeakBytes };
    }
    {
      const cpu = process.cpuUsage(cpuAtStart);
      const cpuMs = (cpu.user + cpu.system) / 1000;
      const wallMs = performance.now() - wallAtStart;
      // For the benchmark: the child's own CPU (JS, meter thread, in-process engine) over the window.
      log('info', `measure window: child cpu_ms=${cpuMs.toFixed(1)} wall_ms=${wallMs.toFixed(1)}`);
    }
    let cpuEnergyJ: number | null = null;
    let cpuReason: string | null = config.energy.rapl ? 'RAPL could not be opened' : 'CPU energy not requested (energy.rapl: false)';
    if (rapl) {
      if (rapl.unavailableReason === null) {
        const rw = await rapl.stop();
        cpuEnergyJ = rw.cpu_energy_j;
        cpuReason = rw.unavailable_reason;
      } else cpuReason = rapl.unavailableReason;
      rapl.close();
    }
    await appendFile(requestsPath, pendingLines.join('\n') + (pendingLines.length ? '\n' : ''));
    checkAbort();
    const failed = records.filter((r) => r.error !== null);
    if (records.length > 0 && failed.length === records.length) {
      throw new ClassifiedError('BackendError', `every measured request failed; first error: ${failed[0]!.error}`);
    }
    if (failed.length > 0) log('warn', `${failed.length} of ${records.length} measured requests failed; first: ${failed[0]!.error}`);

    // ── teardown ─────────────────────────────────────────────────────────────────────────────
    await enter('teardown');
    await session.dispose();
    session = null;
    phases.teardown!.end_ms = performance.now();

    const modelHash = info.model_path ? await modelFileHash(info.model_path) : null;
    const baseMetrics = computeMetrics({
      records,
      window,
      baselinePowerW,
      baselineReused,
      cpuEnergyJ,
      cpuEnergyUnavailableReason: cpuReason,
      loadS,
      loadEnergyJ,
      warmupPrompts,
      warmupCv,
      warmupConverged,
    });
    const metrics = { ...baseMetrics, arrival: arrivalMetrics(config, records) };
    const flags = computeFlags({
      window,
      warmupConverged,
      warmupCv,
      cvThreshold: wc.cv_threshold,
      foreignProcesses,
      persistenceModeOff,
      builtinModel: info.model_builtin ? config.model : null,
      baselineStaleReason,
      failedRequests: failed.length,
    }).concat(arrivalFlags(metrics.arrival));
    const result: RunResult = {
      schema_version: RESULT_SCHEMA_VERSION,
      run_id: spec.run_id,
      config_hash: spec.config_hash,
      cycle: spec.cycle,
      attempt: spec.attempt,
      config: config as unknown as Record<string, unknown>,
      backend: { name: config.backend, version: info.backend_version },
      model: {
        id: config.model,
        path: info.model_path,
        size_bytes: modelHash?.size_bytes ?? null,
        file_hash: modelHash?.file_hash ?? null,
        builtin: info.model_builtin,
      },
      started_at: startedAt,
      ended_at: new Date().toISOString(),
      phases,
      environment: environmentSnapshot(spec, meter, gpuEnv, info.extra_versions ?? {}),
      metrics,
      flags,
      definitions: METRIC_DEFINITIONS,
      power_csv: window.samples > 0 ? spec.power_csv_path : null,
      dataset: { sha256: prompts.dataset_sha256, prompts: prompts.dataset_prompts },
    };
    const checked = runResultSchema.safeParse(result);
    if (!checked.success) {
      const issue = checked.error.issues[0]!;
      throw new ClassifiedError('InvalidResult', `result.json would not pass its schema: field ${issue.path.join('.')}: ${issue.message}`);
    }
    await writeFileAtomic(spec.result_path, JSON.stringify(checked.data, null, 2) + '\n');
    for (const m of meters) m.close();
    meters.length = 0;
    const acked = await link.reportResult(spec.result_path);
    if (!acked) return { exitCode: 1, result: checked.data, error: { type: 'ProcessCrash', message: 'the parent did not acknowledge the result', phase } };
    return { exitCode: 0, result: checked.data, error: null };
  } catch (err) {
    // Whatever the backend threw while being aborted, the cause is the parent's shutdown.
    const interrupted = deps.signal?.aborted === true;
    const type = interrupted ? 'UserInterrupted' : classifyError(err);
    const message = (interrupted ? `stopped by the parent: ${String(deps.signal?.reason ?? 'shutdown')}` : String((err as Error)?.message ?? err)).slice(0, MESSAGE_CAP);
    const stack = typeof (err as Error)?.stack === 'string' ? (err as Error).stack!.slice(0, STACK_CAP) : undefined;
    await send({ v: PROTOCOL_VERSION, type: 'error', error_type: type, message, phase, ...(stack ? { stack } : {}) });
    if (session) await session.dispose().catch(() => {});
    for (const m of meters) {
      try {
        m.close();
      } catch {
        // already closed
      }
    }
    return { exitCode: 1, result: null, error: { type, message, phase } };
  }
}
