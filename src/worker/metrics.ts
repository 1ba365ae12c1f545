// Per-run metric computations, pure and table-tested. Definitions follow MEASUREMENT.md; the same
// text is embedded in every result (METRIC_DEFINITIONS) so a result file explains itself.
import type { RequestRecord } from '../backends/types.ts';
import type { EnergyWindow } from '../measure/types.ts';
import type { FlagCode, ForeignGpu, Percentiles, RunMetrics, ValidityFlag } from '../results/schema.ts';

export const SHORT_WINDOW_S = 5;
export const DIVERGENCE_THRESHOLD = 0.1;
/**
 * energy_adjusted_j below −this × energy_j is flagged baseline_above_load. Closer to 0 a negative
 * value is noise between two windows at the same power (counter steps, idle jitter), not a baseline
 * that describes another state of the GPU.
 */
export const BASELINE_ABOVE_LOAD_TOLERANCE = 0.02;

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
  /** null when no warmup ran (warmupNotRunReason says why). */
  warmupConverged: boolean | null;
  warmupNotRunReason?: string | null;
}

const div = (a: number | null, b: number): number | null => (a === null || b <= 0 ? null : a / b);

/**
 * Per-token and per-request figures are over successful work: failed requests leave the divisors
 * (they produced no answer) but not the energy (the GPU spent it), and are counted on their own
 * (requests_failed, output_tokens_failed) and flagged, never dropped silently.
 */
export function computeMetrics(m: MetricInputs): RunMetrics {
  const ok = m.records.filter((r) => r.error === null);
  const failed = m.records.filter((r) => r.error !== null);
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
    requests_failed: failed.length,
    output_tokens_failed: failed.reduce((s, r) => s + r.output_tokens, 0),
    energy_method_reason: w.energy_method_reason,
    throttle_fraction: w.throttle_fraction,
    warmup_not_run_reason: m.warmupConverged === null ? (m.warmupNotRunReason ?? 'no warmup ran') : null,
  };
}

export interface FlagInputs {
  window: EnergyWindow;
  warmupConverged: boolean | null;
  warmupCv: number | null;
  cvThreshold: number;
  /** Foreign processes seen at preflight and at the window edges (by where they were seen). */
  foreign: ForeignGpu | null;
  persistenceModeOff: string[];
  builtinModel: string | null;
  baselineStaleReason: string | null;
  /** Measured requests that failed, and all measured requests. */
  failedRequests: number;
  totalRequests: number;
  firstFailure?: string | null;
  /** GPUs measured whole for a MIG selection. */
  migWholeGpu?: string[];
  /** energy_adjusted_j and energy_j, to flag a baseline above the load. */
  energyAdjustedJ?: number | null;
  energyJ?: number | null;
  baselinePowerW?: number | null;
  /** Why the GPU settings were not the same over the run (environment.gpu_settings.drift_reasons). */
  gpuSettingDrift?: readonly string[];
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
  if (f.failedRequests > 0) {
    add(
      'failed_requests',
      `${f.failedRequests} of ${f.totalRequests} measured requests failed${f.firstFailure ? ` (first: ${f.firstFailure.slice(0, 300)})` : ''}; per-request and per-token figures are over the ${f.totalRequests - f.failedRequests} that succeeded, the energy includes all`,
    );
  }
  if (f.warmupConverged === false) {
    add(
      'warmup_not_converged',
      `warmup latency CV ${f.warmupCv === null ? 'unknown' : f.warmupCv.toFixed(3)} did not fall below ${f.cvThreshold} over a full window before the prompt limit`,
    );
  }
  const foreign = foreignSummary(f.foreign);
  if (foreign !== null) add('foreign_gpu_process', foreign);
  if (f.persistenceModeOff.length > 0) add('persistence_mode_off', `persistence mode is off on ${f.persistenceModeOff.join(', ')}`);
  if (f.baselineStaleReason !== null) add('baseline_stale', f.baselineStaleReason);
  if (f.builtinModel !== null) {
    add('builtin_model', `${f.builtinModel} has random weights: it exercises the pipeline, its numbers say nothing about a real model`);
  }
  if ((f.migWholeGpu ?? []).length > 0) {
    add('mig_whole_gpu', `selected through MIG: energy and power are those of the whole GPU (${f.migWholeGpu!.join(', ')}), including other MIG slices`);
  }
  if ((f.gpuSettingDrift ?? []).length > 0) add('gpu_setting_drift', f.gpuSettingDrift!.join('; '));
  const adjusted = f.energyAdjustedJ ?? null;
  const raw = f.energyJ ?? f.window.energy_j;
  if (adjusted !== null && raw !== null && adjusted < -BASELINE_ABOVE_LOAD_TOLERANCE * Math.abs(raw)) {
    add(
      'baseline_above_load',
      `baseline ${f.baselinePowerW?.toFixed(1) ?? '?'} W × window is more than the measured energy: energy_adjusted_j is ${adjusted.toFixed(1)} J, ${((-adjusted / raw) * 100).toFixed(1)} % of energy_j below 0 (the idle baseline does not describe this GPU's state during the run)`,
    );
  }
  return flags;
}

