// The pure core of summary.json: (PlanFile, StudySnapshot, RunResult[]) → StudySummary.
// No files, no clock unless asked: tests build every input as plain objects.
import type { ExperimentConfig, PlanFile } from '../study/types.ts';
import { emptyCounts, type AttemptRecord, type ConfigStop, type RunSnapshot, type RunStatus, type StudySnapshot } from '../study-dir/schema.ts';
import { invalidMessage, judgeValidity, validityPolicyOf } from '../measure/validity.ts';
import { describeHalfWidth } from '../study/target.ts';
import { FLAG_CODES, type FlagCode, type RunMetrics, type RunResult } from './schema.ts';
import { describeMany, INTERVAL_SHOWN, seedFor, type MetricStats, type StatsOptions } from './stats.ts';
import {
  SUMMARY_METRICS,
  SUMMARY_METRIC_KEYS,
  SUMMARY_SCHEMA_VERSION,
  type ConfigStopping,
  type ConfigSummary,
  type ExcludedRun,
  type InvalidAttempt,
  type MetricSummary,
  type StudySummary,
  type SummaryEnvironment,
  type SummaryMetricKey,
} from './summary-schema.ts';
import { withGpuDefaults } from './gpu-swept.ts';

export const METRIC_GETTERS: Record<SummaryMetricKey, (m: RunMetrics) => number | null> = {
  energy_per_output_token_j: (m) => m.energy_per_output_token_j,
  energy_per_output_token_adjusted_j: (m) => m.energy_per_output_token_adjusted_j,
  output_tokens_per_s: (m) => m.output_tokens_per_s,
  ttft_p50_ms: (m) => m.ttft_ms?.p50 ?? null,
  itl_p50_ms: (m) => m.itl_ms?.p50 ?? null,
  tpot_p50_ms: (m) => m.tpot_ms?.p50 ?? null,
  e2e_p50_ms: (m) => m.e2e_ms?.p50 ?? null,
  power_mean_w: (m) => m.power_mean_w,
  power_peak_w: (m) => m.power_peak_w,
  energy_j: (m) => m.energy_j,
  energy_adjusted_j: (m) => m.energy_adjusted_j,
  energy_per_request_j: (m) => m.energy_per_request_j,
  requests_per_s: (m) => m.requests_per_s,
  temperature_max_c: (m) => m.temperature_max_c,
  memory_peak_bytes: (m) => m.memory_peak_bytes,
  energy_divergence: (m) => m.energy_divergence,
  ttft_p95_ms: (m) => m.ttft_ms?.p95 ?? null,
  itl_p95_ms: (m) => m.itl_ms?.p95 ?? null,
  tpot_p95_ms: (m) => m.tpot_ms?.p95 ?? null,
  e2e_p95_ms: (m) => m.e2e_ms?.p95 ?? null,
};

export interface SummaryOptions {
  confidence: number;
  bootstrapResamples: number;
  /** null = the plan's cycle_seed (recorded in the summary either way). */
  bootstrapSeed: number | null;
  highVarianceCv: number;
}

export const DEFAULT_SUMMARY_OPTIONS: SummaryOptions = {
  confidence: 0.95,
  // 1000 resamples (seaborn's default; Efron & Tibshirani's floor for percentile intervals) keeps a
  // 10,000-run summary under a second; --bootstrap-resamples raises it.
  bootstrapResamples: 1000,
  bootstrapSeed: null,
  highVarianceCv: 0.1,
};

/** The bootstrap base seed of a study's summary: the option, else the plan's cycle_seed. */
export function summaryBootstrapSeed(plan: Pick<PlanFile, 'cycle_seed'>, opts: Pick<SummaryOptions, 'bootstrapSeed'>): number {
  return (opts.bootstrapSeed ?? plan.cycle_seed) >>> 0;
}

