// Per-run metric computations, pure and table-tested. Definitions follow MEASUREMENT.md; the same
// text is embedded in every result (METRIC_DEFINITIONS) so a result file explains itself.
import type { RequestRecord } from '../backends/types.ts';
import type { EnergyWindow } from '../measure/types.ts';
import type { FlagCode, Percentiles, RunMetrics, ValidityFlag } from '../results/schema.ts';

export const SHORT_WINDOW_S = 5;
export const DIVERGENCE_THRESHOLD = 0.1;

/** Percentile with linear interpolation between closest ranks (numpy's default). */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function percentiles(values: readonly number[]): Percentiles {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return { mean: null, p50: null, p90: null, p95: null, p99: null };
  const sorted = [...v].sort((a, b) => a - b);
  return {
    mean: v.reduce((s, x) => s + x, 0) / v.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
  };
}

export interface LatencySamples {
  ttft_ms: number[];
  ttft_content_ms: number[];
  itl_ms: number[];
  tpot_ms: number[];
  e2e_ms: number[];
}

/** Per-request latency samples; failed requests (error set) are excluded. */
export function latencySamples(records: readonly RequestRecord[]): LatencySamples {
  const out: LatencySamples = { ttft_ms: [], ttft_content_ms: [], itl_ms: [], tpot_ms: [], e2e_ms: [] };
  for (const r of records) {
    if (r.error !== null) continue;
    out.e2e_ms.push(r.end_ms - r.start_ms);
    if (r.first_token_ms === null) continue;
    out.ttft_ms.push(r.first_token_ms - r.start_ms);
    if (r.first_content_token_ms !== null) out.ttft_content_ms.push(r.first_content_token_ms - r.start_ms);
    let prev = r.first_token_ms;
    for (const t of r.token_times_ms) {
      out.itl_ms.push(t - prev);
      prev = t;
    }
    if (r.output_tokens > 1) out.tpot_ms.push((r.end_ms - r.first_token_ms) / (r.output_tokens - 1));
  }
  return out;
}

/** Sample coefficient of variation (n − 1) of the last `window` values; null when too few. */
export function coefficientOfVariation(values: readonly number[], window: number): number | null {
  const v = values.slice(-window);
  if (v.length < 2) return null;
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  if (mean === 0) return null;
  const variance = v.reduce((s, x) => s + (x - mean) ** 2, 0) / (v.length - 1);
  return Math.sqrt(variance) / Math.abs(mean);
}

export interface MetricInputs {
  records: readonly RequestRecord[];
  window: EnergyWindow;
  baselinePowerW: number | null;
  baselineReused: boolean | null;
  cpuEnergyJ: number | null;
  cpuEnergyUnavailableReason: string | null;
  loadS: number | null;
  loadEnergyJ: number | null;
  warmupPrompts: number;
  warmupCv: number | null;
  warmupConverged: boolean;
}

const div = (a: number | null, b: number): number | null => (a === null || b <= 0 ? null : a / b);

