// Issue 17: the ways a number could be wrong without anyone being told, each through `llem run`
// as a user runs it, on the fake NVML (real addon, real dlopen) or without a GPU library. The
// command backend's fixture program changes the fake GPU at known points inside the window
// (trigger files), so nothing here depends on timing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { fakeUuid } from '../native/fake.ts';
import { commandStudy, fakeGpuStudies, runStudy, type StudyRunOutcome } from './helpers.ts';
import { readManifest } from '../../src/study-dir/read.ts';
import { counterDeltaMj, trapezoidMj } from '../../src/measure/window.ts';
import type { RunResult } from '../../src/results/schema.ts';

const studies = fakeGpuStudies();
const tempRoot = () => studies.root();
const gpu = studies.gpu;

const codes = (r: RunResult) => r.flags.map((f) => f.code);
// A condition these tests record makes the run invalid under the default validity policy: they
// measure once (max_invalid_retries 0) and check the verdict the runner recorded, exit 1.
const ONCE = '{max_invalid_retries: 0}';
function endedInvalid(s: StudyRunOutcome, code: string): void {
  assert.equal(s.code, 1, s.stderr);
  for (const r of readManifest(s.studyDir).runs) {
    assert.equal(r.status, 'invalid');
    assert.ok(r.attempts[0]!.validity!.reasons.some((x) => x.code === code), JSON.stringify(r.attempts[0]!.validity));
  }
}

const only = <T>(xs: T[]): T => {
  assert.equal(xs.length, 1, `expected one, got ${xs.length}`);
  return xs[0]!;
};

test('1. failed requests are counted, out of the divisors, defined, and flagged', { timeout: 300_000 }, async () => {
  const root = tempRoot();
  const s = await runStudy(root, commandStudy({ n: 8, env: { FIXTURE_FAIL_EVERY: '2' }, validity: ONCE }), gpu(root, [{ power: [[0, 200_000]] }]));
  endedInvalid(s, 'failed_requests');
  const run = only(s.runs);
  const r = run.result!;
  const m = r.metrics;
  assert.equal(m.requests, 4);
  assert.equal(m.requests_failed, 4);
  assert.equal(m.output_tokens_failed, 4 * 2, 'the fixture\'s failed requests produced 2 tokens each');
  assert.equal(m.output_tokens, 4 * 4);
  assert.ok(m.energy_j !== null && m.energy_j > 0);
  assert.equal(m.energy_per_request_j, m.energy_j / 4, 'per request over the 4 that succeeded, with all the energy');
  assert.equal(m.energy_per_output_token_j, m.energy_j / 16);
  assert.match(r.definitions.energy_per_request_j!, /successful requests/);
  assert.match(r.definitions.energy_per_output_token_j!, /successful requests/);
  const flag = r.flags.find((f) => f.code === 'failed_requests');
  assert.match(flag?.message ?? '', /4 of 8 measured requests failed.*HTTP 500/);
  assert.match(run.workerLog, /\[warn\] 4 of 8 measured requests failed/);
});