/** One line on the foreign processes seen, or null when none was. */
export function foreignSummary(foreign: ForeignGpu | null): string | null {
  if (!foreign) return null;
  const where: string[] = [];
  const pids = new Set<number>();
  let maxMem = 0;
  for (const [name, check] of [['preflight', foreign.preflight], ['window start', foreign.window_start], ['window stop', foreign.window_stop]] as const) {
    if (!check || check.processes.length === 0) continue;
    where.push(name);
    for (const p of check.processes) pids.add(p.pid);
    maxMem = Math.max(maxMem, check.memory_bytes);
  }
  if (pids.size === 0) return null;
  return `${pids.size} other process(es) on the measured GPUs (pids ${[...pids].join(', ')}; up to ${(maxMem / 2 ** 20).toFixed(0)} MiB), seen at ${where.join(', ')}`;
}

/**
 * The definition of every metric a result holds, embedded in each result (`definitions`) so a
 * result file explains itself. `satisfies` makes a metric without a definition a type error.
 */
export const METRIC_DEFINITIONS = {
  energy_j: 'GPU energy over the measurement window, summed over the run\'s GPUs (J): the counter difference between the window-start and window-stop reads (energy_method counter), or the trapezoid of polled power when the counter is not available (energy_method polled, with energy_method_reason); null with energy_unavailable_reason when unknown, never 0',
  energy_polled_j: 'Trapezoid integral of polled GPU power over the window, edge values held to the edges (J)',
  energy_divergence: '|counter − polled| ÷ counter, when both exist',
  energy_method: 'counter or polled: how energy_j was measured',
  energy_method_reason: 'Why energy_j is polled rather than the counter (null with the counter); a switch during the window is also flagged energy_method_fallback',
  energy_unavailable_reason: 'Why energy_j is null',
  baseline_power_w: 'Idle GPU power before the model loads (W): counter energy ÷ duration of the baseline window when the counter is available, else the mean of polled power; see result.baseline for its provenance',
  baseline_reused: 'Whether baseline_power_w was reused from a recent baseline of the same study (result.baseline says which run, how old, at what temperature)',
  energy_adjusted_j: `energy_j − baseline_power_w × window_s (J); the raw value is always kept; a negative value is kept as computed, and flagged baseline_above_load below −${BASELINE_ABOVE_LOAD_TOLERANCE * 100} % of energy_j`,
  energy_per_output_token_j: 'energy_j ÷ output tokens of the successful requests in the window (J/token); failed requests\' tokens (output_tokens_failed) are not in the divisor, their energy is in energy_j',
  energy_per_output_token_adjusted_j: 'energy_adjusted_j ÷ output tokens of the successful requests (J/token)',
  energy_per_request_j: 'energy_j ÷ successful requests (requests) in the window (J/request); failed requests (requests_failed) are not in the divisor, their energy is in energy_j',
  energy_per_request_adjusted_j: 'energy_adjusted_j ÷ successful requests (J/request)',
  cpu_energy_j: 'CPU package (and DRAM where exposed) energy over the window from RAPL (J); null with a reason',
  cpu_energy_unavailable_reason: 'Why cpu_energy_j is null',
  load_s: 'Seconds to load the backend and model',
  load_energy_j: 'GPU energy while loading the backend and model, outside the measurement window (J)',
  requests: 'Measured requests that succeeded',
  requests_failed: 'Measured requests that failed (their error is in requests.jsonl); not in any divisor',
  input_tokens: 'Input tokens of the successful requests',
  output_tokens: 'Output tokens of the successful requests',
  output_tokens_failed: 'Output tokens produced by failed requests before they failed (energy spent, no answer)',
  window_s: 'Measurement window length (s): from the earliest window-start read to the latest window-stop read',
  output_tokens_per_s: 'output_tokens (successful requests) ÷ window_s',
  requests_per_s: 'requests (successful) ÷ window_s',
  ttft_ms: 'Time to first token of any kind (reasoning included): first token time − request start (ms), successful requests; mean and p50/p90/p95/p99 by linear interpolation between closest ranks',
  ttft_content_ms: 'First content token time − request start (ms), successful requests',
  itl_ms: 'Gaps between consecutive tokens or chunks of a request, first token excluded (ms), successful requests',
  tpot_ms: '(request end − first token) ÷ (output tokens − 1) (ms), successful requests with more than one token',
  e2e_ms: 'Request end − request start (ms), successful requests',
  power_mean_w: 'Mean over sampler ticks of the power summed over the run\'s GPUs (W); null when a GPU was lost during the window (the samples would cover only the part before the loss)',
  power_peak_w: 'Highest per-tick power summed over the run\'s GPUs (W); null after a GPU loss, like power_mean_w',
  temperature_max_c: 'Highest GPU temperature seen in the window (°C)',
  temperature_start_c: 'Highest GPU temperature at the window-start read (°C)',
  temperature_end_c: 'Highest GPU temperature at the window-stop read (°C)',
  memory_peak_bytes: 'Peak device memory in use (NVML, all processes) over the window, summed over GPUs; the backend\'s own peak when NVML has none',
  throttle_s: 'Seconds of the window with a clock-throttle reason set (thermal: SW/HW thermal slowdown; power_cap: SW power cap; power_brake: HW power brake), the worst GPU; each sample\'s state holds until the next',
  throttle_fraction: 'throttle_s ÷ window_s per reason (0…1)',
  samples: 'Sampler ticks in the window (one reading of every GPU each)',
  warmup_prompts: 'Warmup prompts that succeeded before the measurement',
  warmup_cv: 'Coefficient of variation (sample std ÷ mean) of end-to-end latency over the last warmup.window successful warmup prompts',
  warmup_converged: 'true when warmup_cv fell below warmup.cv_threshold over a full window of warmup.window prompts (and at least warmup.min_prompts ran); false when the limit came first; null when no warmup ran (warmup_not_run_reason)',
  warmup_not_run_reason: 'Why no warmup ran (warmup.max_prompts 0, or a backend that warms up on its own)',
  arrival: 'Open-loop workloads only (request_rate set; null otherwise): offered_rate_per_s (the study value), scheduled_rate_per_s (the rate of the seeded schedule as drawn), achieved_rate_per_s (departure rate of completed requests: (completed − 1) ÷ (last − first completion)), queueing_ms (scheduled arrival → send, waiting for an in-flight slot under batch_size: mean, p50, p95), over_saturated (achieved < 0.95 × scheduled; null at inf)',
} as const satisfies Record<keyof RunMetrics, string>;

