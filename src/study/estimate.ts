// Pre-flight estimate: a pure function of (plan, history, environment figures passed in).
// Per run: start-up + baseline (shared across runs through reuse) + model load (by size) + warmup +
// n × max_new_tokens at the backend's conservative rate, with a low/high range; plus gaps and
// cooldowns between runs. With a run history (src/history) the phase times of the nearest match on
// this machine replace the heuristic's (src/study/estimate-history.ts) and say so (`source`).
// With `n_cycles: auto` each config's number of cycles is a range too: from the history's spread
// of the target metric, or a pilot assumption stated in the notes.
import { getBackendSpec } from '../backends/registry.ts';
import { bytesPerWeight } from '../backends/specs/common.ts';
import type { RunTimeouts, TimeoutOverride } from '../study-dir/schema.ts';
import { cyclesForCv } from '../results/stopping-rule.ts';
import type { HistoryRecord } from '../history/schema.ts';
import { describeMachine, type Machine } from '../history/machine.ts';
import { historyMatch, indexHistory, metricSpread, type HistoryMatch, type PhaseTimes } from './estimate-history.ts';
import { describeHalfWidth } from './target.ts';
import type { Estimate, EstimateSource, ExecutionConfig, ExpectedCount, ExperimentConfig, MemoryFit, PlannedConfig } from './types.ts';

/** Spawn, imports, IPC handshake, preflight and teardown of one run, outside the backend. Measured
 * on the quickstart (a loaded 2-core box): 0.2–0.3 s with the built dist/, about 1 s more when the
 * worker runs through tsx; the old 3 s was five times the common case. */
export const PROCESS_OVERHEAD_SECONDS = 1;
export const PROCESS_OVERHEAD_LOW_SECONDS = 0.3;
export const PROCESS_OVERHEAD_HIGH_SECONDS = 3;
/** Planning, creating the study dir and writing the summary: once per study. */
export const STUDY_OVERHEAD_SECONDS = 1;
/** `n_cycles: auto` without history: the per-cycle CV of the target metric assumed (stated on screen). */
export const PILOT_ASSUMED_CV = 0.03;
/** Nominal size of builtin:tiny-random (a few MB GGUF written on first use). */
export const TINY_RANDOM_MODEL_BYTES = 8 * 1024 * 1024;
/** CUDA context + allocator slack counted on top of weights and KV cache. */
export const RUNTIME_OVERHEAD_BYTES = 512 * 1024 * 1024;
/** Prompt length assumed for the KV-cache estimate (tokens). */
export const ASSUMED_PROMPT_TOKENS = 512;
/** KV-cache bytes per token per byte of fp16-equivalent weights: between GQA (8e-6) and MHA (4e-5) 7B models. */
export const KV_BYTES_PER_TOKEN_PER_WEIGHT_BYTE = 2e-5;
/** Above this many configs the estimate averages an even sample of configs. */
export const ESTIMATE_SAMPLE_LIMIT = 256;

/** What the estimate learns from: the run history (src/history/store.ts readHistory). */
export interface EstimateHistory {
  records: ReadonlyArray<HistoryRecord>;
  /** Why part of it could not be read (shown as notes); empty when all was read. */
  problems?: ReadonlyArray<string>;
}

export interface EstimatablePlan {
  config_count: number;
  cycles: number;
  execution: ExecutionConfig;
  configAt(i: number): PlannedConfig;
}

export interface EstimateEnvironment {
  now: Date;
  /** Free GPU memory, null = unknown (with `gpuFreeMemoryReason`). */
  gpuFreeMemoryBytes: number | null;
  gpuFreeMemoryReason: string;
  /** Size of a config's model in bytes, null when not known here (src/backends/model-size.ts). */
  modelBytes(config: ExperimentConfig): number | null;
  /** The machine the plan runs on (src/history/machine.ts currentMachine); null/absent = unknown:
   * history is not matched and a baseline is assumed. */
  machine?: Machine | null;
}

