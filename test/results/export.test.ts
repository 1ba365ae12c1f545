// `llem export` (issue 16): every value read back by an INDEPENDENT Parquet reader (parquet-wasm:
// the Rust arrow-rs reader, decoded through apache-arrow; the writer is hyparquet-writer, pure JS)
// and compared with the run's result.json; CSV read back by csv-parse; metadata present everywhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { readParquet } from 'parquet-wasm';
import { tableFromIPC } from 'apache-arrow';
import { runExport } from '../../src/cli/export.ts';
import { METRIC_GETTERS } from '../../src/results/summarize.ts';
import { SUMMARY_METRICS } from '../../src/results/summary-schema.ts';
import { FLAG_CODES, runResultSchema, type RunResult } from '../../src/results/schema.ts';
import { UNSTABLE_FLAGS } from '../../src/results/export.ts';
import { makeGrid, makePlan, makeResult, writeStudyDir } from './fixtures.ts';

/** 2 configs × 3 cycles, one run without a result, one without energy, one open-loop with arrival metrics. */
async function studyDir() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'llem-export-'));
  const configs = makeGrid([1, 4]);
  const plan = makePlan(configs, 3);
  const failed = configs[1]!;
  const results = plan.order
    .filter((o) => !(o.config_hash === failed.hash && o.cycle === 3))
    .map((o) => {
      const c = configs.find((x) => x.hash === o.config_hash)!;
      const r = makeResult(c, o.index, o.cycle, {
        energy_j: 100 + o.index * 1.25,
        energy_per_output_token_j: (100 + o.index * 1.25) / 200,
        energy_per_request_j: (100 + o.index * 1.25) / 8,
        output_tokens_per_s: 20 + o.index / 7,
        itl_ms: { mean: 10 + o.index, p50: 9 + o.index, p90: 12, p95: 13.5, p99: 20 },
      });
      if (o.index === 1) {
        r.metrics.energy_j = null;
        r.metrics.energy_per_output_token_j = null;
        r.metrics.energy_per_request_j = null;
        r.metrics.energy_unavailable_reason = 'NVML not found';
        r.flags = [{ code: 'energy_unavailable', message: 'NVML not found' }];
        // no NVML on that machine: a speed-only run the validity gate's defaults accept (on a
        // machine with a GPU, energy_unavailable makes a run invalid)
        r.environment.nvml = { available: false, reason: 'NVML not found', driver_version: null, cuda_driver_version: null };
        r.environment.gpus = [];
      }
      if (o.index === 2) {
        r.metrics.arrival = { offered_rate_per_s: 8, arrival: 'poisson', scheduled_rate_per_s: 7.6, achieved_rate_per_s: 7.5, queueing_ms: { mean: 1, p50: 0.5, p95: 3.25 }, over_saturated: false };
        r.dataset = { sha256: 'sha256:abc', prompts: 48 };
      }
      return r;
    });
  // No manifest: the run without a result reads as pending (a failed run in a real study).
  await writeStudyDir(dir, plan, results);
  return { dir, plan, results };
}

function readParquetRows(buf: Buffer): { rows: Array<Record<string, unknown>>; metadata: Map<string, string> } {
  const table = tableFromIPC(readParquet(new Uint8Array(buf)).intoIPCStream());
  return { rows: table.toArray().map((row) => row.toJSON() as Record<string, unknown>), metadata: table.schema.metadata };
}

function same(actual: unknown, expected: unknown, what: string): void {
  if (expected === null || expected === undefined) assert.ok(actual === null || actual === undefined || actual === '', `${what}: expected empty, got ${String(actual)}`);
  else if (typeof expected === 'number') assert.equal(Number(actual), expected, what);
  else assert.equal(actual, expected, what);
}

