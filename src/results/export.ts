// Open exports of a study (`llem export`): tables in other projects' shapes, each carrying the study
// hash (a column and file metadata) and the definition and unit of every column (Parquet key-value
// metadata, and a <file>.meta.json beside every file). Building the tables is pure; writing is in
// writeExport.
//  - csv / parquet: llem's own run table, one row per planned run (failed and invalid ones
//    included, marked by status and reason, their metrics empty; a completed run's metrics are its
//    valid attempt's), every summary metric plus the arrival metrics and the dataset hash.
//  - every other format: only the results the summary uses; runs and attempts the validity gate
//    judged invalid are not rows (the export's notes count them).
//  - mlenergy: the columns of the ML.ENERGY benchmark's LLM run records (mlenergy-data's LLMRun:
//    energy_per_token_joules, avg_power_watts, mean_itl_ms, is_stable, …, same names and units),
//    one row per completed run, llem's own fields beside them prefixed llem_; Parquet plus CSV.
//  - aienergyscore: per config, GPU energy in Wh per 1,000 queries (AI Energy Score's headline
//    unit) with its 95 % interval, the task and dataset named.
import { stringify } from 'csv-stringify/sync';
import { parquetWriteBuffer } from 'hyparquet-writer';
import path from 'node:path';
import type { LoadedStudy } from './summary.ts';
import { FLAG_CODES, type FlagCode, type RunResult } from './schema.ts';
import { flattenConfig, METRIC_GETTERS, type Scalar } from './summarize.ts';
import { SUMMARY_METRICS, type StudySummary } from './summary-schema.ts';
import { ciOf } from './table.ts';
import { writeFileAtomic } from '../atomic-file.ts';