export function computeMetrics(m: MetricInputs): RunMetrics {
  const ok = m.records.filter((r) => r.error === null);
  const outputTokens = ok.reduce((s, r) => s + r.output_tokens, 0);
  const inputTokens = ok.reduce((s, r) => s + r.input_tokens, 0);
  const w = m.window;
  const windowS = w.window_s;
  const energyJ = w.energy_j;
  const adjusted = energyJ !== null && m.baselinePowerW !== null ? energyJ - m.baselinePowerW * windowS : null;
  const lat = latencySamples(m.records);
  return {
    energy_j: energyJ,
    energy_polled_j: w.energy_polled_j,
    energy_divergence: w.energy_divergence,
    energy_method: w.energy_method,
    energy_unavailable_reason: energyJ === null ? (w.unavailable_reason ?? 'energy was not measured') : null,
    baseline_power_w: m.baselinePowerW,
    baseline_reused: m.baselineReused,
    energy_adjusted_j: adjusted,
    energy_per_output_token_j: div(energyJ, outputTokens),
    energy_per_output_token_adjusted_j: div(adjusted, outputTokens),
    energy_per_request_j: div(energyJ, ok.length),
    energy_per_request_adjusted_j: div(adjusted, ok.length),
    cpu_energy_j: m.cpuEnergyJ,
    cpu_energy_unavailable_reason: m.cpuEnergyJ === null ? (m.cpuEnergyUnavailableReason ?? 'CPU energy was not measured') : null,
    load_s: m.loadS,
    load_energy_j: m.loadEnergyJ,
    requests: ok.length,
    input_tokens: inputTokens,
    output_tokens: outputTokens,
    window_s: windowS,
    output_tokens_per_s: div(outputTokens, windowS),
    requests_per_s: div(ok.length, windowS),
    ttft_ms: percentiles(lat.ttft_ms),
    ttft_content_ms: percentiles(lat.ttft_content_ms),
    itl_ms: percentiles(lat.itl_ms),
    tpot_ms: percentiles(lat.tpot_ms),
    e2e_ms: percentiles(lat.e2e_ms),
    power_mean_w: w.power_mean_w,
    power_peak_w: w.power_peak_w,
    temperature_max_c: w.temperature_max_c,
    temperature_start_c: w.temperature_start_c,
    temperature_end_c: w.temperature_end_c,
    memory_peak_bytes: w.memory_peak_bytes,
    throttle_s: w.throttle_s,
    samples: w.samples,
    warmup_prompts: m.warmupPrompts,
    warmup_cv: m.warmupCv,
    warmup_converged: m.warmupConverged,
  };
}

export interface FlagInputs {
  window: EnergyWindow;
  warmupConverged: boolean;
  warmupCv: number | null;
  cvThreshold: number;
  foreignProcesses: Array<{ pid: number; memory_bytes: number | null }>;
  persistenceModeOff: string[];
  builtinModel: string | null;
  baselineStaleReason: string | null;
  failedRequests: number;
}

/**
 * All validity flags of a run: the meter's own, plus those only the worker knows. One flag per
 * code (the first message wins: the meter's wording is the more specific).
 */
export function computeFlags(f: FlagInputs): ValidityFlag[] {
  const flags: ValidityFlag[] = [];
  const seen = new Set<FlagCode>();
  const add = (code: FlagCode, message: string): void => {
    if (seen.has(code)) return;
    seen.add(code);
    flags.push({ code, message });
  };
  for (const fl of f.window.flags) add(fl.code, fl.message);
  const w = f.window;
  if (w.energy_j === null) add('energy_unavailable', w.unavailable_reason ?? 'energy was not measured');
  if (w.window_s < SHORT_WINDOW_S) {
    add('short_window', `measurement window ${w.window_s.toFixed(2)} s is shorter than ${SHORT_WINDOW_S} s; energy of short windows is unreliable`);
  }
  if (w.energy_divergence !== null && w.energy_divergence > DIVERGENCE_THRESHOLD) {
    add('energy_divergence', `counter and polled energy differ by ${(w.energy_divergence * 100).toFixed(1)} % (> ${DIVERGENCE_THRESHOLD * 100} %)`);
  }
  if (w.counter_reset) add('counter_reset', 'the energy counter went backwards during the window (driver reload or reset)');
  if (!f.warmupConverged) {
    add(
      'warmup_not_converged',
      `warmup latency CV ${f.warmupCv === null ? 'unknown' : f.warmupCv.toFixed(3)} did not fall below ${f.cvThreshold} before the prompt limit`,
    );
  }
  if (f.foreignProcesses.length > 0) {
    const mem = f.foreignProcesses.reduce((s, p) => s + (p.memory_bytes ?? 0), 0);
    add(
      'foreign_gpu_process',
      `${f.foreignProcesses.length} other process(es) on the measured GPUs (pids ${f.foreignProcesses.map((p) => p.pid).join(', ')}, ${(mem / 2 ** 20).toFixed(0)} MiB)`,
    );
  }
  if (f.persistenceModeOff.length > 0) add('persistence_mode_off', `persistence mode is off on ${f.persistenceModeOff.join(', ')}`);
  if (f.baselineStaleReason !== null) add('baseline_stale', f.baselineStaleReason);
  if (f.builtinModel !== null) {
    add('builtin_model', `${f.builtinModel} has random weights: it exercises the pipeline, its numbers say nothing about a real model`);
  }
  return flags;
}

