// Every column of `llem export` (csv, parquet, mlenergy) against the run's result.json as read
// back from disk and the manifest, for every row: the expected values are written out here from
// the result's own fields (no getter of the export or the summary), and the set of columns must be
// exactly the set checked, so a new column fails until it is checked too. The study has a manifest
// with every kind of run: completed (one after an invalid attempt), failed, skipped, interrupted,
// invalid; closed and open loop (rate 8 and inf); counter and polled energy; one and two GPUs; no NVML.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { readParquet } from 'parquet-wasm';
import { tableFromIPC } from 'apache-arrow';
import { runExport } from '../../src/cli/export.ts';
import { manifestSchema, type AttemptRecord, type RunRecord } from '../../src/study-dir/schema.ts';
import { runResultSchema, type FlagCode, type RunResult } from '../../src/results/schema.ts';
import { makeConfig, makePlan, makeResult, runIdOf, writeStudyDir, type ConfigFixture } from './fixtures.ts';

const STUDY_HASH = 'abcdef0123456789';
const GGUF = '/models/Llama-3.2-1B-Instruct-Q8_0.gguf';
const HF = 'meta-llama/Llama-3.2-1B-Instruct';

const CONFIGS: ConfigFixture[] = [
  { hash: 'c1c1c1c1c1c1c1c1', label: 'llamacpp bs=1', config: makeConfig({ model: GGUF, batch_size: 1 }) },
  { hash: 'c2c2c2c2c2c2c2c2', label: 'llamacpp bs=4 inf', config: makeConfig({ model: GGUF, batch_size: 4, request_rate: 'inf', arrival: 'poisson' }) },
  {
    hash: 'c3c3c3c3c3c3c3c3',
    label: 'vllm bs=4 8/s',
    config: makeConfig({
      model: HF,
      backend: 'vllm',
      precision: 'fp16',
      batch_size: 4,
      dataset: { kind: 'jsonl', path: '/data/prompts.jsonl' },
      request_rate: 8,
      arrival: 'poisson',
      params: { tensor_parallel_size: 2 },
    }),
  },
];
/** By hand from CONFIGS: what differs between them (request_rate is null, not a value, in closed loop). */
const SWEPT = ['model', 'backend', 'precision', 'batch_size', 'dataset', 'request_rate'];
const DATASET_LABEL: Record<string, string> = { c1c1c1c1c1c1c1c1: 'builtin:default', c2c2c2c2c2c2c2c2: 'builtin:default', c3c3c3c3c3c3c3c3: 'jsonl:/data/prompts.jsonl' };
/** Flags that do not make an ML.ENERGY row unstable (they inform without doubting a number). */
const STABLE = new Set<FlagCode>(['persistence_mode_off', 'baseline_stale', 'builtin_model']);

/** Every number of a run distinct from every other run's, so a value taken from the wrong run or field shows. */
function resultOf(c: ConfigFixture, index: number, cycle: number, attempt = 1, seed = index): RunResult {
  const k = seed + 1;
  const p = (base: number) => ({ mean: base + k, p50: base + 1.5 * k, p90: base + 2.25 * k, p95: base + 3.125 * k, p99: base + 4.0625 * k });
  const r = makeResult(
    c,
    index,
    cycle,
    {
      energy_j: 100 + 7.25 * k,
      energy_polled_j: 101 + 7.25 * k,
      energy_divergence: 0.001 * k,
      baseline_power_w: 40 + 0.5 * k,
      energy_adjusted_j: 60 + 3.5 * k,
      energy_per_output_token_j: 0.4 + 0.01 * k,
      energy_per_output_token_adjusted_j: 0.2 + 0.01 * k,
      energy_per_request_j: 12 + 0.75 * k,
      energy_per_request_adjusted_j: 6 + 0.5 * k,
      requests: 8 + k,
      input_tokens: 400 + k,
      output_tokens: 200 + 3 * k,
      window_s: 10 + 0.125 * k,
      output_tokens_per_s: 20 + 0.3 * k,
      requests_per_s: 0.8 + 0.05 * k,
      ttft_ms: p(40),
      ttft_content_ms: p(41),
      itl_ms: p(10),
      tpot_ms: p(11),
      e2e_ms: p(400),
      power_mean_w: 150 + k,
      power_peak_w: 180 + 2 * k,
      temperature_max_c: 60 + k,
      memory_peak_bytes: 2e9 + 1e6 * k,
    },
    [],
    attempt,
  );
  r.dataset = { sha256: `sha256:${c.hash}`, prompts: 48 };
  if (c.config.backend === 'vllm') {
    r.backend.version = '0.8.5';
    r.environment.gpus.push({ ...r.environment.gpus[0]!, index: 1, uuid: 'GPU-fixture-1' });
  }
  return r;
}