test('parquet export: every value, read back by parquet-wasm (arrow-rs), equals result.json; failed runs are rows with empty metrics', async () => {
  const { dir, results } = await studyDir();
  try {
    const out = path.join(dir, 'x.parquet');
    const w = await runExport(dir, { format: 'parquet', out });
    assert.deepEqual(w.files, [out, `${out}.meta.json`]);
    const { rows, metadata } = readParquetRows(await readFile(out));
    assert.equal(rows.length, 6, 'one row per planned run');
    assert.equal(metadata.get('llem.study_hash'), 'abcdef0123456789');
    const meta = JSON.parse(metadata.get('llem.export')!);
    assert.equal(meta.columns.energy_per_output_token_j.unit, 'J');
    assert.ok(meta.columns.ttft_p95_ms.definition.length > 0);
    const onDisk = new Map<string, RunResult>();
    for (const r of results) onDisk.set(r.run_id, runResultSchema.parse(JSON.parse(await readFile(path.join(dir, 'runs', r.run_id, 'result.json'), 'utf8'))));
    let compared = 0;
    for (const row of rows) {
      assert.equal(row.study_hash, 'abcdef0123456789');
      const r = onDisk.get(String(row.run_id));
      if (!r) {
        assert.equal(row.status, 'pending');
        for (const m of SUMMARY_METRICS) assert.equal(row[m.key], null, `${row.run_id} ${m.key} is empty, never 0`);
        continue;
      }
      for (const m of SUMMARY_METRICS) {
        same(row[m.key], METRIC_GETTERS[m.key](r.metrics), `${r.run_id} ${m.key}`);
        compared++;
      }
      same(row.window_s, r.metrics.window_s, 'window_s');
      same(row.requests, r.metrics.requests, 'requests');
      same(row.output_tokens, r.metrics.output_tokens, 'output_tokens');
      same(row.cycle, r.cycle, 'cycle');
      same(row.config_hash, r.config_hash, 'config_hash');
      same(row.flags, [...new Set(r.flags.map((f) => f.code))].join(' '), 'flags');
      same(row.achieved_rate_per_s, r.metrics.arrival?.achieved_rate_per_s ?? null, 'achieved_rate_per_s');
      same(row.queueing_p95_ms, r.metrics.arrival?.queueing_ms.p95 ?? null, 'queueing_p95_ms');
      same(row.dataset_sha256, r.dataset?.sha256 ?? null, 'dataset_sha256');
      same(row.gpu_model, r.environment.gpus.length > 0 ? 'NVIDIA H100' : null, 'gpu_model');
    }
    assert.equal(compared, 5 * SUMMARY_METRICS.length);
    const sidecar = JSON.parse(await readFile(`${out}.meta.json`, 'utf8'));
    assert.equal(sidecar.study_hash, 'abcdef0123456789');
    assert.deepEqual(sidecar.columns, meta.columns);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('mlenergy export: ML.ENERGY column names and units, Parquet and CSV with the same values as result.json', async () => {
  const { dir, results } = await studyDir();
  try {
    const w = await runExport(dir, { format: 'mlenergy', out: path.join(dir, 'ml.parquet') });
    assert.deepEqual(w.files.map((f) => path.basename(f)), ['ml.parquet', 'ml.parquet.meta.json', 'ml.csv', 'ml.csv.meta.json']);
    const { rows, metadata } = readParquetRows(await readFile(path.join(dir, 'ml.parquet')));
    const csvRows = parse(await readFile(path.join(dir, 'ml.csv'), 'utf8'), { columns: true }) as Array<Record<string, string>>;
    assert.equal(rows.length, results.length);
    assert.equal(csvRows.length, results.length);
    assert.equal(metadata.get('llem.study_hash'), 'abcdef0123456789');
    for (const name of ['energy_per_token_joules', 'output_throughput_tokens_per_sec', 'avg_power_watts', 'mean_itl_ms', 'p95_itl_ms', 'is_stable', 'gpu_model', 'num_gpus', 'max_num_seqs', 'model_id', 'task']) {
      assert.ok(name in rows[0]!, `column ${name}`);
    }
    for (const [i, row] of rows.entries()) {
      const r = results.find((x) => x.run_id === row.llem_run_id)!;
      const m = r.metrics;
      const expected: Record<string, unknown> = {
        energy_per_token_joules: m.energy_per_output_token_j,
        steady_state_energy_joules: m.energy_j,
        steady_state_duration_seconds: m.window_s,
        energy_per_request_joules: m.energy_per_request_j,
        output_throughput_tokens_per_sec: m.output_tokens_per_s,
        request_throughput_req_per_sec: m.requests_per_s,
        avg_power_watts: m.energy_j === null ? null : m.energy_j / m.window_s,
        total_output_tokens: m.output_tokens,
        completed_requests: m.requests,
        mean_itl_ms: m.itl_ms.mean,
        median_itl_ms: m.itl_ms.p50,
        p90_itl_ms: m.itl_ms.p90,
        p95_itl_ms: m.itl_ms.p95,
        p99_itl_ms: m.itl_ms.p99,
        max_num_seqs: r.config.batch_size,
        model_id: r.model.id,
        llem_config_hash: r.config_hash,
        llem_ttft_p95_ms: m.ttft_ms.p95,
      };
      for (const [k, v] of Object.entries(expected)) {
        same(row[k], v, `parquet ${r.run_id} ${k}`);
        const fromCsv = csvRows.find((x) => x.llem_run_id === r.run_id)![k];
        same(fromCsv === '' ? null : typeof v === 'number' ? Number(fromCsv) : fromCsv, v, `csv ${r.run_id} ${k}`);
      }
      const unstable = r.flags.some((f) => f.code === 'energy_unavailable');
      assert.equal(row.is_stable, !unstable, `row ${i} is_stable`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('aienergyscore export: GPU Wh per 1,000 queries per config with its CI, task and dataset named; csv export; bad format is exit 2', async () => {
  const { dir, results } = await studyDir();
  try {
    const out = path.join(dir, 'aes.csv');
    await runExport(dir, { format: 'aienergyscore', out });
    const rows = parse(await readFile(out, 'utf8'), { columns: true }) as Array<Record<string, string>>;
    assert.equal(rows.length, 2);
    const first = rows[0]!;
    const perRequest = results.filter((r) => r.config_hash === first.llem_config_hash).map((r) => r.metrics.energy_per_request_j).filter((v): v is number => v !== null);
    const meanWh = (perRequest.reduce((a, b) => a + b, 0) / perRequest.length) * 1000 / 3600;
    assert.ok(Math.abs(Number(first.gpu_energy_wh_per_1000_queries) - meanWh) < 1e-12);
    assert.equal(first.task, 'text_generation');
    assert.equal(first.dataset, 'builtin:default');
    assert.equal(first.hardware, 'NVIDIA H100');
    assert.ok(Number(first.gpu_energy_wh_per_1000_queries_ci_low) <= meanWh && meanWh <= Number(first.gpu_energy_wh_per_1000_queries_ci_high));
    const meta = JSON.parse(await readFile(`${out}.meta.json`, 'utf8'));
    assert.equal(meta.study_hash, 'abcdef0123456789');
    assert.match(meta.columns.gpu_energy_wh_per_1000_queries.definition, /per 1,000 queries/);
    const csv = await runExport(dir, { format: 'csv' });
    assert.match(csv.files[0]!, /-csv\.csv$/);
    await assert.rejects(runExport(dir, { format: 'xlsx' }), (err: Error & { exitCode?: number }) => err.exitCode === 2 && /expected one of mlenergy, aienergyscore, csv, parquet/.test(err.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('mlenergy is_stable: every flag that puts a number in doubt makes a row unstable, flags added later included', () => {
  // the issue-17 flags were once missing from a hand-kept list: a run kept under a lenient policy was exported as stable
  for (const f of ['failed_requests', 'energy_method_fallback', 'baseline_above_load', 'mig_whole_gpu', 'gpu_setting_drift', 'energy_unavailable', 'thermal_throttle', 'over_saturated'] as const) {
    assert.ok(UNSTABLE_FLAGS.has(f), `${f} makes a row unstable`);
  }
  // the stable ones inform without doubting a number; anything else in FLAG_CODES is unstable
  const stable = FLAG_CODES.filter((f) => !UNSTABLE_FLAGS.has(f));
  assert.deepEqual([...stable].sort(), ['baseline_stale', 'builtin_model', 'persistence_mode_off']);
});