export interface RunDuration {
  run_seconds: number;
  low_seconds: number;
  high_seconds: number;
}

function warmupPrompts(config: ExperimentConfig): { low: number; mid: number; high: number } {
  const w = config.warmup;
  if (w.max_prompts === 0) return { low: 0, mid: 0, high: 0 };
  const low = Math.min(w.max_prompts, Math.max(w.min_prompts, w.window));
  const mid = Math.min(w.max_prompts, Math.max(low, w.window * 2));
  return { low, mid, high: w.max_prompts };
}

interface HeuristicPhases {
  mid: PhaseTimes;
  low: PhaseTimes;
  high: PhaseTimes;
}

/** Heuristic phase times of one run of `config` (baseline apart). */
function heuristicPhases(config: ExperimentConfig, modelBytes: number | null): HeuristicPhases {
  const spec = getBackendSpec(config.backend);
  const tps = spec ? Math.max(1e-3, spec.estimateTokensPerSecond(config)) : 10;
  const load = spec ? spec.estimateLoadSeconds(config, modelBytes) : 60;
  const tokenSeconds = config.max_new_tokens / tps;
  const warm = warmupPrompts(config);
  const measure = config.n * tokenSeconds;
  return {
    mid: { startup: PROCESS_OVERHEAD_SECONDS, load, warmup: warm.mid * tokenSeconds, measure },
    low: { startup: PROCESS_OVERHEAD_LOW_SECONDS, load: load * 0.5, warmup: warm.low * tokenSeconds * 0.5, measure: measure * 0.5 },
    high: { startup: PROCESS_OVERHEAD_HIGH_SECONDS, load: load * 2, warmup: warm.high * tokenSeconds * 2, measure: measure * 2 },
  };
}

const sumPhases = (p: PhaseTimes) => p.startup + p.load + p.warmup + p.measure;

/** Heuristic duration of one run of `config` that measures its own baseline (no history). */
export function runDuration(config: ExperimentConfig, modelBytes: number | null): RunDuration {
  const h = heuristicPhases(config, modelBytes);
  const baseline = config.baseline.enabled ? config.baseline.duration_seconds : 0;
  return { run_seconds: sumPhases(h.mid) + baseline, low_seconds: sumPhases(h.low) + baseline, high_seconds: sumPhases(h.high) + baseline };
}

/**
 * Default total timeout of one run when `execution.experiment_timeout_seconds` is null: three
 * times the pessimistic estimate (load scales with model size) plus two minutes, at least 5 min.
 */
export function defaultRunTimeoutSeconds(config: ExperimentConfig, modelBytes: number | null): number {
  return Math.ceil(Math.max(300, 120 + 3 * runDuration(config, modelBytes).high_seconds));
}

/**
 * The one answer to "what timeouts does this run get": a `llem resume --experiment-timeout /
 * --stall-timeout` override, else the study's execution settings, else (total only) the
 * model-size aware default. `llem plan` prints it, the local runner and the Slurm task run under
 * it, and each attempt records it. `modelBytes` comes from src/backends/model-size.ts.
 */
export function runTimeouts(
  execution: Pick<ExecutionConfig, 'experiment_timeout_seconds' | 'stall_timeout_seconds'>,
  config: ExperimentConfig,
  modelBytes: number | null,
  override?: Pick<TimeoutOverride, 'experiment_timeout_seconds' | 'stall_timeout_seconds'> | null,
): RunTimeouts {
  const total = override?.experiment_timeout_seconds ?? execution.experiment_timeout_seconds ?? defaultRunTimeoutSeconds(config, modelBytes);
  const stall = override?.stall_timeout_seconds ?? execution.stall_timeout_seconds;
  return { timeout_seconds: total, stall_timeout_seconds: stall > 0 ? stall : null };
}

export interface MemoryEstimate {
  memory_need_bytes: number | null;
  memory_free_bytes: number | null;
  memory_fit: MemoryFit;
  memory_reason: string;
}

