// The phases of one run inside the child, in order: preflight → baseline → load → warmup →
// measure → teardown. Each takes the run's state and what earlier phases produced and returns what
// it measured; runChild (child.ts) calls them in order and builds the result.
import { readFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { PROTOCOL_VERSION, type ChildMessage, type Phase, type RunSpec } from '../runner/protocol.ts';
import type { Backend, BackendSession, LoadInfo, Prompt, RequestRecord, Workload } from '../backends/types.ts';
import type { EnergyMeter, EnergyWindow, GpuEnvironment, OpenMeterOptions } from '../measure/types.ts';
import type { RaplMeter } from '../measure/rapl.ts';
import type { BaselineProvenance, ForeignProcessCheck } from '../results/schema.ts';
import type { ExperimentConfig } from '../study/types.ts';
import { ClassifiedError } from '../backends/errors.ts';
import { buildRunPrompts, type RunPrompts } from './workload.ts';
import { workloadArrival } from './arrival-metrics.ts';
import { baselineReuseDecision, coefficientOfVariation, type BaselineRecord } from './metrics.ts';
import { writeFileAtomic } from './files.ts';
import type { LogLevel } from './log.ts';
import { gpuSettingsKey, runGpuSettingsRecord, type GpuSettingsRecord, type GpuSettingsSnapshot } from '../gpu-settings/record.ts';

/** What the phases use from outside: meters, the backend loader, the parent's shutdown. */
export interface PhaseDeps {
  openMeter(opts: OpenMeterOptions): Promise<EnergyMeter>;
  loadBackend(name: string): Promise<Backend>;
  /** CPU package energy (RAPL), used when config.energy.rapl is set. */
  openRapl?: () => Promise<RaplMeter>;
  /** Aborted when the parent asks for a shutdown. */
  signal?: AbortSignal;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/** What one run carries from phase to phase. */
export interface RunState {
  spec: RunSpec;
  config: ExperimentConfig;
  deps: PhaseDeps;
  phases: Record<string, { start_ms: number; end_ms: number }>;
  phase: Phase | null;
  session: BackendSession | null;
  meters: EnergyMeter[];
  /** Aborted with the parent's shutdown; handed to the backend. */
  abort: AbortController;
  send(msg: ChildMessage): Promise<void>;
  log(level: LogLevel, message: string): void;
}

export interface Preflight {
  prompts: RunPrompts;
  backend: Backend;
  auxMeter: EnergyMeter;
  gpuEnv: GpuEnvironment | null;
  foreign: ForeignProcessCheck | null;
  persistenceModeOff: string[];
}

export interface BaselineOutcome {
  powerW: number | null;
  reused: boolean | null;
  staleReason: string | null;
  provenance: BaselineProvenance;
}

export interface LoadOutcome {
  info: LoadInfo;
  loadS: number;
  loadEnergyJ: number | null;
}

export interface WarmupOutcome {
  prompts: number;
  cv: number | null;
  converged: boolean | null;
  notRunReason: string | null;
}

export interface MeasureOutcome {
  meter: EnergyMeter;
  records: RequestRecord[];
  failed: RequestRecord[];
  window: EnergyWindow;
  cpuEnergyJ: number | null;
  cpuReason: string | null;
  foreignStart: ForeignProcessCheck | null;
  foreignStop: ForeignProcessCheck | null;
  /** The GPU settings the run ran under and whether one drifted (null: nothing known). */
  gpuSettings: GpuSettingsRecord | null;
}

async function enter(run: RunState, p: Phase): Promise<void> {
  const now = performance.now();
  if (run.phase) run.phases[run.phase]!.end_ms = now;
  run.phase = p;
  run.phases[p] = { start_ms: now, end_ms: now };
  await run.send({ v: PROTOCOL_VERSION, type: 'phase', phase: p, t_ms: now });
}

function checkAbort(run: RunState): void {
  const signal = run.deps.signal;
  if (signal?.aborted) throw new ClassifiedError('UserInterrupted', `stopped by the parent: ${String(signal.reason ?? 'shutdown')}`);
}

/** Foreign processes now, or null (with a log line) when the meter cannot tell. */
async function foreignCheck(run: RunState, meter: EnergyMeter, where: string): Promise<ForeignProcessCheck | null> {
  if (meter.unavailableReason !== null || !meter.foreignProcesses) return null;
  try {
    return await meter.foreignProcesses();
  } catch (err) {
    run.log('warn', `foreign GPU process check at ${where} failed: ${(err as Error).message}`);
    return null;
  }
}

export async function preflightPhase(run: RunState): Promise<Preflight> {
  await enter(run, 'preflight');
  const { spec, config, deps } = run;
  const prompts = await buildRunPrompts(config.dataset, config.seed, config.n, config.warmup.max_prompts);
  const backend = await deps.loadBackend(config.backend);
  const auxMeter = await deps.openMeter({ cudaVisibleDevices: spec.cuda_visible_devices, intervalMs: config.energy.sample_interval_ms });
  run.meters.push(auxMeter);
  if (auxMeter.unavailableReason !== null) run.log('warn', `energy unavailable: ${auxMeter.unavailableReason}`);
  for (const note of auxMeter.notes ?? []) run.log('info', note);
  // Environment snapshot per run: driver, power limits, persistence, MIG, foreign processes.
  let gpuEnv: GpuEnvironment | null = null;
  if (auxMeter.unavailableReason === null && auxMeter.environment) {
    try {
      gpuEnv = await auxMeter.environment();
    } catch (err) {
      run.log('warn', `GPU environment snapshot failed: ${(err as Error).message}`);
    }
  }
  // Before the model loads, every process on the GPU is someone else's, and the utilisation is theirs.
  const foreign = await foreignCheck(run, auxMeter, 'preflight');
  if (foreign && foreign.processes.length > 0) {
    run.log('warn', `${foreign.processes.length} foreign process(es) on the measured GPUs at preflight; the result will be flagged`);
  }
  const persistenceModeOff = (gpuEnv?.gpus ?? []).filter((g) => g.persistence_mode === false).map((g) => `GPU ${g.index} (${g.uuid})`);
  checkAbort(run);
  return { prompts, backend, auxMeter, gpuEnv, foreign, persistenceModeOff };
}

const provenance = (over: Partial<BaselineProvenance> & Pick<BaselineProvenance, 'source' | 'reason'>): BaselineProvenance => ({
  power_w: null,
  method: null,
  duration_s: null,
  measured_at: null,
  source_run_id: null,
  age_s: null,
  temperature_c: null,
  current_temperature_c: null,
  ...over,
});

export async function baselinePhase(run: RunState, pre: Preflight): Promise<BaselineOutcome> {
  await enter(run, 'baseline');
  const { spec, config } = run;
  const meter = pre.auxMeter;
  if (!config.baseline.enabled) {
    return { powerW: null, reused: null, staleReason: null, provenance: provenance({ source: 'disabled', reason: 'baseline.enabled is false' }) };
  }
  if (meter.unavailableReason !== null) {
    return { powerW: null, reused: null, staleReason: null, provenance: provenance({ source: 'unavailable', reason: meter.unavailableReason }) };
  }
  // One stored baseline per GPU selection (parallel per-GPU runs measure different devices) and
  // GPU settings (a clock lock changes idle power: a baseline under another lock is not this one's).
  const key = `${spec.cuda_visible_devices ?? 'all'}${gpuSettingsKey(spec.gpu_settings ?? null)}`.replace(/[^A-Za-z0-9_.-]/g, '_') || 'none';
  const path = join(spec.study_dir, `baseline-${key}.json`);
  let prev: BaselineRecord | null = null;
  try {
    prev = JSON.parse(await readFile(path, 'utf8')) as BaselineRecord;
  } catch {
    // none yet
  }
  const temps = (pre.gpuEnv?.gpus ?? []).map((g) => g.temperature_c).filter((t): t is number => t !== null);
  const currentTempC = temps.length ? Math.max(...temps) : null;
  const decision = baselineReuseDecision(prev, Date.now(), config.baseline.reuse_seconds, currentTempC);
  run.log('info', `baseline: ${decision.reuse ? 'reused' : 'measured'} (${decision.why})`);
  if (decision.reuse && prev) {
    const out = provenance({
      source: 'reused',
      reason: decision.why,
      power_w: prev.power_w,
      method: prev.method ?? null,
      duration_s: prev.duration_s ?? null,
      measured_at: new Date(prev.measured_at_ms).toISOString(),
      source_run_id: prev.run_id ?? null,
      age_s: decision.ageS,
      temperature_c: prev.temperature_c,
      current_temperature_c: currentTempC,
    });
    checkAbort(run);
    return { powerW: prev.power_w, reused: true, staleReason: decision.staleReason, provenance: out };
  }
  await meter.start();
  await sleep(config.baseline.duration_seconds * 1000, run.deps.signal);
  const w = await meter.stop();
  // The counter's energy over the window is what the measured window's energy is made of; polled
  // power (a moving average on recent GPUs) is the fallback, not the first choice.
  const byCounter = w.energy_method === 'counter' && w.energy_j !== null && w.window_s > 0;
  const powerW = byCounter ? w.energy_j! / w.window_s : (w.power_mean_w ?? (w.energy_j !== null && w.window_s > 0 ? w.energy_j / w.window_s : null));
  const method = powerW === null ? null : byCounter ? 'counter' : 'polled';
  const measuredAtMs = Date.now();
  if (powerW !== null && method !== null) {
    const rec: BaselineRecord = {
      measured_at_ms: measuredAtMs, power_w: powerW, temperature_c: w.temperature_end_c, run_id: spec.run_id, method, duration_s: w.window_s,
    };
    await writeFileAtomic(path, JSON.stringify(rec)).catch(() => {});
  }
  const out = provenance({
    source: 'measured',
    reason: powerW === null ? `measured, but the baseline window gave no power (${w.unavailable_reason ?? 'no samples'})` : decision.why,
    power_w: powerW,
    method,
    duration_s: w.window_s,
    measured_at: new Date(measuredAtMs).toISOString(),
    source_run_id: spec.run_id,
    age_s: 0,
    temperature_c: w.temperature_end_c,
    current_temperature_c: currentTempC,
  });
  checkAbort(run);
  return { powerW, reused: false, staleReason: null, provenance: out };
}

export async function loadPhase(run: RunState, pre: Preflight): Promise<LoadOutcome> {
  await enter(run, 'load');
  const loadStart = performance.now();
  const meter = pre.auxMeter;
  const meterOn = meter.unavailableReason === null;
  if (meterOn) await meter.start();
  let info: LoadInfo;
  let loadEnergyJ: number | null = null;
  try {
    const loaded = await pre.backend.load(run.config, {
      runDir: run.spec.run_dir,
      signal: run.abort.signal,
      log: (line) => run.log('debug', line),
    });
    run.session = loaded.session;
    info = loaded.info;
  } finally {
    if (meterOn) loadEnergyJ = (await meter.stop()).energy_j;
  }
  const loadS = (performance.now() - loadStart) / 1000;
  checkAbort(run);
  return { info, loadS, loadEnergyJ };
}

export async function warmupPhase(run: RunState, pre: Preflight): Promise<WarmupOutcome> {
  await enter(run, 'warmup');
  const { config } = run;
  const session = run.session!;
  const wc = config.warmup;
  if (session.handlesWarmup) {
    const reason = `${config.backend} warms up on its own: the worker runs no warmup prompts`;
    run.log('info', reason);
    return { prompts: 0, cv: null, converged: null, notRunReason: reason };
  }
  if (wc.max_prompts === 0 || pre.prompts.warmup.length === 0) {
    return { prompts: 0, cv: null, converged: null, notRunReason: 'warmup.max_prompts is 0: no warmup ran' };
  }
  const latencies: number[] = [];
  let cv: number | null = null;
  for (let i = 0; i < pre.prompts.warmup.length; i++) {
    checkAbort(run);
    const recs = await session.run(
      { prompts: [pre.prompts.warmup[i]!], max_new_tokens: config.max_new_tokens, concurrency: 1, seed: config.seed, greedy: true },
      undefined,
      run.abort.signal,
    );
    const r = recs[0];
    if (r && r.error === null) latencies.push(r.end_ms - r.start_ms);
    else if (r?.error) run.log('warn', `warmup request failed: ${r.error}`);
    cv = coefficientOfVariation(latencies, wc.window);
    await run.send({ v: PROTOCOL_VERSION, type: 'progress', phase: 'warmup', done: i + 1, total: pre.prompts.warmup.length, warmup_cv: cv });
    // Converged only over a full window: two equal latencies are not a steady state.
    if (i + 1 >= wc.min_prompts && latencies.length >= wc.window && cv !== null && cv < wc.cv_threshold) {
      return { prompts: latencies.length, cv, converged: true, notRunReason: null };
    }
  }
  return { prompts: latencies.length, cv, converged: false, notRunReason: null };
}

export async function measurePhase(run: RunState, pre: Preflight): Promise<MeasureOutcome> {
  await enter(run, 'measure');
  const { spec, config, deps } = run;
  const session = run.session!;
  const meter = await deps.openMeter({
    cudaVisibleDevices: spec.cuda_visible_devices,
    intervalMs: config.energy.sample_interval_ms,
    powerCsvPath: spec.power_csv_path,
  });
  run.meters.push(meter);
  const workload: Workload = {
    prompts: pre.prompts.measured,
    max_new_tokens: config.max_new_tokens,
    concurrency: Math.max(1, config.batch_size),
    seed: config.seed,
    greedy: true,
    arrival: workloadArrival(config),
  };
  let done = 0;
  const pendingLines: string[] = [];
  let rapl: RaplMeter | null = null;
  if (config.energy.rapl && deps.openRapl) {
    try {
      rapl = await deps.openRapl();
      if (rapl.unavailableReason === null) await rapl.start();
    } catch (err) {
      run.log('warn', `RAPL unavailable: ${(err as Error).message}`);
      rapl = null;
    }
  }
  const foreignStart = await foreignCheck(run, meter, 'the window start');
  // Outside the window on both sides: a handful of NVML reads that must not count as its energy.
  const settingsStart = settingsSnapshot(run, meter, 'the window start');
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
    void run.send({
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
        void run.send({ v: PROTOCOL_VERSION, type: 'progress', phase: 'measure', done, total: workload.prompts.length });
      },
      run.abort.signal,
    );
    const edge = await session.endWindow?.();
    sessionPeakBytes = edge?.memory_peak_bytes ?? null;
  } finally {
    clearInterval(live);
    flushLive(); // the last partial second, so short windows still show up live
    window = await meter.stop();
  }
  const settingsStop = settingsSnapshot(run, meter, 'the window stop');
  const foreignStop = await foreignCheck(run, meter, 'the window stop');
  const gpuSettings = runGpuSettingsRecord({
    applied: spec.gpu_settings ?? null,
    start: settingsStart.snapshot,
    stop: settingsStop.snapshot,
    requested: config.gpu,
    unreadable: settingsStart.why ?? settingsStop.why,
  });
  if (gpuSettings?.gpu_setting_drift) run.log('warn', `GPU settings drifted: ${gpuSettings.drift_reasons.join('; ')}`);
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
    run.log('info', `measure window: child cpu_ms=${cpuMs.toFixed(1)} wall_ms=${wallMs.toFixed(1)}`);
  }
  for (const e of window.edges?.sampler_errors ?? []) run.log('warn', `sampler: ${e}`);
  const fallback = window.flags.find((f) => f.code === 'energy_method_fallback');
  if (fallback) run.log('warn', fallback.message);
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
  await appendFile(join(spec.run_dir, 'requests.jsonl'), pendingLines.join('\n') + (pendingLines.length ? '\n' : ''));
  checkAbort(run);
  const failed = records.filter((r) => r.error !== null);
  if (records.length > 0 && failed.length === records.length) {
    throw new ClassifiedError('BackendError', `every measured request failed; first error: ${failed[0]!.error}`);
  }
  if (failed.length > 0) run.log('warn', `${failed.length} of ${records.length} measured requests failed; first: ${failed[0]!.error}`);
  return { meter, records, failed, window, cpuEnergyJ, cpuReason, foreignStart, foreignStop, gpuSettings };
}

/** The GPU settings now (the power limit, clocks), or why they could not be read. */
function settingsSnapshot(run: RunState, meter: EnergyMeter, where: string): { snapshot: GpuSettingsSnapshot[] | null; why: string | null } {
  if (meter.unavailableReason !== null) return { snapshot: null, why: meter.unavailableReason };
  if (!meter.gpuSettings) return { snapshot: null, why: 'the meter cannot read GPU settings' };
  try {
    return { snapshot: meter.gpuSettings(), why: null };
  } catch (err) {
    run.log('warn', `GPU settings could not be read at ${where}: ${(err as Error).message}`);
    return { snapshot: null, why: `not readable at ${where}: ${(err as Error).message}` };
  }
}

export async function teardownPhase(run: RunState): Promise<void> {
  await enter(run, 'teardown');
  await run.session?.dispose();
  run.session = null;
  run.phases.teardown!.end_ms = performance.now();
}