export const METRIC_DEFINITIONS: Record<string, string> = {
  energy_j: 'GPU energy counter difference over the measurement window, summed over the run\'s GPUs (J); null with a reason when unavailable, never 0',
  energy_polled_j: 'Trapezoid integral of polled GPU power over the window (J)',
  energy_divergence: '|counter − polled| / counter',
  baseline_power_w: 'Idle GPU power measured before the model loads (W)',
  energy_adjusted_j: 'energy_j − baseline_power_w × window_s (J); the raw value is always kept',
  energy_per_output_token_j: 'energy_j ÷ output tokens in the window (and the adjusted variant)',
  energy_per_request_j: 'energy_j ÷ completed requests in the window (and the adjusted variant)',
  load_energy_j: 'GPU energy while loading the backend and model, outside the measurement window (J)',
  output_tokens_per_s: 'output tokens in the window ÷ window seconds',
  requests_per_s: 'completed requests ÷ window seconds',
  ttft_ms: 'first token (any kind, reasoning included) time − request start',
  ttft_content_ms: 'first content token time − request start',
  itl_ms: 'gaps between consecutive tokens or chunks of a request, first token excluded',
  tpot_ms: '(request end − first token) ÷ (output tokens − 1)',
  e2e_ms: 'request end − request start',
  percentiles: 'mean, and p50/p90/p95/p99 by linear interpolation between closest ranks',
  window_s: 'measurement window length (s), from the meter\'s start to its stop around the workload',
  warmup_cv: 'coefficient of variation (sample std ÷ mean) of end-to-end latency over the last warmup window',
};

export interface BaselineRecord {
  measured_at_ms: number;
  power_w: number;
  temperature_c: number | null;
}

export const BASELINE_TEMP_TOLERANCE_C = 3;

/**
 * Whether a stored baseline of the same study may stand in for a new measurement: fresh enough
 * and measured at about the same GPU temperature (idle power rises with temperature). When the
 * temperatures cannot be compared it is reused but flagged `baseline_stale`.
 */
export function baselineReuseDecision(
  prev: BaselineRecord | null,
  nowMs: number,
  reuseSeconds: number,
  currentTempC: number | null,
): { reuse: boolean; staleReason: string | null; why: string } {
  if (reuseSeconds <= 0) return { reuse: false, staleReason: null, why: 'baseline reuse is off' };
  if (!prev || typeof prev.power_w !== 'number' || !Number.isFinite(prev.power_w)) return { reuse: false, staleReason: null, why: 'no stored baseline' };
  const ageS = (nowMs - prev.measured_at_ms) / 1000;
  if (ageS > reuseSeconds) return { reuse: false, staleReason: null, why: `stored baseline is ${ageS.toFixed(0)} s old (> ${reuseSeconds} s)` };
  if (prev.temperature_c === null || currentTempC === null) {
    return {
      reuse: true,
      staleReason: `baseline reused from ${ageS.toFixed(0)} s ago without a temperature to compare`,
      why: 'fresh, temperature unknown',
    };
  }
  const dT = Math.abs(currentTempC - prev.temperature_c);
  if (dT > BASELINE_TEMP_TOLERANCE_C) {
    return { reuse: false, staleReason: null, why: `GPU is ${dT.toFixed(1)} °C away from the stored baseline's temperature` };
  }
  return { reuse: true, staleReason: null, why: `fresh (${ageS.toFixed(0)} s) and within ${BASELINE_TEMP_TOLERANCE_C} °C` };
}