/** GPU memory need (weights + KV cache + runtime) against free memory, when both are knowable. */
export function memoryEstimate(config: ExperimentConfig, modelBytes: number | null, env: Pick<EstimateEnvironment, 'gpuFreeMemoryBytes' | 'gpuFreeMemoryReason'>): MemoryEstimate {
  const free = env.gpuFreeMemoryBytes;
  const unknown = (reason: string): MemoryEstimate => ({ memory_need_bytes: null, memory_free_bytes: free, memory_fit: 'unknown', memory_reason: reason });
  const plan = getBackendSpec(config.backend)?.memory(config) ?? { kind: 'weights' };
  if (plan.kind === 'unplanned') return unknown(plan.reason);
  if (modelBytes === null) return unknown('model size not known here (missing path, or a hub id with no size in its name and no local cache)');
  const fp16Equivalent = modelBytes * (2 / bytesPerWeight(config.precision === 'auto' ? 'fp16' : config.precision));
  const kvTokens = config.batch_size * (ASSUMED_PROMPT_TOKENS + config.max_new_tokens);
  const kv = kvTokens * fp16Equivalent * KV_BYTES_PER_TOKEN_PER_WEIGHT_BYTE;
  const need = Math.ceil(modelBytes + kv + RUNTIME_OVERHEAD_BYTES);
  const note = plan.note ? ` (${plan.note})` : '';
  if (free === null) return { memory_need_bytes: need, memory_free_bytes: null, memory_fit: 'unknown', memory_reason: env.gpuFreeMemoryReason };
  const fit: MemoryFit = need <= free * 0.85 ? 'fits' : need <= free ? 'tight' : 'wont_fit';
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  return { memory_need_bytes: need, memory_free_bytes: free, memory_fit: fit, memory_reason: `needs ~${gib(need)} of ${gib(free)} free${note}` };
}

/** Seconds spent between runs: config gaps, cycle gaps at the boundaries of `cycles` passes (not
 * sequential), cooldown waits. */
export function gapSeconds(runs: number, cycles: number, exec: ExecutionConfig): RunDuration {
  if (runs <= 1) return { run_seconds: 0, low_seconds: 0, high_seconds: 0 };
  const cycleBoundaries = exec.cycle_order === 'sequential' ? 0 : Math.max(0, Math.min(cycles - 1, runs - 1));
  const gaps = (runs - 1 - cycleBoundaries) * exec.config_gap_seconds + cycleBoundaries * exec.cycle_gap_seconds;
  const coolMax = exec.cooldown ? exec.cooldown.max_wait_seconds * (runs - 1) : 0;
  return { run_seconds: gaps + coolMax / 4, low_seconds: gaps, high_seconds: gaps + coolMax };
}

/** Seconds of baseline per run: a measured baseline is reused for `reuse_seconds`, so a study
 * pays it about once per that many seconds (the worker re-measures when the GPU temperature moved,
 * hence the range up to every run). Nothing without a GPU: the worker skips it. */
function baselineShare(config: ExperimentConfig, machine: Machine | null | undefined, runSeconds: number, gapPerRun: number, learned: HistoryMatch['baseline']): RunDuration {
  const duration = config.baseline.enabled ? config.baseline.duration_seconds : 0;
  if (duration <= 0 || machine?.kind === 'cpu') return { run_seconds: 0, low_seconds: 0, high_seconds: 0 };
  if (learned) {
    const mid = (learned.seconds || duration) * learned.measuredShare;
    return { run_seconds: mid, low_seconds: mid * 0.5, high_seconds: duration };
  }
  const reuse = config.baseline.reuse_seconds;
  const share = reuse > 0 ? Math.min(1, (runSeconds + gapPerRun + duration) / reuse) : 1;
  return { run_seconds: (duration * (share + 1)) / 2, low_seconds: duration * share, high_seconds: duration };
}