/** Definitions of the parts of a result that are not metrics. */
export const RECORD_DEFINITIONS = {
  baseline: 'Provenance of baseline_power_w: measured here or reused (source run id, age, temperature then and now), how (counter or polled) and over how long',
  energy_window: 'The window-start and window-stop reads of every GPU (absolute counter in mJ, power, time from the window start); with power.csv they make energy_j reproducible from the files alone; sampler errors are kept here',
  foreign_gpu: 'Compute processes on the measured GPUs other than this worker and its descendants, with their memory and the GPU utilisation, at preflight (before the model loads) and at the window edges',
  device_selection_notes: 'How CUDA_VISIBLE_DEVICES was mapped to NVML devices (ignored entries, index order, MIG)',
  'environment.gpu_settings': 'The GPU settings the run ran under, per GPU: requested (as the config asks; null = default), enforced (what the driver reported after the parent applied and verified them), original_power_limit_w (the limit before the study, what default stands for), sm_clock_step_mhz (with an SM clock lock: the spacing of the GPU\'s supported SM clocks, the slack the lock is checked with), notes; gpu_setting_drift and drift_reasons (a setting that changed between the apply and the window end)',
  'power.csv': 'One row per (read, GPU): the start edge read, the sampler points inside the window, the stop edge read (column row); energy_counter_mj is the absolute counter, energy_j the counter since the start read',
} as const;