for (const mode of ['error', 'unsupported'] as const) {
  test(`2. a counter that fails during the window (${mode}) falls back to polled power with a flag and a reason`, { timeout: 300_000 }, async () => {
    const root = tempRoot();
    const trigger = join(root, 'counter-fails');
    const env = gpu(root, [{ power: [[0, 200_000]], energyFailFile: { path: trigger, mode } }]);
    // Inside the window: the counter read at the start works, then fails until the stop read.
    const s = await runStudy(root, commandStudy({ n: 2, env: { FIXTURE_STEPS: `write:${trigger}=1;sleep:400` }, validity: ONCE }), env);
    endedInvalid(s, 'energy_method_fallback');
    const run = only(s.runs);
    const r = run.result!;
    assert.equal(r.metrics.energy_method, 'polled');
    assert.ok(r.metrics.energy_j !== null && Math.abs(r.metrics.energy_j - 200 * r.metrics.window_s) < 0.02 * 200 * r.metrics.window_s + 0.5);
    const flag = r.flags.find((f) => f.code === 'energy_method_fallback');
    assert.ok(flag, `flags: ${codes(r)}`);
    assert.match(flag.message, mode === 'error' ? /failed at the stop \(nvmlDeviceGetTotalEnergyConsumption: .*Unknown/ : /failed at the stop \(NOT_SUPPORTED/);
    assert.equal(r.metrics.energy_method_reason, flag.message);
    assert.ok(r.energy_window!.devices[0]!.start.energy_mj !== null && r.energy_window!.devices[0]!.stop!.energy_mj === null);
    if (mode === 'error') {
      // The sampler saw the errors too: kept in the result and in worker.log, not dropped.
      assert.ok(r.energy_window!.sampler_errors_total > 0);
      assert.match(r.energy_window!.sampler_errors[0]!, /Unknown/);
      assert.match(run.workerLog, /\[warn\] sampler: .*Unknown/);
    }
  });
}

test('3. the child\'s log lines land in worker.log; device-selection notes and MIG go into the result', { timeout: 300_000 }, async () => {
  const root = tempRoot();
  const mig = 'MIG-4f0ba6a5-1f8c-5b4d-9d0f-2b1a3c4d5e6f';
  const env = gpu(root, [{ power: [[0, 150_000]], migUuid: mig, mig: true }], { CUDA_VISIBLE_DEVICES: `${mig},xyz` });
  const s = await runStudy(root, commandStudy({ n: 2 }), env);
  assert.equal(s.code, 0, s.stderr);
  const run = only(s.runs);
  const r = run.result!;
  for (const re of [/\[info\] CUDA_VISIBLE_DEVICES entry 2 \("xyz"\)/, /\[info\] MIG: energy and power are those of the whole GPU/, /\[info\] baseline: measured/, /\[info\] measure window: child cpu_ms=/, /\[info\] command warms up on its own/]) {
    assert.match(run.workerLog, re);
  }
  assert.ok(r.device_selection_notes!.some((n) => /entry 2 \("xyz"\)/.test(n)), JSON.stringify(r.device_selection_notes));
  const flag = r.flags.find((f) => f.code === 'mig_whole_gpu');
  assert.match(flag?.message ?? '', new RegExp(fakeUuid(0)));
});

test('4a. no warmup ran: warmup_converged is null with a reason, not true', { timeout: 300_000 }, async () => {
  const root = tempRoot();
  const s = await runStudy(root, commandStudy({ n: 2 }), { LLEM_NVML_LIB: join(root, 'no-such-libnvidia-ml.so.1') });
  assert.equal(s.code, 0, s.stderr);
  const m = only(s.runs).result!.metrics;
  assert.equal(m.warmup_converged, null);
  assert.match(m.warmup_not_run_reason ?? '', /command warms up on its own/);
  assert.ok(!codes(only(s.runs).result!).includes('warmup_not_converged'));
});

test('5. baseline: counter energy ÷ duration, reuse names its source run, age and temperature; a baseline above the load is flagged', { timeout: 300_000 }, async () => {
  const root = tempRoot();
  const level = join(root, 'power-mw');
  // 400 W while idle; the program drops it to 100 W inside the window. The counter reads 1.25 ×
  // the power, so a baseline from the counter (500 W) and one from polled power (400 W) differ.
  const { writeFileSync } = await import('node:fs');
  writeFileSync(level, '400000');
  const env = gpu(root, [{ powerFile: level, energyScale: 1.25, temp: [[0, 45]] }]);
  const yaml = commandStudy({
    n: 2,
    cycles: 2,
    baseline: '{enabled: true, duration_seconds: 0.5, reuse_seconds: 600}',
    env: { FIXTURE_STEPS: `write:${level}=100000;sleep:600;write:${level}=400000` },
    validity: ONCE,
  });
  const s = await runStudy(root, yaml, env);
  endedInvalid(s, 'baseline_above_load');
  assert.equal(s.runs.length, 2);
  const [first, second] = s.runs.map((x) => x.result!);
  assert.equal(first!.baseline?.source, 'measured');
  assert.equal(first!.baseline?.method, 'counter');
  assert.ok(Math.abs(first!.metrics.baseline_power_w! - 500) < 5, `baseline ${first!.metrics.baseline_power_w} W: counter energy ÷ duration, not polled (400 W)`);
  assert.equal(first!.baseline?.source_run_id, first!.run_id);
  assert.equal(second!.baseline?.source, 'reused');
  assert.equal(second!.metrics.baseline_reused, true);
  assert.equal(second!.baseline?.source_run_id, first!.run_id);
  assert.ok(second!.baseline!.age_s! >= 0 && second!.baseline!.age_s! < 600);
  assert.equal(second!.baseline?.temperature_c, 45);
  assert.equal(second!.baseline?.current_temperature_c, 45);
  assert.equal(second!.metrics.baseline_power_w, first!.metrics.baseline_power_w);
  for (const r of [first!, second!]) {
    assert.ok(r.metrics.energy_adjusted_j! < 0, `adjusted ${r.metrics.energy_adjusted_j}`);
    assert.match(r.flags.find((f) => f.code === 'baseline_above_load')?.message ?? '', /energy_adjusted_j is -/);
  }
  assert.match(s.runs[1]!.workerLog, /\[info\] baseline: reused/);
});

/** power.csv rows of one device, in file order. */
function csvRows(text: string): Array<Record<string, string>> {
  return parseCsv(text, { columns: true, skip_empty_lines: true }) as Array<Record<string, string>>;
}

test('6. energy_j, energy_polled_j and window_s are reproducible from result.json edges and power.csv alone', { timeout: 300_000 }, async () => {
  const root = tempRoot();
  // Two GPUs with steps in power, an offset counter, so a wrong edge, unit or origin would show.
  const env = gpu(root, [
    { power: [[0, 120_000], [3, 310_000], [6, 95_000], [9, 450_000]], energyOffsetMj: 7_000_000 },
    { power: [[0, 250_000], [4, 180_000]], energyOffsetMj: 123_456 },
  ]);
  // The fake's power steps are on a clock: on a loaded machine the baseline can land on a higher
  // step than the window (baseline_above_load). What is checked here is arithmetic from the files,
  // so the gate only records those two conditions.
  const recordOnly = '{max_invalid_retries: 0, baseline_above_load: false, energy_divergence: false}';
  const s = await runStudy(root, commandStudy({ n: 2, env: { FIXTURE_STEPS: 'sleep:700' }, validity: recordOnly }), env);
  const verdict = readManifest(s.studyDir).runs[0]!.attempts[0]!.validity;
  assert.equal(s.code, 0, `${s.stderr}\n${JSON.stringify(verdict)}`);
  const run = only(s.runs);
  const r = run.result!;
  const rows = csvRows(run.powerCsv!);
  let counterJ = 0;
  let polledJ = 0;
  let t0 = Infinity;
  let t1 = -Infinity;
  for (const uuid of [fakeUuid(0), fakeUuid(1)]) {
    const mine = rows.filter((x) => x.device_uuid === uuid);
    assert.equal(mine[0]!.row, 'start');
    assert.equal(mine.at(-1)!.row, 'stop');
    assert.ok(mine.slice(1, -1).every((x) => x.row === 'sample'));
    counterJ += counterDeltaMj(mine.map((x) => Number(x.energy_counter_mj))).deltaMj / 1000;
    const ns = (x: Record<string, string>) => BigInt(Math.round(Number(x.t_s) * 1e9));
    polledJ += trapezoidMj(mine.map((x) => ({ tNs: ns(x), powerMw: Number(x.power_w) * 1000 })), ns(mine[0]!), ns(mine.at(-1)!))! / 1000;
    t0 = Math.min(t0, Number(mine[0]!.t_s));
    t1 = Math.max(t1, Number(mine.at(-1)!.t_s));
    // The result's own edge reads say the same.
    const edge = r.energy_window!.devices.find((d) => d.uuid === uuid)!;
    assert.equal(edge.start.energy_mj, Number(mine[0]!.energy_counter_mj));
    assert.equal(edge.stop!.energy_mj, Number(mine.at(-1)!.energy_counter_mj));
  }
  assert.ok(Math.abs(counterJ - r.metrics.energy_j!) < 1e-9, `from power.csv ${counterJ} J vs energy_j ${r.metrics.energy_j} J`);
  const fromEdges = r.energy_window!.devices.reduce((sum, d) => sum + (d.stop!.energy_mj! - d.start.energy_mj!) / 1000, 0);
  assert.ok(Math.abs(fromEdges - r.metrics.energy_j!) < 1e-9, `from the result's edges ${fromEdges} J`);
  assert.ok(Math.abs(t1 - t0 - r.metrics.window_s) < 2e-6, `window ${t1 - t0} s vs ${r.metrics.window_s} s`);
  assert.ok(Math.abs(polledJ - r.metrics.energy_polled_j!) < 1e-3, `polled from power.csv ${polledJ} J vs ${r.metrics.energy_polled_j} J`);
  assert.equal(r.metrics.energy_method, 'counter');
});

test('7. a GPU lost during the window nulls power_mean_w and power_peak_w with the energy', { timeout: 300_000 }, async () => {
  const root = tempRoot();
  const lost = join(root, 'gpu-lost');
  const env = gpu(root, [{ power: [[0, 300_000]], lostFile: lost }]);
  // Samples before the loss exist (300 ms at 50 ms), so a mean of them would be available.
  const s = await runStudy(root, commandStudy({ n: 2, env: { FIXTURE_STEPS: `sleep:300;write:${lost}=1;sleep:200` }, validity: ONCE }), env);
  endedInvalid(s, 'energy_unavailable');
  const r = only(s.runs).result!;
  assert.equal(r.metrics.energy_j, null);
  assert.match(r.metrics.energy_unavailable_reason ?? '', /GPU lost/);
  assert.equal(r.metrics.power_mean_w, null);
  assert.equal(r.metrics.power_peak_w, null);
  assert.ok(r.metrics.samples > 0, 'there were samples before the loss');
  assert.ok(codes(r).includes('energy_unavailable'));
});

test('4b. warmup converges only over a full window of prompts', { timeout: 300_000 }, async () => {
  const { startSseServer } = await import('../backends/fixtures/sse-server.ts');
  // Every request takes about the same ~60 ms, and the threshold is the loosest allowed (CV < 1):
  // any two latencies converge, so only the window decides (room for outliers on a loaded machine).
  const { server, port } = await startSseServer({ ttftMs: 40, itlMs: 5, tokens: 4, usage: true });
  try {
    const root = tempRoot();
    const yaml = [
      'name: warm',
      'backend: openai',
      'model: fixture',
      'n: 2',
      'max_new_tokens: 4',
      'warmup: {cv_threshold: 1, window: 5, min_prompts: 1, max_prompts: 20}',
      'baseline: {enabled: false}',
      'energy: {rapl: false}',
      `openai: {base_url: "http://127.0.0.1:${port}/v1", api_key_env: null}`,
      'execution: {n_cycles: 1, config_gap_seconds: 0}',
    ].join('\n') + '\n';
    const s = await runStudy(root, yaml, { LLEM_NVML_LIB: join(root, 'no-such-libnvidia-ml.so.1') });
    assert.equal(s.code, 0, s.stderr);
    const m = only(s.runs).result!.metrics;
    assert.equal(m.warmup_converged, true, `cv ${m.warmup_cv} over ${m.warmup_prompts} prompts`);
    assert.ok(m.warmup_prompts >= 5, `converged after ${m.warmup_prompts} prompts, fewer than the window of 5`);
    assert.equal(m.warmup_not_run_reason, null);
  } finally {
    server.close();
  }
});

test('4c. warmup defaults adapt to a user\'s max_prompts; an error about a default says it is one', { timeout: 300_000 }, async () => {
  const { execFile } = await import('node:child_process');
  const { writeFileSync } = await import('node:fs');
  const { llemBin } = await import('./helpers.ts');
  const root = tempRoot();
  const plan = (yaml: string) => {
    const path = join(root, `s${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(path, yaml);
    return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, [llemBin, 'plan', path, '--json'], { env: { ...process.env, LLEM_NVML_LIB: join(root, 'none.so') } }, (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code: number }).code) : 0, stdout, stderr }),
      ),
    );
  };
  const base = 'backend: llamacpp\nmodel: builtin:tiny-random\n';
  const three = await plan(`${base}warmup: {max_prompts: 3}\n`);
  assert.equal(three.code, 0, three.stderr);
  assert.equal(JSON.parse(three.stdout).configs, 1);
  // The effective values, from the same planner.
  const { planStudy } = await import('../../src/study/plan.ts');
  const effective = async (yaml: string) => {
    const path = join(root, `e${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(path, yaml);
    return (await planStudy(path, { gpuFreeMemoryBytes: null })).configAt(0).config.warmup;
  };
  assert.deepEqual(await effective(`${base}warmup: {max_prompts: 3}\n`), { cv_threshold: 0.05, max_prompts: 3, min_prompts: 3, window: 3 });
  assert.equal((await effective(`${base}warmup: {window: 40}\n`)).max_prompts, 40, 'the default max_prompts grows to the window');
  assert.deepEqual(await effective(`${base}warmup: {max_prompts: 0}\n`), { cv_threshold: 0.05, max_prompts: 0, min_prompts: 0, window: 5 });
  const one = await plan(`${base}warmup: {max_prompts: 1}\n`);
  assert.equal(one.code, 2);
  assert.match(one.stderr, /warmup\.window \(not set, so its default 5, capped at max_prompts\)/);
  const both = await plan(`${base}warmup: {max_prompts: 3, window: 4}\n`);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /warmup\.window 4 exceeds warmup\.max_prompts 3/);
});

test('8. a knob section for a backend an entry does not use is a skip reason; an unused top-level section is a warning', { timeout: 300_000 }, async () => {
  const { execFile } = await import('node:child_process');
  const { writeFileSync } = await import('node:fs');
  const { llemBin } = await import('./helpers.ts');
  const root = tempRoot();
  const path = join(root, 'study.yaml');
  writeFileSync(
    path,
    [
      'sglang: {mem_fraction_static: 0.8}',
      'experiments:',
      '  - {model: gpt2, backend: pytorch, vllm: {max_num_seqs: 64}}',
      '  - {model: builtin:tiny-random, backend: llamacpp}',
    ].join('\n') + '\n',
  );
  const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [llemBin, 'plan', path, '--json'], { env: { ...process.env, LLEM_NVML_LIB: join(root, 'none.so') } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code: number }).code) : 0, stdout, stderr }),
    ),
  );
  assert.equal(out.code, 0, out.stderr);
  const plan = JSON.parse(out.stdout) as { skipped: Array<{ label: string; reasons: string[] }>; warnings: string[]; configs: number };
  assert.equal(plan.configs, 1);
  const skip = only(plan.skipped);
  assert.match(skip.reasons.join('\n'), /experiments\[0\] has a vllm: section \(max_num_seqs\), but the entry uses backend pytorch/);
  assert.ok(plan.warnings.some((w) => /top-level sglang: section applies to no config/.test(w)), plan.warnings.join('\n'));
});