const at = (hash: string, cycle: number) => ({ c: CONFIGS.find((c) => c.hash === hash)!, index: CONFIGS.findIndex((c) => c.hash === hash) + 3 * (cycle - 1), cycle });

function attempt(runDir: string, n: number, status: AttemptRecord['status'], over: Partial<AttemptRecord> = {}): AttemptRecord {
  return {
    attempt: n,
    started_at: '2026-01-01T00:00:00.000Z',
    ended_at: '2026-01-01T00:00:10.000Z',
    status,
    error_type: null,
    message: null,
    phase_reached: status === 'completed' || status === 'invalid' ? 'teardown' : 'measure',
    stderr_tail: null,
    pid: 1234,
    run_dir: `runs/${runDir}`,
    ...over,
  };
}

const invalidReasons = (detail: string) => [
  { code: 'thermal_throttle' as const, detail: `thermal throttling for ${detail} of the window` },
  { code: 'foreign_gpu_process' as const, detail: 'pid 4242 used the GPU during the window' },
];

/** 3 configs × 3 cycles, in plan order (cycle 1: c1 c2 c3, cycle 2 …), with a manifest. */
async function studyDir() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'llem-export-cols-'));
  const plan = makePlan(CONFIGS, 3, { study_hash: STUDY_HASH });
  const [c1, c2, c3] = CONFIGS.map((c) => c.hash) as [string, string, string];
  const onDisk: RunResult[] = [];
  const runs: RunRecord[] = [];
  const run = (hash: string, cycle: number, status: RunRecord['status'], attempts: AttemptRecord[], result: string | null, errorType: RunRecord['error_type'] = null): void => {
    const { index } = at(hash, cycle);
    runs.push({ index, run_id: runIdOf(index, hash, cycle), config_hash: hash, cycle, status, attempts, error_type: errorType, result, headline: null });
  };
  const completed = (hash: string, cycle: number, edit: (r: RunResult) => void = () => {}) => {
    const { c, index } = at(hash, cycle);
    const r = resultOf(c, index, cycle);
    edit(r);
    onDisk.push(r);
    run(hash, cycle, 'completed', [attempt(r.run_id, 1, 'completed')], `runs/${r.run_id}/result.json`);
  };
  // cycle 1
  completed(c1, 1);
  completed(c2, 1, (r) => {
    r.metrics.energy_method = 'polled';
    r.flags = [
      { code: 'energy_method_fallback', message: 'counter unsupported, polled power integrated' },
      { code: 'persistence_mode_off', message: 'persistence mode off' },
    ];
    r.metrics.arrival = { offered_rate_per_s: 'inf', arrival: 'poisson', scheduled_rate_per_s: null, achieved_rate_per_s: 0.95, queueing_ms: { mean: 30, p50: 25, p95: 61.5 }, over_saturated: null };
  });
  completed(c3, 1, (r) => {
    r.flags = [{ code: 'over_saturated', message: 'achieved 6.1 req/s of 7.9 scheduled' }];
    r.metrics.arrival = { offered_rate_per_s: 8, arrival: 'poisson', scheduled_rate_per_s: 7.9, achieved_rate_per_s: 6.1, queueing_ms: { mean: 80, p50: 70, p95: 212.25 }, over_saturated: true };
  });
  // cycle 2
  {
    const { index } = at(c1, 2);
    run(c1, 2, 'failed', [attempt(runIdOf(index, c1, 2), 1, 'failed', { error_type: 'ProcessCrash', message: 'killed by SIGSEGV' })], null, 'ProcessCrash');
  }
  {
    // invalid first attempt (its result stays on disk, wild numbers), then a valid one: the export uses the valid one
    const { c, index } = at(c2, 2);
    const bad = resultOf(c, index, 2, 1, 900);
    const good = resultOf(c, index, 2, 2);
    good.metrics.arrival = { offered_rate_per_s: 'inf', arrival: 'poisson', scheduled_rate_per_s: null, achieved_rate_per_s: 1.05, queueing_ms: { mean: 31, p50: 26, p95: 63.75 }, over_saturated: null };
    onDisk.push(bad, good);
    const reasons = invalidReasons('2.0 s');
    run(
      c2,
      2,
      'completed',
      [
        attempt(bad.run_id, 1, 'invalid', { message: `invalid: ${reasons.map((x) => `${x.code}: ${x.detail}`).join('; ')}`, validity: { valid: false, reasons, wait_before_retry: false } }),
        attempt(good.run_id, 2, 'completed', { validity: { valid: true, reasons: [], wait_before_retry: false } }),
      ],
      `runs/${good.run_id}/result.json`,
    );
  }
  {
    // every attempt invalid: the run is invalid, its results stay on disk and are in no row
    const { c, index } = at(c3, 2);
    const a1 = resultOf(c, index, 2, 1, 901);
    const a2 = resultOf(c, index, 2, 2, 902);
    onDisk.push(a1, a2);
    const r1 = invalidReasons('1.5 s');
    const r2 = invalidReasons('3.0 s');
    const msg = (rs: typeof r1) => `invalid: ${rs.map((x) => `${x.code}: ${x.detail}`).join('; ')}`;
    run(
      c3,
      2,
      'invalid',
      [
        attempt(a1.run_id, 1, 'invalid', { message: msg(r1), validity: { valid: false, reasons: r1, wait_before_retry: false } }),
        attempt(a2.run_id, 2, 'invalid', { message: msg(r2), validity: { valid: false, reasons: r2, wait_before_retry: false } }),
      ],
      null,
    );
  }
  // cycle 3
  {
    const { index } = at(c1, 3);
    run(c1, 3, 'skipped', [attempt(runIdOf(index, c1, 3), 1, 'skipped', { error_type: 'UserSkipped', message: 'skipped by the user in warmup' })], null, 'UserSkipped');
  }
  {
    const { index } = at(c2, 3);
    run(c2, 3, 'interrupted', [attempt(runIdOf(index, c2, 3), 1, 'interrupted', { error_type: 'UserInterrupted', message: 'Ctrl+C during measure' })], null, 'UserInterrupted');
  }
  completed(c3, 3, (r) => {
    // a machine without NVML: speed only, energy null with its reason, never 0 J
    r.metrics.energy_j = null;
    r.metrics.energy_polled_j = null;
    r.metrics.energy_divergence = null;
    r.metrics.energy_adjusted_j = null;
    r.metrics.energy_per_output_token_j = null;
    r.metrics.energy_per_output_token_adjusted_j = null;
    r.metrics.energy_per_request_j = null;
    r.metrics.energy_per_request_adjusted_j = null;
    r.metrics.power_mean_w = null;
    r.metrics.power_peak_w = null;
    r.metrics.energy_unavailable_reason = 'NVML not found';
    r.environment.nvml = { available: false, reason: 'NVML not found', driver_version: null, cuda_driver_version: null };
    r.environment.gpus = [];
    r.flags = [{ code: 'energy_unavailable', message: 'NVML not found' }];
    r.metrics.arrival = { offered_rate_per_s: 8, arrival: 'poisson', scheduled_rate_per_s: 8.1, achieved_rate_per_s: 7.95, queueing_ms: { mean: 5, p50: 4, p95: 9.5 }, over_saturated: false };
  });
  runs.sort((a, b) => a.index - b.index);
  assert.deepEqual(
    runs.map((r) => r.index),
    plan.order.map((o) => o.index),
  );
  await writeStudyDir(dir, plan, onDisk);
  const counts = { pending: 0, running: 0, completed: 0, failed: 0, skipped: 0, interrupted: 0, invalid: 0 };
  for (const r of runs) counts[r.status]++;
  const manifest = manifestSchema.parse({
    schema_version: 1,
    study_name: plan.study_name,
    study_hash: STUDY_HASH,
    study_yaml_sha256: null,
    status: 'failed',
    n_cycles: 3,
    created_at: plan.created_at,
    started_at: plan.created_at,
    updated_at: plan.created_at,
    counts,
    runs,
  });
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return { dir, runs };
}

