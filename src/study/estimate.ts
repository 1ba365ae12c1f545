// Pre-flight estimate: a pure function of (plan, history, environment figures passed in).
// Per run: process overhead + baseline + model load (by size) + warmup + n × max_new_tokens at the
// backend's conservative rate, with a low/high range; plus gaps and cooldowns between runs.
import { getBackendSpec } from '../backends/registry.ts';
import { bytesPerWeight } from '../backends/specs/common.ts';
import type { RunTimeouts, TimeoutOverride } from '../study-dir/schema.ts';
import type { Estimate, ExecutionConfig, ExperimentConfig, MemoryFit, PlannedConfig } from './types.ts';

/** Node + tsx start, IPC handshake, teardown: per run, outside the backend. */
export const PROCESS_OVERHEAD_SECONDS = 3;
/** CUDA context + allocator slack counted on top of weights and KV cache. */
export const RUNTIME_OVERHEAD_BYTES = 512 * 1024 * 1024;
/** Prompt length assumed for the KV-cache estimate (tokens). */
export const ASSUMED_PROMPT_TOKENS = 512;
/** KV-cache bytes per token per byte of fp16-equivalent weights: between GQA (8e-6) and MHA (4e-5) 7B models. */
export const KV_BYTES_PER_TOKEN_PER_WEIGHT_BYTE = 2e-5;
/** Above this many configs the estimate averages an even sample of configs. */
export const ESTIMATE_SAMPLE_LIMIT = 256;

export interface HistoryRun {
  config_hash: string;
  backend: string;
  model: string;
  /** Wall time of the finished run (spawn to exit). */
  wall_seconds: number;
}

/** What the estimate learns from: finished runs of earlier studies (empty today). */
export interface EstimateHistory {
  runs: HistoryRun[];
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

/** Heuristic duration of one run of `config` (no history). */
export function runDuration(config: ExperimentConfig, modelBytes: number | null): RunDuration {
  const spec = getBackendSpec(config.backend);
  const tps = spec ? Math.max(1e-3, spec.estimateTokensPerSecond(config)) : 10;
  const load = spec ? spec.estimateLoadSeconds(config, modelBytes) : 60;
  const baseline = config.baseline.enabled ? config.baseline.duration_seconds : 0;
  const tokenSeconds = config.max_new_tokens / tps;
  const warm = warmupPrompts(config);
  const measure = config.n * tokenSeconds;
  return {
    run_seconds: PROCESS_OVERHEAD_SECONDS + baseline + load + warm.mid * tokenSeconds + measure,
    low_seconds: PROCESS_OVERHEAD_SECONDS + baseline + load * 0.5 + (warm.low * tokenSeconds + measure) * 0.5,
    high_seconds: PROCESS_OVERHEAD_SECONDS * 1.5 + baseline + load * 2 + (warm.high * tokenSeconds + measure) * 2,
  };
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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
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

/** Seconds spent between runs: config gaps, true cycle gaps, cooldown waits. */
export function gapSeconds(configCount: number, exec: ExecutionConfig): RunDuration {
  const runs = configCount * exec.n_cycles;
  if (runs <= 1) return { run_seconds: 0, low_seconds: 0, high_seconds: 0 };
  const cycleBoundaries = exec.cycle_order === 'sequential' ? 0 : exec.n_cycles - 1;
  const gaps = (runs - 1 - cycleBoundaries) * exec.config_gap_seconds + cycleBoundaries * exec.cycle_gap_seconds;
  const coolMax = exec.cooldown ? exec.cooldown.max_wait_seconds * (runs - 1) : 0;
  return { run_seconds: gaps + coolMax / 4, low_seconds: gaps, high_seconds: gaps + coolMax };
}

/** The estimate of a plan. Pure: same (plan, history, env) → same estimate. */
export function estimatePlan(plan: EstimatablePlan, history: EstimateHistory | undefined, env: EstimateEnvironment): Estimate {
  const byHash = new Map<string, number[]>();
  for (const r of history?.runs ?? []) {
    const list = byHash.get(r.config_hash) ?? [];
    list.push(r.wall_seconds);
    byHash.set(r.config_hash, list);
  }
  const C = plan.config_count;
  const sampled = C > ESTIMATE_SAMPLE_LIMIT;
  const indices = sampled ? Array.from({ length: ESTIMATE_SAMPLE_LIMIT }, (_, j) => Math.floor((j * C) / ESTIMATE_SAMPLE_LIMIT)) : Array.from({ length: C }, (_, j) => j);
  const perConfig: Estimate['per_config'] = [];
  let sum = 0;
  let low = 0;
  let high = 0;
  for (const i of indices) {
    const pc = plan.configAt(i);
    const bytes = env.modelBytes(pc.config);
    const past = byHash.get(pc.config_hash);
    const d = past && past.length
      ? { run_seconds: median(past), low_seconds: Math.min(...past), high_seconds: Math.max(...past) }
      : runDuration(pc.config, bytes);
    sum += d.run_seconds;
    low += d.low_seconds;
    high += d.high_seconds;
    if (!sampled) {
      const timeout_seconds = runTimeouts(plan.execution, pc.config, bytes).timeout_seconds;
      perConfig.push({ config_hash: pc.config_hash, ...d, timeout_seconds, ...memoryEstimate(pc.config, bytes, env) });
    }
  }
  const scale = indices.length ? (C / indices.length) * plan.cycles : 0;
  const gaps = gapSeconds(C, plan.execution);
  const total = sum * scale + gaps.run_seconds;
  return {
    total_seconds: Math.round(total),
    low_seconds: Math.round(low * scale + gaps.low_seconds),
    high_seconds: Math.round(high * scale + gaps.high_seconds),
    finish_at: new Date(env.now.getTime() + total * 1000).toISOString(),
    per_config: perConfig,
  };
}