/** The statistics options of one config's metrics. The one definition shared by the summary and
 * the `n_cycles: auto` stopping rule (src/results/stopping-rule.ts), so both see the same intervals. */
export function configStatsOptions(opts: SummaryOptions, bootstrapSeed: number, configHash: string): StatsOptions {
  return {
    confidence: opts.confidence,
    bootstrapResamples: opts.bootstrapResamples,
    highVarianceCv: opts.highVarianceCv,
    seed: seedFor(bootstrapSeed, configHash),
  };
}

export interface SummaryInput {
  plan: PlanFile;
  /** null when the study dir has no manifest: runs with a result count as completed, others pending. */
  snapshot: StudySnapshot | null;
  results: RunResult[];
  /** Result files that could not be read or failed validation (named in warnings). */
  loadErrors?: Array<{ path: string; message: string }>;
  options?: Partial<SummaryOptions>;
  /** ISO time written as generated_at (tests pass a fixed one). */
  now?: string;
}

export type Scalar = string | number | boolean | null;

/** One experiment config as flat dotted fields: `batch_size`, `llamacpp.n_gpu_layers`, `warmup.window` … */
export function flattenConfig(config: ExperimentConfig | Record<string, unknown>): Record<string, Scalar> {
  const out: Record<string, Scalar> = {};
  const c = config as Record<string, unknown>;
  const backend = typeof c.backend === 'string' ? c.backend : 'params';
  const visit = (prefix: string, value: unknown): void => {
    if (value === null || value === undefined) out[prefix] = null;
    else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[prefix] = value;
    else if (Array.isArray(value)) out[prefix] = JSON.stringify(value);
    else if (typeof value === 'object') {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) visit(`${prefix}.${k}`, v);
    } else out[prefix] = String(value);
  };
  for (const [key, value] of Object.entries(c)) {
    if (key === 'dataset') out.dataset = datasetLabel(value);
    // The backend's own section is written `llamacpp:` in YAML; name its fields that way.
    else if (key === 'params' && value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) visit(`${backend}.${k}`, v);
    } else visit(key, value);
  }
  return out;
}

/** `builtin:default`, `jsonl:/abs/path`, `synthetic:512`: one label per dataset spec. */
export function datasetLabel(d: unknown): Scalar {
  if (!d || typeof d !== 'object') return d === undefined ? null : (d as Scalar);
  const ds = d as Record<string, unknown>;
  if (ds.kind === 'builtin') return `builtin:${String(ds.name)}`;
  if (ds.kind === 'jsonl') return `jsonl:${String(ds.path)}`;
  if (ds.kind === 'synthetic') return `synthetic:${String(ds.input_tokens)}`;
  return JSON.stringify(d);
}

const FIELD_ORDER = ['model', 'backend', 'precision', 'batch_size', 'max_new_tokens', 'n', 'dataset', 'seed'];