interface CycleCount extends ExpectedCount {
  basis: 'fixed' | 'history' | 'pilot';
}

function cyclesOf(exec: ExecutionConfig, match: HistoryMatch | null): CycleCount {
  const t = exec.target;
  if (!t) return { expected: exec.n_cycles, low: exec.n_cycles, high: exec.n_cycles, basis: 'fixed' };
  const spread = metricSpread(match, t.metric);
  const rel = t.ci_half_width.kind === 'relative' ? t.ci_half_width.value : spread ? t.ci_half_width.value / Math.abs(spread.mean) : null;
  if (spread && rel !== null) {
    const n = (cv: number) => cyclesForCv(cv, rel, t.min_cycles, t.max_cycles);
    return { expected: n(spread.cv), low: n(spread.cv * 0.6), high: n(spread.cv * 1.6), basis: 'history' };
  }
  const expected = rel !== null ? cyclesForCv(PILOT_ASSUMED_CV, rel, t.min_cycles, t.max_cycles) : Math.ceil((t.min_cycles + t.max_cycles) / 2);
  return { expected, low: t.min_cycles, high: t.max_cycles, basis: 'pilot' };
}

/** The estimate of a plan. Pure: same (plan, history, env) → same estimate. */
export function estimatePlan(plan: EstimatablePlan, history: EstimateHistory | undefined, env: EstimateEnvironment): Estimate {
  const exec = plan.execution;
  const index = indexHistory(history?.records ?? [], env.machine ?? null);
  const C = plan.config_count;
  const sampled = C > ESTIMATE_SAMPLE_LIMIT;
  const indices = sampled ? Array.from({ length: ESTIMATE_SAMPLE_LIMIT }, (_, j) => Math.floor((j * C) / ESTIMATE_SAMPLE_LIMIT)) : Array.from({ length: C }, (_, j) => j);
  const perConfig: Estimate['per_config'] = [];
  const gapPerRun = exec.config_gap_seconds;
  let sum = 0;
  let low = 0;
  let high = 0;
  let runsExpected = 0;
  let runsLow = 0;
  let runsHigh = 0;
  let roundsExpected = 0;
  let roundsHigh = 0;
  let fromHistory = 0;
  const cycleBasis = { fixed: 0, history: 0, pilot: 0 };
  for (const i of indices) {
    const pc = plan.configAt(i);
    const bytes = env.modelBytes(pc.config);
    const heuristic = heuristicPhases(pc.config, bytes);
    const match = historyMatch(index, pc.config, pc.config_hash, warmupPrompts(pc.config).mid);
    let mid = 0;
    let lo = 0;
    let hi = 0;
    for (const phase of ['startup', 'load', 'warmup', 'measure'] as const) {
      const learned = match?.phases[phase] ?? null;
      if (learned !== null) {
        mid += learned;
        lo += learned * match!.lowFactor;
        hi += learned * match!.highFactor;
      } else {
        mid += heuristic.mid[phase];
        lo += heuristic.low[phase];
        hi += heuristic.high[phase];
      }
    }
    const base = baselineShare(pc.config, env.machine, mid, gapPerRun, match?.baseline ?? null);
    const d = { run_seconds: mid + base.run_seconds, low_seconds: lo + base.low_seconds, high_seconds: hi + base.high_seconds };
    const cycles = cyclesOf(exec, match);
    cycleBasis[cycles.basis]++;
    if (match) fromHistory++;
    sum += d.run_seconds * cycles.expected;
    low += d.low_seconds * cycles.low;
    high += d.high_seconds * cycles.high;
    runsExpected += cycles.expected;
    runsLow += cycles.low;
    runsHigh += cycles.high;
    roundsExpected = Math.max(roundsExpected, cycles.expected);
    roundsHigh = Math.max(roundsHigh, cycles.high);
    if (!sampled) {
      perConfig.push({
        config_hash: pc.config_hash,
        ...d,
        timeout_seconds: runTimeouts(plan.execution, pc.config, bytes).timeout_seconds,
        ...memoryEstimate(pc.config, bytes, env),
        source: match ? 'history' : 'heuristic',
        match: match?.label ?? null,
        cycles: { expected: cycles.expected, low: cycles.low, high: cycles.high },
      });
    }
  }
  const scale = indices.length ? C / indices.length : 0;
  const runs: ExpectedCount = { expected: Math.round(runsExpected * scale), low: Math.round(runsLow * scale), high: Math.round(runsHigh * scale) };
  const gaps = gapSeconds(runs.expected, roundsExpected, exec);
  const gapsLow = gapSeconds(runs.low, exec.target ? exec.target.min_cycles : roundsExpected, exec);
  const gapsHigh = gapSeconds(runs.high, roundsHigh, exec);
  const total = sum * scale + gaps.run_seconds + STUDY_OVERHEAD_SECONDS;
  const source: EstimateSource = fromHistory === 0 ? 'heuristic' : fromHistory === indices.length ? 'history' : 'mixed';
  return {
    total_seconds: Math.round(total),
    low_seconds: Math.round(low * scale + gapsLow.low_seconds + STUDY_OVERHEAD_SECONDS),
    high_seconds: Math.round(high * scale + gapsHigh.high_seconds + STUDY_OVERHEAD_SECONDS),
    finish_at: new Date(env.now.getTime() + total * 1000).toISOString(),
    per_config: perConfig,
    source,
    runs,
    notes: estimateNotes(exec, env, history, { fromHistory, sampled: indices.length, cycleBasis }),
  };
}