/** What each validity flag means; embedded with the metric definitions. */
export const FLAG_DEFINITIONS = {
  short_window: `measurement window shorter than ${SHORT_WINDOW_S} s: energy readings are coarse`,
  few_samples: 'fewer than half the expected sampler ticks (or fewer than 2) in the window',
  energy_divergence: `counter and polled energy differ by more than ${DIVERGENCE_THRESHOLD * 100} %`,
  thermal_throttle: 'a thermal clock-throttle reason was set during the window (throttle_s.thermal, throttle_fraction.thermal)',
  power_brake: 'the hardware power brake was set during the window (throttle_s.power_brake)',
  temperature_drift: 'GPU temperature changed by more than 10 °C between the window edges',
  foreign_gpu_process: 'another compute process was on a measured GPU at preflight or at a window edge (result.foreign_gpu)',
  warmup_not_converged: 'warmup_cv did not fall below the threshold over a full window before warmup.max_prompts',
  persistence_mode_off: 'persistence mode was off on a measured GPU (driver state may change between runs)',
  energy_unavailable: 'energy_j could not be measured (energy_unavailable_reason)',
  baseline_stale: 'the baseline was reused without a temperature to compare',
  counter_reset: 'the energy counter went backwards during the window; increases were summed across it',
  builtin_model: 'a random-weight builtin model: the numbers exercise the pipeline only',
  failed_requests: 'some measured requests failed: per-request and per-token figures are over the successful ones (requests_failed, output_tokens_failed)',
  energy_method_fallback: 'the energy counter read at the window start did not give the window\'s energy (error or NOT_SUPPORTED at the stop): energy_j is polled power (energy_method_reason)',
  mig_whole_gpu: 'the run was given a MIG slice, but energy and power are the whole GPU\'s, other slices included',
  over_saturated: 'open-loop workload (request_rate): the achieved request rate fell more than 5 % short of the rate actually scheduled; the server did not keep up and latencies include its queue (metrics.arrival)',
  gpu_setting_drift: 'a GPU power limit or clock lock was not the one verified before the run at some point between the parent\'s check before the run and the window end (someone else changed it): the number was not measured under the setting recorded (environment.gpu_settings.drift_reasons)',
  baseline_above_load: `energy_adjusted_j came out below −${BASELINE_ABOVE_LOAD_TOLERANCE * 100} % of energy_j: the idle baseline was above the power during the run (closer to 0 it is noise between two windows at the same power)`,
} as const satisfies Record<FlagCode, string>;

/** Everything a result embeds under `definitions`: metrics by name, flags as `flag.<code>`. */
export function resultDefinitions(): Record<string, string> {
  return {
    ...METRIC_DEFINITIONS,
    ...RECORD_DEFINITIONS,
    ...Object.fromEntries(Object.entries(FLAG_DEFINITIONS).map(([code, text]) => [`flag.${code}`, text])),
  };
}

/** A baseline stored in the study dir for reuse by later runs on the same GPUs. */
export interface BaselineRecord {
  measured_at_ms: number;
  power_w: number;
  temperature_c: number | null;
  /** Written since issue 17 (absent in older stored baselines). */
  run_id?: string;
  method?: 'counter' | 'polled';
  duration_s?: number;
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
): { reuse: boolean; staleReason: string | null; why: string; ageS: number | null } {
  if (reuseSeconds <= 0) return { reuse: false, staleReason: null, why: 'baseline reuse is off', ageS: null };
  if (!prev || typeof prev.power_w !== 'number' || !Number.isFinite(prev.power_w)) return { reuse: false, staleReason: null, why: 'no stored baseline', ageS: null };
  const ageS = (nowMs - prev.measured_at_ms) / 1000;
  if (ageS > reuseSeconds) return { reuse: false, staleReason: null, why: `stored baseline is ${ageS.toFixed(0)} s old (> ${reuseSeconds} s)`, ageS };
  if (prev.temperature_c === null || currentTempC === null) {
    return {
      reuse: true,
      staleReason: `baseline reused from ${ageS.toFixed(0)} s ago without a temperature to compare`,
      why: 'fresh, temperature unknown',
      ageS,
    };
  }
  const dT = Math.abs(currentTempC - prev.temperature_c);
  if (dT > BASELINE_TEMP_TOLERANCE_C) {
    return { reuse: false, staleReason: null, why: `GPU is ${dT.toFixed(1)} °C away from the stored baseline's temperature`, ageS };
  }
  return { reuse: true, staleReason: null, why: `fresh (${ageS.toFixed(0)} s) and within ${BASELINE_TEMP_TOLERANCE_C} °C`, ageS };
}