/** Fields whose value differs between configs, in a stable order (well-known fields first). */
export function sweptFields(flatConfigs: Array<Record<string, Scalar>>): string[] {
  if (flatConfigs.length < 2) return [];
  const keys = new Set<string>();
  for (const f of flatConfigs) for (const k of Object.keys(f)) keys.add(k);
  const swept: string[] = [];
  // Swept = two or more distinct values. A field set for one backend only (null elsewhere) is
  // explained by the backend column and is not swept on its own.
  for (const k of keys) {
    const distinct = new Set<Scalar>();
    for (const f of flatConfigs) if ((f[k] ?? null) !== null) distinct.add(f[k]!);
    if (distinct.size >= 2) swept.push(k);
  }
  const rank = (k: string): number => {
    const i = FIELD_ORDER.indexOf(k);
    return i === -1 ? FIELD_ORDER.length : i;
  };
  return swept.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

function toMetricSummary(s: MetricStats): MetricSummary {
  return {
    n: s.n,
    n_missing: s.n_missing,
    mean: s.mean,
    std: s.std,
    cv: s.cv,
    median: s.median,
    min: s.min,
    max: s.max,
    ci95_bootstrap: s.ci_bootstrap,
    ci95_t: s.ci_t,
    high_variance: s.high_variance,
  };
}

/** The key of a run (config, cycle) in resultsByRun. */
export function runKey(configHash: string, cycle: number): string {
  return `${configHash}\u0000${cycle}`;
}

/** Every result of each run (config, cycle), one per attempt that wrote one. */
export function resultsByRun(results: readonly RunResult[]): Map<string, RunResult[]> {
  const out = new Map<string, RunResult[]>();
  for (const r of results) {
    const key = runKey(r.config_hash, r.cycle);
    const list = out.get(key) ?? [];
    list.push(r);
    out.set(key, list);
  }
  return out;
}

/**
 * The result a completed run's numbers come from: its completed attempt's, the one the validity
 * gate passed, never an invalid attempt's (whose result stays on disk). A run recorded before the
 * gate, or without attempt records, uses its latest result of an attempt not recorded otherwise.
 */
export function usedResultOf(run: Pick<RunSnapshot, 'status' | 'attempts'>, candidates: readonly RunResult[]): RunResult | undefined {
  if (run.status !== 'completed') return undefined;
  const completed = [...run.attempts].reverse().find((a) => a.status === 'completed');
  const named = completed ? candidates.find((r) => r.attempt === completed.attempt) : undefined;
  if (named) return named;
  const recorded = new Map(run.attempts.map((a) => [a.attempt, a.status]));
  return [...candidates].filter((r) => (recorded.get(r.attempt) ?? 'completed') === 'completed').sort((a, b) => b.attempt - a.attempt)[0];
}

/**
 * Without a manifest, the plan's run order with statuses from the results found: each judged by
 * the validity gate under the plan's policy, so a run is completed by its latest valid result and
 * invalid when every result it left is.
 */
export function snapshotFromResults(plan: PlanFile, results: RunResult[], studyDir = ''): StudySnapshot {
  const byRun = resultsByRun(results);
  const policy = validityPolicyOf(plan.execution);
  const runs: RunSnapshot[] = plan.order.map((o) => {
    const found = [...(byRun.get(runKey(o.config_hash, o.cycle)) ?? [])].sort((a, b) => a.attempt - b.attempt);
    const attempts: AttemptRecord[] = found.map((r) => {
      const v = judgeValidity(r, policy);
      return {
        attempt: r.attempt,
        started_at: r.started_at,
        ended_at: r.ended_at,
        status: v.valid ? 'completed' : 'invalid',
        error_type: null,
        message: v.valid ? null : invalidMessage(v.reasons),
        phase_reached: null,
        stderr_tail: null,
        pid: null,
        run_dir: `runs/${r.run_id}`,
        validity: { valid: v.valid, reasons: v.reasons, wait_before_retry: v.wait_before_retry },
      };
    });
    const status: RunStatus = attempts.length === 0 ? 'pending' : attempts.some((a) => a.status === 'completed') ? 'completed' : 'invalid';
    return {
      index: o.index,
      run_id: `${String(o.index).padStart(4, '0')}-${o.config_hash}-c${o.cycle}`,
      config_hash: o.config_hash,
      cycle: o.cycle,
      status,
      attempts,
      error_type: null,
      result: null,
      headline: null,
    };
  });
  const counts = emptyCounts();
  for (const r of runs) counts[r.status]++;
  return {
    study_dir: studyDir,
    study_name: plan.study_name,
    study_hash: plan.study_hash,
    status: counts.pending > 0 ? 'interrupted' : counts.invalid > 0 ? 'failed' : 'completed',
    n_cycles: plan.execution.n_cycles,
    started_at: plan.created_at,
    counts,
    runs,
    paused: false,
    quit_requested: false,
  };
}

function environmentOf(results: RunResult[]): SummaryEnvironment | null {
  if (results.length === 0) return null;
  const sorted = [...results].sort((a, b) => a.started_at.localeCompare(b.started_at));
  const e = sorted[0]!.environment;
  const fingerprint = (r: RunResult): string =>
    JSON.stringify([r.environment.hostname, r.environment.nvml.driver_version, r.environment.gpus.map((g) => [g.name, g.uuid])]);
  const ref = fingerprint(sorted[0]!);
  const differences: string[] = [];
  for (const r of sorted) {
    if (fingerprint(r) !== ref) {
      const gpus = r.environment.gpus.map((g) => g.name).join(', ') || 'no GPU';
      differences.push(`${r.run_id}: host ${r.environment.hostname}, driver ${r.environment.nvml.driver_version ?? 'unknown'}, ${gpus}`);
    }
  }
  return {
    hostname: e.hostname,
    platform: e.platform,
    node_version: e.node_version,
    llem_version: e.llem_version,
    cpu_model: e.cpu_model,
    cuda_visible_devices: e.cuda_visible_devices,
    nvml_available: e.nvml.available,
    nvml_reason: e.nvml.reason,
    driver_version: e.nvml.driver_version,
    cuda_driver_version: e.nvml.cuda_driver_version,
    gpus: e.gpus.map((g) => ({
      index: g.index,
      uuid: g.uuid,
      name: g.name,
      memory_total_bytes: g.memory_total_bytes,
      power_limit_w: g.power_limit_w,
      persistence_mode: g.persistence_mode,
      mig_mode: g.mig_mode,
    })),
    extra: { ...(e.extra ?? {}) },
    differences,
  };
}

/** The attempts of `run` the validity gate judged invalid, with where their results stay. */
function invalidAttemptsOf(run: RunSnapshot): ExcludedRun['invalid_attempts'] {
  return run.attempts
    .filter((a) => a.status === 'invalid')
    .map((a) => ({ attempt: a.attempt, result: `${a.run_dir}/result.json`, reasons: a.validity?.reasons ?? [] }));
}

function stoppingOf(stop: ConfigStop | undefined): ConfigStopping | null {
  if (!stop) return null;
  return {
    reason: stop.reason,
    detail: stop.detail,
    cycles: stop.cycles,
    n: stop.n,
    mean: stop.mean,
    half_width: stop.half_width,
    relative_half_width: stop.relative_half_width,
    target_half_width: stop.target_half_width,
    round: stop.round,
  };
}

function reasonOf(run: RunSnapshot): { reason: string; phase: string | null } {
  const last = run.attempts.length ? run.attempts[run.attempts.length - 1]! : null;
  const parts = [run.error_type ?? last?.error_type, last?.message].filter((p): p is string => !!p);
  if (parts.length === 0) {
    if (run.status === 'interrupted') parts.push('interrupted before it finished');
    else if (run.status === 'skipped') parts.push('skipped');
    else parts.push(`run ${run.status}`);
  }
  return { reason: parts.join(': '), phase: last?.phase_reached ?? null };
}

export function summarizeStudy(input: SummaryInput): StudySummary {
  const { plan } = input;
  const opts: SummaryOptions = { ...DEFAULT_SUMMARY_OPTIONS, ...input.options };
  const bootstrapSeed = summaryBootstrapSeed(plan, opts);
  const snapshot = input.snapshot ?? snapshotFromResults(plan, input.results);
  const warnings: string[] = [];
  for (const e of input.loadErrors ?? []) warnings.push(`${e.path}: ${e.message} (run excluded)`);

  // A run that left several result files is measured by its completed (valid) attempt alone.
  const candidates = resultsByRun(input.results);

  const labelOf = new Map(plan.configs.map((c) => [c.config_hash, c.label]));
  const runsByConfig = new Map<string, RunSnapshot[]>();
  for (const run of snapshot.runs) {
    const list = runsByConfig.get(run.config_hash) ?? [];
    list.push(run);
    runsByConfig.set(run.config_hash, list);
  }
  for (const hash of runsByConfig.keys()) {
    if (!labelOf.has(hash)) warnings.push(`manifest has runs of config ${hash}, which is not in plan.json (ignored)`);
  }

  const flat = withGpuDefaults(
    plan.configs.map((c) => flattenConfig(c.config)),
    plan.configs.map((c) => c.config_hash),
    input.results,
  );
  const swept = sweptFields(flat);
  const excluded: ExcludedRun[] = [];
  const invalidAttempts: InvalidAttempt[] = [];
  const usedResults: RunResult[] = [];
  const studyCounts = { planned: 0, completed: 0, failed: 0, skipped: 0, interrupted: 0, pending: 0, running: 0, invalid: 0 };

  const target = plan.execution.target ?? null;
  const stopOf = new Map((snapshot.rounds?.stops ?? []).map((s) => [s.config_hash, s]));
  const plannedByConfig = new Map<string, number>();
  for (const o of plan.order) plannedByConfig.set(o.config_hash, (plannedByConfig.get(o.config_hash) ?? 0) + 1);
  const configs: ConfigSummary[] = plan.configs.map((pc, i) => {
    const runs = (runsByConfig.get(pc.config_hash) ?? []).slice().sort((a, b) => a.cycle - b.cycle);
    const plannedRuns = plannedByConfig.get(pc.config_hash) ?? runs.length;
    const counts = { completed: 0, failed: 0, skipped: 0, interrupted: 0, pending: 0, running: 0, invalid: 0 };
    const completed: RunResult[] = [];
    for (const run of runs) {
      const status: RunStatus = run.status;
      const result = usedResultOf(run, candidates.get(runKey(run.config_hash, run.cycle)) ?? []);
      const invalid = invalidAttemptsOf(run);
      for (const a of invalid) invalidAttempts.push({ index: run.index, run_id: run.run_id, config_hash: run.config_hash, label: pc.label, cycle: run.cycle, ...a, run_status: status });
      if (status === 'completed' && !result) {
        warnings.push(`run ${run.run_id} is completed in the manifest but its result.json is missing or invalid (excluded)`);
        excluded.push({
          index: run.index,
          run_id: run.run_id,
          config_hash: run.config_hash,
          label: pc.label,
          cycle: run.cycle,
          status: 'failed',
          error_type: 'InvalidResult',
          reason: 'result.json missing or invalid',
          attempts: run.attempts.length,
          phase_reached: null,
          invalid_attempts: [],
        });
        counts.failed++;
        continue;
      }
      counts[status]++;
      if (status === 'completed' && result) completed.push(result);
      else if (status === 'failed' || status === 'skipped' || status === 'interrupted' || status === 'invalid') {
        const { reason, phase } = reasonOf(run);
        excluded.push({
          index: run.index,
          run_id: run.run_id,
          config_hash: run.config_hash,
          label: pc.label,
          cycle: run.cycle,
          status,
          error_type: run.error_type ?? run.attempts.at(-1)?.error_type ?? null,
          reason,
          attempts: run.attempts.length,
          phase_reached: phase,
          invalid_attempts: status === 'invalid' ? invalid : [],
        });
      }
      // pending/running: counted, neither averaged nor listed as excluded
    }
    usedResults.push(...completed);
    studyCounts.planned += plannedRuns;
    for (const k of Object.keys(counts) as Array<keyof typeof counts>) studyCounts[k] += counts[k];

    const valuesByMetric = {} as Record<SummaryMetricKey, Array<number | null>>;
    for (const key of SUMMARY_METRIC_KEYS) valuesByMetric[key] = completed.map((r) => METRIC_GETTERS[key](r.metrics));
    const stats = describeMany(valuesByMetric, configStatsOptions(opts, bootstrapSeed, pc.config_hash));
    const metrics: Record<string, MetricSummary> = {};
    const highVariance: string[] = [];
    for (const key of SUMMARY_METRIC_KEYS) {
      metrics[key] = toMetricSummary(stats[key]);
      // The divergence is a small ratio whose CV is large by nature; it has its own validity flag.
      if (stats[key].high_variance && key !== 'energy_divergence') highVariance.push(key);
    }
    const flags: Partial<Record<FlagCode, number>> = {};
    for (const r of completed) {
      for (const code of new Set(r.flags.map((f) => f.code))) flags[code] = (flags[code] ?? 0) + 1;
    }
    const sweptValues: Record<string, Scalar> = {};
    for (const f of swept) sweptValues[f] = flat[i]![f] ?? null;
    return {
      config_hash: pc.config_hash,
      label: pc.label,
      swept: sweptValues,
      config: pc.config,
      planned_runs: plannedRuns,
      counts,
      partial: counts.completed < plannedRuns,
      metrics,
      flags: Object.fromEntries(FLAG_CODES.filter((c) => flags[c]).map((c) => [c, flags[c]!])) as Record<FlagCode, number>,
      high_variance_metrics: highVariance,
      runs: completed.map((r) => r.run_id),
      ...(target ? { stopping: stoppingOf(stopOf.get(pc.config_hash)) } : {}),
    };
  });

  excluded.sort((a, b) => a.index - b.index);
  const unfinished = studyCounts.pending + studyCounts.running + studyCounts.interrupted;
  return {
    schema_version: SUMMARY_SCHEMA_VERSION,
    generated_at: input.now ?? new Date().toISOString(),
    study: {
      name: plan.study_name,
      hash: plan.study_hash,
      source_path: plan.source_path,
      created_at: plan.created_at,
      status: input.snapshot ? input.snapshot.status : 'unknown',
      partial: unfinished > 0 || configs.some((c) => c.partial) || (input.snapshot !== null && input.snapshot.status !== 'completed' && input.snapshot.status !== 'failed'),
      counts: studyCounts,
    },
    protocol: {
      n_cycles: plan.execution.n_cycles,
      cycle_order: plan.execution.cycle_order,
      cycle_seed: plan.cycle_seed,
      shuffle_seed: plan.execution.shuffle_seed,
      config_gap_seconds: plan.execution.config_gap_seconds,
      cycle_gap_seconds: plan.execution.cycle_gap_seconds,
      cooldown: plan.execution.cooldown,
      experiment_timeout_seconds: plan.execution.experiment_timeout_seconds,
      stall_timeout_seconds: plan.execution.stall_timeout_seconds,
      parallel: plan.execution.parallel,
      planned_runs: plan.order.length,
      target: target
        ? { metric: target.metric, ci_half_width: describeHalfWidth(target.ci_half_width), min_cycles: target.min_cycles, max_cycles: target.max_cycles, decide: target.decide }
        : null,
    },
    environment: environmentOf(usedResults),
    statistics: {
      confidence: opts.confidence,
      bootstrap_method: 'percentile',
      bootstrap_resamples: opts.bootstrapResamples,
      bootstrap_seed: bootstrapSeed,
      seed_derivation: 'mulberry32 seeded with FNV-1a(bootstrap_seed, config_hash); metrics with the same n share resamples',
      std: 'sample (n - 1)',
      quantiles: 'linear interpolation (type 7)',
      high_variance_cv: opts.highVarianceCv,
      interval_shown: INTERVAL_SHOWN,
      metrics: SUMMARY_METRICS.map((m) => ({ key: m.key, label: m.label, unit: m.unit })),
    },
    swept_fields: swept,
    configs,
    excluded_runs: excluded,
    invalid_attempts: invalidAttempts,
    skipped_configs: plan.skipped.map((s) => ({ label: s.label, reasons: [...s.reasons] })),
    warnings,
  };
}