function estimateNotes(
  exec: ExecutionConfig,
  env: EstimateEnvironment,
  history: EstimateHistory | undefined,
  counts: { fromHistory: number; sampled: number; cycleBasis: Record<CycleCount['basis'], number> },
): string[] {
  const notes: string[] = [];
  const machine = env.machine ?? null;
  const configs = (k: number) => `${k} config${k === 1 ? '' : 's'}`;
  if (!machine) notes.push('machine unknown: run history not used');
  else if (counts.fromHistory === 0) notes.push(`no run history matches this machine (${describeMachine(machine)}): heuristic durations`);
  else if (counts.fromHistory < counts.sampled) notes.push(`run history of this machine (${describeMachine(machine)}) for ${configs(counts.fromHistory)} of ${counts.sampled}; the rest by heuristic`);
  else notes.push(`durations from the run history of this machine (${describeMachine(machine)})`);
  for (const p of (history?.problems ?? []).slice(0, 3)) notes.push(`history: ${p}`);
  if (machine?.kind === 'cpu') notes.push('no GPU: the worker skips the idle baseline, so none is counted');
  const t = exec.target;
  if (t) {
    const rule = `n_cycles: auto, ${t.min_cycles}–${t.max_cycles} cycles per config until the interval of ${t.metric} is within ${describeHalfWidth(t.ci_half_width)}`;
    const parts: string[] = [];
    if (counts.cycleBasis.history) parts.push(`${configs(counts.cycleBasis.history)} from the spread in the history`);
    if (counts.cycleBasis.pilot) {
      parts.push(
        t.ci_half_width.kind === 'relative'
          ? `${configs(counts.cycleBasis.pilot)} from a pilot assumption of a ${PILOT_ASSUMED_CV * 100} % per-cycle CV (any count from ${t.min_cycles} to ${t.max_cycles} is possible)`
          : `${configs(counts.cycleBasis.pilot)} from a pilot assumption halfway between ${t.min_cycles} and ${t.max_cycles} (an absolute target needs the mean from history)`,
      );
    }
    // what the count rests on first: the full-screen pre-flight cuts each note at the width
    notes.push(`expected cycles: ${parts.join('; ')} — ${rule}`);
    if (t.decide === 'ranking') notes.push('decide: ranking can stop configs earlier than the target alone; not counted in the estimate');
  }
  return notes;
}