export const EXPORT_FORMATS = ['mlenergy', 'aienergyscore', 'csv', 'parquet'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ColumnDef {
  name: string;
  unit: string;
  definition: string;
}

export interface ExportTable {
  /** What the rows are (one per run, per config). */
  grain: string;
  columns: ColumnDef[];
  rows: Array<Record<string, Scalar>>;
}

export interface ExportMeta {
  llem_export: ExportFormat;
  study_name: string;
  study_hash: string;
  generated_at: string;
  grain: string;
  /** Other notes: what is left out and why. */
  notes: string[];
  columns: Record<string, { unit: string; definition: string }>;
}

const col = (name: string, unit: string, definition: string): ColumnDef => ({ name, unit, definition });

/** The completed results the summary uses (each completed run's valid attempt), by run_id. */
function usedResults(study: LoadedStudy, summary: StudySummary): Map<string, RunResult> {
  const byId = new Map(study.results.map((r) => [r.run_id, r]));
  const out = new Map<string, RunResult>();
  for (const c of summary.configs) for (const id of c.runs) if (byId.has(id)) out.set(id, byId.get(id)!);
  return out;
}

function gpuModel(r: RunResult): string | null {
  const names = [...new Set(r.environment.gpus.map((g) => g.name))];
  return names.length ? names.join(' + ') : null;
}

function datasetLabel(r: RunResult): string {
  return String(flattenConfig(r.config).dataset ?? 'unknown');
}

// --- llem's own run table (csv, parquet)

export function runExportTable(study: LoadedStudy, summary: StudySummary): ExportTable {
  const used = usedResults(study, summary);
  const configOf = new Map(study.plan.configs.map((c) => [c.config_hash, c]));
  const sweptOf = new Map(summary.configs.map((c) => [c.config_hash, c.swept]));
  const excluded = new Map(summary.excluded_runs.map((e) => [e.run_id, e]));
  const completedByKey = new Map([...used.values()].map((r) => [`${r.config_hash}:${r.cycle}`, r]));
  // A swept model or backend is already a column of its own: a second column of the same name
  // would make the CSV header ambiguous and the Parquet schema carry two fields of one name.
  const ownColumns = new Set(['model', 'backend']);
  const sweptColumns = summary.swept_fields.filter((f) => !ownColumns.has(f));
  const columns: ColumnDef[] = [
    col('study_hash', '', 'sha256 of the sorted config hashes of the study (first 16 hex)'),
    col('run_id', '', 'run identifier: <index>-<config_hash>-c<cycle>'),
    col('config_hash', '', 'sha256 of the canonical effective config (first 16 hex)'),
    col('label', '', 'config label from its swept fields'),
    col('cycle', '', 'cycle number, from 1'),
    col('status', '', 'completed | failed | skipped | interrupted | invalid | pending | running (invalid: the validity gate judged every attempt unusable; metrics empty)'),
    col('reason', '', 'why a run is not in the statistics (empty for completed runs; invalid: every reason of its last attempt)'),
    ...sweptColumns.map((f) => col(f, '', `swept config field ${f}`)),
    col('model', '', 'model as given in the study'),
    col('backend', '', 'inference backend'),
    col('gpu_model', '', 'GPU name(s) of the run'),
    col('flags', '', 'validity flag codes of the run, space-separated'),
    ...SUMMARY_METRICS.map((m) => col(m.key, m.unit, study.results[0]?.definitions[m.key] ?? `${m.label} of the run`)),
    col('window_s', 's', 'measurement window length'),
    col('requests', '', 'completed requests in the window'),
    col('output_tokens', '', 'output tokens of completed requests in the window'),
    col('energy_method', '', 'counter | polled: how energy_j was measured'),
    col('offered_rate_per_s', 'req/s', 'request_rate of an open-loop run (empty: closed loop; -1: inf)'),
    col('achieved_rate_per_s', 'req/s', 'departure rate of completed requests: (k − 1) ÷ (last − first completion)'),
    col('queueing_p95_ms', 'ms', 'p95 of the time from a request\'s scheduled arrival to its send'),
    col('over_saturated', '', 'achieved rate more than 5 % below the scheduled rate'),
    col('dataset_sha256', '', 'sha256 of the prompt set (every prompt\'s messages, in dataset order)'),
  ];
  const rows: Array<Record<string, Scalar>> = [];
  for (const o of study.plan.order) {
    const run = study.snapshot?.runs.find((x) => x.config_hash === o.config_hash && x.cycle === o.cycle);
    const r = completedByKey.get(`${o.config_hash}:${o.cycle}`);
    const pc = configOf.get(o.config_hash);
    // the config's swept values as the summary has them (gpu.* left at default: the recorded value)
    const swept = sweptOf.get(o.config_hash) ?? {};
    const runId = r?.run_id ?? run?.run_id ?? `${String(o.index).padStart(4, '0')}-${o.config_hash}-c${o.cycle}`;
    const row: Record<string, Scalar> = {
      study_hash: summary.study.hash,
      run_id: runId,
      config_hash: o.config_hash,
      label: pc?.label ?? o.config_hash,
      cycle: o.cycle,
      status: r ? 'completed' : (run?.status ?? 'pending'),
      reason: r ? null : (excluded.get(runId)?.reason ?? null),
    };
    for (const f of sweptColumns) row[f] = swept[f] ?? null;
    row.model = pc?.config.model ?? null;
    row.backend = pc?.config.backend ?? null;
    row.gpu_model = r ? gpuModel(r) : null;
    row.flags = r ? [...new Set(r.flags.map((f) => f.code))].join(' ') : null;
    for (const m of SUMMARY_METRICS) row[m.key] = r ? METRIC_GETTERS[m.key](r.metrics) : null;
    row.window_s = r?.metrics.window_s ?? null;
    row.requests = r?.metrics.requests ?? null;
    row.output_tokens = r?.metrics.output_tokens ?? null;
    row.energy_method = r?.metrics.energy_method ?? null;
    const a = r?.metrics.arrival ?? null;
    row.offered_rate_per_s = a ? (a.offered_rate_per_s === 'inf' ? -1 : a.offered_rate_per_s) : null;
    row.achieved_rate_per_s = a?.achieved_rate_per_s ?? null;
    row.queueing_p95_ms = a?.queueing_ms.p95 ?? null;
    row.over_saturated = a?.over_saturated ?? null;
    row.dataset_sha256 = r?.dataset?.sha256 ?? null;
    rows.push(row);
  }
  return { grain: 'one row per planned run (failed, skipped, invalid and unfinished runs included, their metrics empty)', columns, rows };
}

// --- ML.ENERGY

/** Flags that the ML.ENERGY stability check would fail a run for (its is_stable / unstable_reason). */
/**
 * Flags that say something about a run without putting its numbers in doubt: the only ones an
 * `is_stable` row may carry. Every other flag, a flag added later included, makes a row unstable
 * (failed requests, an energy method fallback, a setting that drifted, …).
 */
const STABLE_FLAGS: ReadonlySet<FlagCode> = new Set<FlagCode>(['persistence_mode_off', 'baseline_stale', 'builtin_model']);
export const UNSTABLE_FLAGS: ReadonlySet<FlagCode> = new Set(FLAG_CODES.filter((f) => !STABLE_FLAGS.has(f)));

export function mlenergyTable(study: LoadedStudy, summary: StudySummary): ExportTable {
  const columns: ColumnDef[] = [
    col('domain', '', 'always "llm"'),
    col('task', '', 'workload: llem\'s dataset (builtin:<name>, jsonl:<path>, synthetic:<tokens>)'),
    col('model_id', '', 'model identifier as given in the study'),
    col('nickname', '', 'model file or repository name'),
    col('architecture', '', 'not recorded by llem (empty)'),
    col('total_params_billions', 'B', 'not recorded by llem (empty)'),
    col('activated_params_billions', 'B', 'not recorded by llem (empty)'),
    col('weight_precision', '', 'llem precision (auto = the checkpoint\'s own dtype)'),
    col('gpu_model', '', 'GPU name(s) of the run'),
    col('num_gpus', '', 'GPUs measured in the run'),
    col('max_num_seqs', '', 'llem batch_size: requests in flight at once'),
    col('seed', '', 'workload seed'),
    col('tensor_parallel', '', 'tensor_parallel_size of vllm/sglang/trtllm configs, else empty'),
    col('steady_state_energy_joules', 'J', 'llem energy_j: GPU energy counter difference over the measurement window (the whole measured workload, not a steady-state slice)'),
    col('steady_state_duration_seconds', 's', 'llem window_s: measurement window length'),
    col('energy_per_token_joules', 'J', 'llem energy_per_output_token_j: energy_j ÷ output tokens'),
    col('energy_per_request_joules', 'J', 'llem energy_per_request_j: energy_j ÷ completed requests'),
    col('output_throughput_tokens_per_sec', 'tok/s', 'output tokens ÷ window_s'),
    col('request_throughput_req_per_sec', 'req/s', 'completed requests ÷ window_s'),
    col('avg_power_watts', 'W', 'energy_j ÷ window_s (as ML.ENERGY computes it)'),
    col('total_output_tokens', '', 'output tokens of completed requests in the window'),
    col('completed_requests', '', 'completed requests in the window'),
    col('avg_output_len', '', 'total_output_tokens ÷ completed_requests'),
    col('mean_itl_ms', 'ms', 'mean inter-token latency (gaps between consecutive tokens or chunks, first token excluded)'),
    col('median_itl_ms', 'ms', 'median inter-token latency'),
    col('p50_itl_ms', 'ms', 'p50 inter-token latency'),
    col('p90_itl_ms', 'ms', 'p90 inter-token latency'),
    col('p95_itl_ms', 'ms', 'p95 inter-token latency'),
    col('p99_itl_ms', 'ms', 'p99 inter-token latency'),
    col('is_stable', '', `no validity flag among ${[...UNSTABLE_FLAGS].join(', ')}`),
    col('unstable_reason', '', 'the validity flags that make the run unstable, space-separated'),
    col('results_path', '', 'result.json of the run, relative to the study directory'),
    col('llem_study_hash', '', 'llem study hash'),
    col('llem_run_id', '', 'llem run id'),
    col('llem_config_hash', '', 'llem config hash'),
    col('llem_cycle', '', 'cycle number'),
    col('llem_backend', '', 'inference backend'),
    col('llem_energy_method', '', 'counter | polled'),
    col('llem_energy_adjusted_j', 'J', 'energy_j − baseline_power_w × window_s'),
    col('llem_baseline_power_w', 'W', 'idle GPU power before the model loaded'),
    col('llem_power_mean_w', 'W', 'mean of polled GPU power over the window'),
    col('llem_ttft_p50_ms', 'ms', 'p50 time to first token'),
    col('llem_ttft_p95_ms', 'ms', 'p95 time to first token'),
    col('llem_e2e_p95_ms', 'ms', 'p95 end-to-end request latency'),
    col('llem_request_rate', 'req/s', 'offered request rate of an open-loop run (empty: closed loop; -1: inf)'),
    col('llem_flags', '', 'every validity flag code of the run'),
    col('llem_dataset_sha256', '', 'sha256 of the prompt set'),
  ];
  const rows: Array<Record<string, Scalar>> = [];
  for (const r of usedResults(study, summary).values()) {
    const m = r.metrics;
    const codes = [...new Set(r.flags.map((f) => f.code))];
    const unstable = codes.filter((c) => UNSTABLE_FLAGS.has(c));
    const params = (r.config.params ?? {}) as Record<string, unknown>;
    rows.push({
      domain: 'llm',
      task: datasetLabel(r),
      model_id: r.model.id,
      nickname: path.basename(r.model.id).replace(/\.gguf$/i, ''),
      architecture: null,
      total_params_billions: null,
      activated_params_billions: null,
      weight_precision: String(r.config.precision ?? 'auto'),
      gpu_model: gpuModel(r),
      num_gpus: r.environment.gpus.length,
      max_num_seqs: Number(r.config.batch_size),
      seed: Number(r.config.seed),
      tensor_parallel: typeof params.tensor_parallel_size === 'number' ? params.tensor_parallel_size : null,
      steady_state_energy_joules: m.energy_j,
      steady_state_duration_seconds: m.window_s,
      energy_per_token_joules: m.energy_per_output_token_j,
      energy_per_request_joules: m.energy_per_request_j,
      output_throughput_tokens_per_sec: m.output_tokens_per_s,
      request_throughput_req_per_sec: m.requests_per_s,
      avg_power_watts: m.energy_j !== null && m.window_s > 0 ? m.energy_j / m.window_s : null,
      total_output_tokens: m.output_tokens,
      completed_requests: m.requests,
      avg_output_len: m.requests > 0 ? m.output_tokens / m.requests : null,
      mean_itl_ms: m.itl_ms.mean,
      median_itl_ms: m.itl_ms.p50,
      p50_itl_ms: m.itl_ms.p50,
      p90_itl_ms: m.itl_ms.p90,
      p95_itl_ms: m.itl_ms.p95,
      p99_itl_ms: m.itl_ms.p99,
      is_stable: unstable.length === 0,
      unstable_reason: unstable.join(' '),
      results_path: study.resultPaths.get(r.run_id) ?? null,
      llem_study_hash: summary.study.hash,
      llem_run_id: r.run_id,
      llem_config_hash: r.config_hash,
      llem_cycle: r.cycle,
      llem_backend: r.backend.name,
      llem_energy_method: m.energy_method,
      llem_energy_adjusted_j: m.energy_adjusted_j,
      llem_baseline_power_w: m.baseline_power_w,
      llem_power_mean_w: m.power_mean_w,
      llem_ttft_p50_ms: m.ttft_ms.p50,
      llem_ttft_p95_ms: m.ttft_ms.p95,
      llem_e2e_p95_ms: m.e2e_ms.p95,
      llem_request_rate: m.arrival ? (m.arrival.offered_rate_per_s === 'inf' ? -1 : m.arrival.offered_rate_per_s) : null,
      llem_flags: codes.join(' '),
      llem_dataset_sha256: r.dataset?.sha256 ?? null,
    });
  }
  return { grain: 'one row per completed run (failed runs are not results; see llem export --format csv)', columns, rows };
}

// --- AI Energy Score

const J_PER_WH = 3600;

export function aiEnergyScoreTable(study: LoadedStudy, summary: StudySummary): ExportTable {
  const used = usedResults(study, summary);
  const columns: ColumnDef[] = [
    col('model', '', 'model as given in the study'),
    col('task', '', 'text_generation (llem measures LLM text generation)'),
    col('dataset', '', 'llem dataset of the config (builtin:<name>, jsonl:<path>, synthetic:<tokens>)'),
    col('hardware', '', 'GPU name(s) of the runs'),
    col('gpu_energy_wh_per_1000_queries', 'Wh', 'mean over cycles of energy_j ÷ completed requests × 1000 ÷ 3600: GPU energy per 1,000 queries'),
    col('gpu_energy_wh_per_1000_queries_ci_low', 'Wh', 'lower bound of its 95 % interval over cycles (the wider of Student t and percentile bootstrap)'),
    col('gpu_energy_wh_per_1000_queries_ci_high', 'Wh', 'upper bound of its 95 % interval'),
    col('runs', '', 'completed runs (cycles) the mean is over'),
    col('queries_per_run', '', 'measured requests per run (the config\'s n)'),
    col('max_new_tokens', '', 'output token limit per query'),
    col('batch_size', '', 'requests in flight at once'),
    col('llem_label', '', 'llem config label'),
    col('llem_config_hash', '', 'llem config hash'),
    col('llem_study_hash', '', 'llem study hash'),
  ];
  const toWh = (j: number | null | undefined) => (j === null || j === undefined ? null : (j * 1000) / J_PER_WH);
  const rows = summary.configs.map((c) => {
    const m = c.metrics.energy_per_request_j;
    const ci = ciOf(m);
    const runs = c.runs.map((id) => used.get(id)).filter((r): r is RunResult => !!r);
    const hardware = [...new Set(runs.map(gpuModel).filter((g): g is string => !!g))].join(', ') || null;
    const flat = flattenConfig(c.config);
    return {
      model: String(c.config.model ?? ''),
      task: 'text_generation',
      dataset: String(flat.dataset ?? 'unknown'),
      hardware,
      gpu_energy_wh_per_1000_queries: toWh(m?.mean),
      gpu_energy_wh_per_1000_queries_ci_low: toWh(ci?.[0]),
      gpu_energy_wh_per_1000_queries_ci_high: toWh(ci?.[1]),
      runs: m?.n ?? 0,
      queries_per_run: Number(c.config.n ?? 0),
      max_new_tokens: Number(c.config.max_new_tokens ?? 0),
      batch_size: Number(c.config.batch_size ?? 0),
      llem_label: c.label,
      llem_config_hash: c.config_hash,
      llem_study_hash: summary.study.hash,
    } satisfies Record<string, Scalar>;
  });
  return { grain: 'one row per config (mean over completed cycles)', columns, rows };
}

// --- writing

export function exportMeta(format: ExportFormat, summary: StudySummary, table: ExportTable, notes: string[], generatedAt: string): ExportMeta {
  return {
    llem_export: format,
    study_name: summary.study.name,
    study_hash: summary.study.hash,
    generated_at: generatedAt,
    grain: table.grain,
    notes,
    columns: Object.fromEntries(table.columns.map((c) => [c.name, { unit: c.unit, definition: c.definition }])),
  };
}

export function tableCsv(table: ExportTable): string {
  const names = table.columns.map((c) => c.name);
  return stringify(
    table.rows.map((r) => names.map((n) => r[n] ?? '')),
    { header: true, columns: names, cast: { boolean: (v) => (v ? 'true' : 'false') } },
  );
}

/** Parquet types from the values: DOUBLE for numbers, BOOLEAN, STRING; every column nullable. */
export function tableParquet(table: ExportTable, meta: ExportMeta): Buffer {
  const columnData = table.columns.map((c) => {
    const values = table.rows.map((r) => r[c.name] ?? null);
    const kinds = new Set(values.filter((v) => v !== null).map((v) => typeof v));
    const type = kinds.size === 1 && kinds.has('number') ? 'DOUBLE' : kinds.size === 1 && kinds.has('boolean') ? 'BOOLEAN' : 'STRING';
    const data = type === 'STRING' ? values.map((v) => (v === null ? null : String(v))) : values;
    return { name: c.name, data, type, nullable: true } as const;
  });
  const buf = parquetWriteBuffer({
    columnData,
    kvMetadata: [
      { key: 'llem.study_hash', value: meta.study_hash },
      { key: 'llem.export', value: JSON.stringify(meta) },
    ],
    createdBy: 'llem (hyparquet-writer)',
  });
  return Buffer.from(buf);
}

export interface WrittenExport {
  files: string[];
  rows: number;
}

/** Writes the export; `out` is the data file (mlenergy: its .parquet and .csv siblings). */
export async function writeExport(format: ExportFormat, study: LoadedStudy, summary: StudySummary, out: string, generatedAt = new Date().toISOString()): Promise<WrittenExport> {
  const table = format === 'mlenergy' ? mlenergyTable(study, summary) : format === 'aienergyscore' ? aiEnergyScoreTable(study, summary) : runExportTable(study, summary);
  const notes: string[] = [];
  if (summary.study.partial) notes.push(`partial study: ${summary.study.counts.completed} of ${summary.study.counts.planned} runs completed`);
  if (format === 'mlenergy' && summary.excluded_runs.length) notes.push(`${summary.excluded_runs.length} failed, skipped, interrupted or invalid runs are not rows (see --format csv)`);
  const invalid = summary.invalid_attempts.length;
  if (invalid > 0) notes.push(`${invalid} attempt(s) the validity gate judged invalid are in no row's metrics (summary.json invalid_attempts lists them with their reasons)`);
  const meta = exportMeta(format, summary, table, notes, generatedAt);
  const files: string[] = [];
  const write = async (file: string, data: string | Buffer) => {
    await writeFileAtomic(file, data);
    await writeFileAtomic(`${file}.meta.json`, JSON.stringify(meta, null, 2) + '\n');
    files.push(file, `${file}.meta.json`);
  };
  const stem = out.replace(/\.(parquet|csv)$/i, '');
  if (format === 'mlenergy') {
    await write(`${stem}.parquet`, tableParquet(table, meta));
    await write(`${stem}.csv`, tableCsv(table));
  } else if (format === 'parquet') await write(out, tableParquet(table, meta));
  else await write(out, tableCsv(table));
  return { files, rows: table.rows.length };
}