/** A result as the export's reader sees it: read back from the study dir and checked by the schema. */
async function readBack(dir: string, rel: string): Promise<RunResult> {
  return runResultSchema.parse(JSON.parse(await readFile(path.join(dir, rel), 'utf8')));
}

type Expected = Record<string, string | number | boolean | null>;

const gpuModelOf = (r: RunResult) => (r.environment.gpus.length ? 'NVIDIA H100' : null);
const flagsOf = (r: RunResult) => r.flags.map((f) => f.code).join(' ');
const rateOf = (r: RunResult) => (r.metrics.arrival ? (r.metrics.arrival.offered_rate_per_s === 'inf' ? -1 : r.metrics.arrival.offered_rate_per_s) : null);

/** The run table's row (csv, parquet) of a manifest run, from the manifest and the result only. */
function expectedRunRow(run: RunRecord, r: RunResult | null): Expected {
  const c = CONFIGS.find((x) => x.hash === run.config_hash)!;
  const last = run.attempts.at(-1)!;
  const m = r?.metrics;
  const reason = r
    ? null
    : run.status === 'invalid'
      ? last.message // the runner's line of every reason of the last attempt (checked reason by reason below)
      : `${run.error_type}: ${last.message}`;
  return {
    study_hash: STUDY_HASH,
    run_id: r ? r.run_id : run.run_id,
    config_hash: run.config_hash,
    label: c.label,
    cycle: run.cycle,
    status: run.status,
    reason,
    // swept fields, from the plan's config
    model: c.config.model,
    backend: c.config.backend,
    precision: c.config.precision,
    batch_size: c.config.batch_size,
    dataset: DATASET_LABEL[c.hash]!,
    request_rate: c.config.request_rate ?? null,
    gpu_model: r ? gpuModelOf(r) : null,
    flags: r ? flagsOf(r) : null,
    energy_per_output_token_j: m?.energy_per_output_token_j ?? null,
    energy_per_output_token_adjusted_j: m?.energy_per_output_token_adjusted_j ?? null,
    output_tokens_per_s: m?.output_tokens_per_s ?? null,
    ttft_p50_ms: m?.ttft_ms.p50 ?? null,
    itl_p50_ms: m?.itl_ms.p50 ?? null,
    tpot_p50_ms: m?.tpot_ms.p50 ?? null,
    e2e_p50_ms: m?.e2e_ms.p50 ?? null,
    power_mean_w: m?.power_mean_w ?? null,
    power_peak_w: m?.power_peak_w ?? null,
    energy_j: m?.energy_j ?? null,
    energy_adjusted_j: m?.energy_adjusted_j ?? null,
    energy_per_request_j: m?.energy_per_request_j ?? null,
    requests_per_s: m?.requests_per_s ?? null,
    temperature_max_c: m?.temperature_max_c ?? null,
    memory_peak_bytes: m?.memory_peak_bytes ?? null,
    energy_divergence: m?.energy_divergence ?? null,
    ttft_p95_ms: m?.ttft_ms.p95 ?? null,
    itl_p95_ms: m?.itl_ms.p95 ?? null,
    tpot_p95_ms: m?.tpot_ms.p95 ?? null,
    e2e_p95_ms: m?.e2e_ms.p95 ?? null,
    window_s: m?.window_s ?? null,
    requests: m?.requests ?? null,
    output_tokens: m?.output_tokens ?? null,
    energy_method: m?.energy_method ?? null,
    offered_rate_per_s: r ? rateOf(r) : null,
    achieved_rate_per_s: m?.arrival?.achieved_rate_per_s ?? null,
    queueing_p95_ms: m?.arrival?.queueing_ms.p95 ?? null,
    over_saturated: m?.arrival?.over_saturated ?? null,
    dataset_sha256: r?.dataset?.sha256 ?? null,
  };
}

/** The ML.ENERGY row of a completed run, from its result only. */
function expectedMlenergyRow(r: RunResult, resultPath: string): Expected {
  const m = r.metrics;
  const unstable = r.flags.map((f) => f.code).filter((f) => !STABLE.has(f));
  return {
    domain: 'llm',
    task: DATASET_LABEL[r.config_hash]!,
    model_id: r.model.id,
    nickname: r.model.id === GGUF ? 'Llama-3.2-1B-Instruct-Q8_0' : 'Llama-3.2-1B-Instruct',
    architecture: null,
    total_params_billions: null,
    activated_params_billions: null,
    weight_precision: r.config.precision as string,
    gpu_model: gpuModelOf(r),
    num_gpus: r.environment.gpus.length,
    max_num_seqs: r.config.batch_size as number,
    seed: r.config.seed as number,
    tensor_parallel: r.config.backend === 'vllm' ? 2 : null,
    steady_state_energy_joules: m.energy_j,
    steady_state_duration_seconds: m.window_s,
    energy_per_token_joules: m.energy_per_output_token_j,
    energy_per_request_joules: m.energy_per_request_j,
    output_throughput_tokens_per_sec: m.output_tokens_per_s,
    request_throughput_req_per_sec: m.requests_per_s,
    avg_power_watts: m.energy_j === null ? null : m.energy_j / m.window_s,
    total_output_tokens: m.output_tokens,
    completed_requests: m.requests,
    avg_output_len: m.output_tokens / m.requests,
    mean_itl_ms: m.itl_ms.mean,
    median_itl_ms: m.itl_ms.p50,
    p50_itl_ms: m.itl_ms.p50,
    p90_itl_ms: m.itl_ms.p90,
    p95_itl_ms: m.itl_ms.p95,
    p99_itl_ms: m.itl_ms.p99,
    is_stable: unstable.length === 0,
    unstable_reason: unstable.join(' ') || null,
    results_path: resultPath,
    llem_study_hash: STUDY_HASH,
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
    llem_request_rate: rateOf(r),
    llem_flags: flagsOf(r) || null,
    llem_dataset_sha256: r.dataset?.sha256 ?? null,
  };
}

/** One cell against its expected value: empty for null (never 0), numbers exactly, booleans as true/false. */
function checkCell(actual: unknown, expected: Expected[string], what: string): void {
  if (expected === null) assert.ok(actual === null || actual === undefined || actual === '', `${what}: expected empty, got ${String(actual)}`);
  else if (typeof expected === 'number') {
    assert.ok(actual !== '' && actual !== null, `${what}: expected ${expected}, got empty`);
    assert.equal(Number(actual), expected, what);
  } else if (typeof expected === 'boolean') assert.equal(String(actual), String(expected), what);
  else assert.equal(String(actual), expected, what);
}

function checkColumns(header: string[], expected: Expected, what: string): void {
  assert.equal(new Set(header).size, header.length, `${what}: a column name appears twice: ${header.filter((h, i) => header.indexOf(h) !== i).join(', ')}`);
  assert.deepEqual([...header].sort(), Object.keys(expected).sort(), `${what}: the columns are exactly the ones checked`);
}

function csvOf(text: string): { header: string[]; rows: Array<Record<string, string>> } {
  const records = parse(text) as string[][];
  const header = records[0]!;
  return { header, rows: records.slice(1).map((rec) => Object.fromEntries(header.map((h, i) => [h, rec[i]!]))) };
}

function parquetOf(buf: Buffer): { header: string[]; rows: Array<Record<string, unknown>> } {
  const table = tableFromIPC(readParquet(new Uint8Array(buf)).intoIPCStream());
  return { header: table.schema.fields.map((f) => f.name), rows: table.toArray().map((row) => row.toJSON() as Record<string, unknown>) };
}

test('csv and parquet exports: every column of every planned run equals result.json and the manifest (status, reason, swept fields, metrics, arrival, dataset)', async () => {
  const { dir, runs } = await studyDir();
  try {
    const expected: Expected[] = [];
    for (const run of runs) expected.push(expectedRunRow(run, run.result ? await readBack(dir, run.result) : null));
    assert.deepEqual(
      expected.map((e) => e.status),
      ['completed', 'completed', 'completed', 'failed', 'completed', 'invalid', 'skipped', 'interrupted', 'completed'],
    );
    for (const format of ['csv', 'parquet'] as const) {
      const out = path.join(dir, `runs-table.${format}`);
      const w = await runExport(dir, { format, out });
      assert.deepEqual(w.files, [out, `${out}.meta.json`]);
      const { header, rows } = format === 'csv' ? csvOf(await readFile(out, 'utf8')) : parquetOf(await readFile(out));
      assert.equal(rows.length, runs.length, `${format}: one row per planned run`);
      checkColumns(header, expected[0]!, format);
      for (const [i, want] of expected.entries()) {
        const row = rows.find((x) => x.run_id === want.run_id);
        assert.ok(row, `${format}: a row for ${want.run_id}`);
        assert.equal(rows.indexOf(row), i, `${format}: rows in plan order`);
        for (const [k, v] of Object.entries(want)) checkCell(row[k], v, `${format} ${want.run_id} ${k}`);
      }
      // the invalid run's reason names every reason of its last attempt
      const invalidRun = runs.find((r) => r.status === 'invalid')!;
      const invalidRow = rows.find((x) => x.run_id === invalidRun.run_id)!;
      for (const reason of invalidRun.attempts.at(-1)!.validity!.reasons) assert.ok(String(invalidRow.reason).includes(`${reason.code}: ${reason.detail}`), `${format}: invalid reason names ${reason.code}`);
      assert.ok(!String(invalidRow.reason).includes('1.5 s'), `${format}: the last attempt's reasons, not the first's`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('csv export: its meta.json carries the study hash, the definition and unit of every column, and what is left out', async () => {
  const { dir, runs } = await studyDir();
  try {
    const out = path.join(dir, 'runs-table.csv');
    const before = Date.now();
    await runExport(dir, { format: 'csv', out });
    const { header } = csvOf(await readFile(out, 'utf8'));
    const meta = JSON.parse(await readFile(`${out}.meta.json`, 'utf8')) as {
      llem_export: string;
      study_name: string;
      study_hash: string;
      generated_at: string;
      grain: string;
      notes: string[];
      columns: Record<string, { unit: string; definition: string }>;
    };
    assert.equal(meta.llem_export, 'csv');
    assert.equal(meta.study_hash, STUDY_HASH);
    assert.equal(meta.study_name, 'fixture-study');
    assert.ok(Date.parse(meta.generated_at) >= before - 1000, meta.generated_at);
    assert.match(meta.grain, /one row per planned run/);
    assert.deepEqual(Object.keys(meta.columns).sort(), [...header].sort(), 'a definition for every column, and no other');
    for (const [name, c] of Object.entries(meta.columns)) assert.ok(c.definition.trim().length > 0, `${name} has a definition`);
    // metric definitions come from the results' own definitions when they carry one
    assert.equal(meta.columns.energy_j!.definition, 'counter difference over the window');
    assert.equal(meta.columns.energy_j!.unit, 'J');
    assert.equal(meta.columns.ttft_p95_ms!.unit, 'ms');
    assert.equal(meta.columns.offered_rate_per_s!.unit, 'req/s');
    assert.equal(meta.columns.power_mean_w!.unit, 'W');
    assert.match(meta.columns.offered_rate_per_s!.definition, /-1: inf/);
    // what is not in any row's numbers, counted from the manifest
    const completed = runs.filter((r) => r.status === 'completed').length;
    const invalidAttempts = runs.flatMap((r) => r.attempts).filter((a) => a.status === 'invalid').length;
    assert.equal(invalidAttempts, 3);
    assert.ok(meta.notes.includes(`partial study: ${completed} of ${runs.length} runs completed`), meta.notes.join('\n'));
    assert.ok(meta.notes.some((n) => n.startsWith(`${invalidAttempts} attempt(s) the validity gate judged invalid`)), meta.notes.join('\n'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('mlenergy export: every column of every row, Parquet and CSV, equals result.json; only completed runs are rows', async () => {
  const { dir, runs } = await studyDir();
  try {
    await runExport(dir, { format: 'mlenergy', out: path.join(dir, 'ml.parquet') });
    const expected: Expected[] = [];
    for (const run of runs) if (run.result) expected.push(expectedMlenergyRow(await readBack(dir, run.result), run.result));
    assert.equal(expected.length, 5);
    // the stability of each row, by hand: polled energy, over-saturation and no NVML put a number in doubt
    assert.deepEqual(
      expected.map((e) => [e.is_stable, e.unstable_reason]),
      [
        [true, null],
        [false, 'energy_method_fallback'],
        [false, 'over_saturated'],
        [true, null],
        [false, 'energy_unavailable'],
      ],
    );
    const files = { parquet: parquetOf(await readFile(path.join(dir, 'ml.parquet'))), csv: csvOf(await readFile(path.join(dir, 'ml.csv'), 'utf8')) };
    for (const [format, { header, rows }] of Object.entries(files)) {
      assert.equal(rows.length, expected.length, `${format}: one row per completed run`);
      checkColumns(header, expected[0]!, `mlenergy ${format}`);
      for (const want of expected) {
        const row = rows.find((x) => x.llem_run_id === want.llem_run_id);
        assert.ok(row, `${format}: a row for ${want.llem_run_id}`);
        for (const [k, v] of Object.entries(want)) checkCell(row[k], v, `mlenergy ${format} ${want.llem_run_id} ${k}`);
      }
    }
    for (const file of ['ml.parquet', 'ml.csv']) {
      const meta = JSON.parse(await readFile(path.join(dir, `${file}.meta.json`), 'utf8'));
      assert.equal(meta.study_hash, STUDY_HASH);
      assert.deepEqual(Object.keys(meta.columns).sort(), Object.keys(expected[0]!).sort());
      assert.ok(meta.notes.some((n: string) => n.startsWith('4 failed, skipped, interrupted or invalid runs are not rows')), meta.notes.join('\n'));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
