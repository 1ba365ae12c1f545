// Done-when of issue 16 on real studies: `llem run` with the command backend (scripted latencies,
// test/results/fixtures/scripted-command.mjs) under the fake NVML at a known constant power, then
// the answers through the real CLI: the frontier and the goodput / J per good token equal values
// computed by hand from result.json and requests.jsonl; a second study under a fake NVML that
// differs only in its driver version makes `llem compare` refuse (exit 2, naming driver), and
// --allow-env-diff prints the table with the difference above it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, writeFakeScript } from '../native/fake.ts';
import { runResultSchema, type RunResult } from '../../src/results/schema.ts';

const run = promisify(execFile);
const llemBin = fileURLToPath(new URL('../../bin/llem.js', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/scripted-command.mjs', import.meta.url));
const POWER_W = 250;

let root = '';
const studies: Record<'a' | 'b', string> = { a: '', b: '' };

async function llem(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const full: NodeJS.ProcessEnv = { ...process.env, CI: 'true', COLUMNS: '220', ...env };
  // Every GPU the fake NVML scripts is visible (an empty CUDA_VISIBLE_DEVICES would hide them all).
  delete full.CUDA_VISIBLE_DEVICES;
  return run(process.execPath, [llemBin, ...args], { encoding: 'utf8', env: full, timeout: 280_000, maxBuffer: 16 << 20 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );
}

/** Runs the synthetic study under a fake NVML reporting `driver`; returns the study dir. */
async function runStudy(name: string, driver: string): Promise<string> {
  const libs = await buildFakeLibs();
  const dir = path.join(root, name);
  const script = writeFakeScript(root, { driverVersion: driver, devices: [{ power: [[0, POWER_W * 1000]], temp: [[0, 45]] }] }, `fake-${name}.txt`);
  const yaml = path.join(root, `${name}.yaml`);
  writeFileSync(
    yaml,
    [
      `name: ${name}`,
      'backend: command',
      'model: scripted',
      'n: 6',
      'max_new_tokens: 8',
      'baseline: {enabled: true, duration_seconds: 0.3, reuse_seconds: 0}',
      'energy: {rapl: false, sample_interval_ms: 50}',
      'slo: ttft_p95_ms<=100',
      'sweep:',
      `  command.argv: [[${JSON.stringify(process.execPath)}, ${JSON.stringify(fixture)}, "{records_file}", fast, "300"], [${JSON.stringify(process.execPath)}, ${JSON.stringify(fixture)}, "{records_file}", mixed, "700"]]`,
      'execution: {n_cycles: 3, cycle_order: interleaved, config_gap_seconds: 0, cycle_gap_seconds: 0}',
    ].join('\n') + '\n',
  );
  const r = await llem(['run', yaml, '--out', dir, '--yes', '--no-tui'], fakeGpuEnv(libs, script.path));
  assert.equal(r.code, 0, `llem run: ${r.stderr.slice(-3000)}`);
  return path.join(dir, readdirSync(dir)[0]!);
}

function resultsOf(studyDir: string): RunResult[] {
  return readdirSync(path.join(studyDir, 'runs')).map((d) => runResultSchema.parse(JSON.parse(readFileSync(path.join(studyDir, 'runs', d, 'result.json'), 'utf8'))));
}

function requestsOf(studyDir: string, runId: string): Array<{ start_ms: number; first_token_ms: number; output_tokens: number; error: string | null }> {
  return readFileSync(path.join(studyDir, 'runs', runId, 'requests.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

before(async () => {
  await ensureAddonBuilt();
  root = mkdtempSync(path.join(os.tmpdir(), 'llem-synthetic-'));
  studies.a = await runStudy('synth-a', '550.54.15');
  studies.b = await runStudy('synth-b', '560.35.03');
}, { timeout: 600_000 });

after(() => {
  if (root && !process.env.KEEP) rmSync(root, { recursive: true, force: true });
});

test('the synthetic study measured what the fake NVML scripted: energy = 250 W × window, baseline ≈ 250 W', () => {
  const results = resultsOf(studies.a);
  assert.equal(results.length, 6);
  for (const r of results) {
    const m = r.metrics;
    assert.ok(m.energy_j !== null && Math.abs(m.energy_j - POWER_W * m.window_s) <= 0.02 * POWER_W * m.window_s + 0.01, `${r.run_id}: ${m.energy_j} J over ${m.window_s} s`);
    // the baseline is counter energy ÷ duration (docs/MEASUREMENT.md): whole-mJ reads, so not exact
    assert.ok(Math.abs(m.baseline_power_w! - POWER_W) < 0.05, `${r.run_id}: baseline ${m.baseline_power_w} W`);
    assert.equal(r.environment.nvml.driver_version, '550.54.15');
    assert.match(r.dataset?.sha256 ?? '', /^sha256:[0-9a-f]{64}$/);
  }
});

test('goodput and J per good token equal the values computed by hand from result.json and requests.jsonl', async () => {
  const results = resultsOf(studies.a);
  const out = await llem(['results', studies.a, '--slo', 'ttft_p95_ms<=100', '--format', 'json']);
  assert.equal(out.code, 0, out.stderr);
  const slo = JSON.parse(out.stdout) as { configs: Array<Record<string, number | null | string>>; recommendation: { config_hash: string } };
  for (const c of slo.configs) {
    const runs = results.filter((r) => r.config_hash === c.config_hash).sort((x, y) => x.cycle - y.cycle);
    assert.equal(runs.length, 3);
    const perRun = runs.map((r) => {
      const reqs = requestsOf(studies.a, r.run_id);
      const good = reqs.filter((q) => q.error === null && q.first_token_ms - q.start_ms <= 100);
      const goodTokens = good.reduce((s, q) => s + q.output_tokens, 0);
      return { goodRps: good.length / r.metrics.window_s, goodTps: goodTokens / r.metrics.window_s, jPerGood: goodTokens ? r.metrics.energy_j! / goodTokens : null, fraction: good.length / reqs.length };
    });
    assert.equal(c.goodput_requests_per_s, mean(perRun.map((p) => p.goodRps)));
    assert.equal(c.goodput_tokens_per_s, mean(perRun.map((p) => p.goodTps)));
    assert.equal(c.energy_per_good_token_j, mean(perRun.map((p) => p.jPerGood!)));
    assert.equal(c.good_fraction, mean(perRun.map((p) => p.fraction)));
  }
  // fast: every request good; mixed: half of them (TTFT 30 ms at odd positions, 150 ms at even).
  assert.deepEqual(slo.configs.map((c) => c.good_fraction).sort(), [0.5, 1]);
  const fast = slo.configs.find((c) => c.good_fraction === 1)!;
  assert.equal(slo.recommendation.config_hash, fast.config_hash, 'the config whose requests all meet the SLO, at less energy per good token');
});

test('the frontier equals the hand-computed means, and no config is called dominated while the intervals overlap', async () => {
  const results = resultsOf(studies.a);
  const out = await llem(['results', studies.a, '--frontier', '--format', 'json']);
  assert.equal(out.code, 0, out.stderr);
  const rows = JSON.parse(out.stdout) as Array<{
    config_hash: string; ttft_p95_ms: number; ttft_p95_ms_ci_low: number; ttft_p95_ms_ci_high: number;
    energy_per_output_token_j: number; energy_per_output_token_j_ci_low: number; energy_per_output_token_j_ci_high: number;
    on_frontier: boolean; dominated_by: string[]; status: string;
  }>;
  assert.equal(rows.length, 2);
  for (const row of rows) {
    const runs = results.filter((r) => r.config_hash === row.config_hash).sort((x, y) => x.cycle - y.cycle);
    assert.equal(row.ttft_p95_ms, mean(runs.map((r) => r.metrics.ttft_ms.p95!)));
    assert.equal(row.energy_per_output_token_j, mean(runs.map((r) => r.metrics.energy_per_output_token_j!)));
    // By hand: the scripted TTFTs make fast's p95 30 ms in every run; mixed's is 150 ms.
    assert.ok([30, 150].includes(row.ttft_p95_ms));
  }
  const [fast, mixed] = [...rows].sort((x, y) => x.ttft_p95_ms - y.ttft_p95_ms);
  // fast sleeps 300 ms and mixed 700 ms for the same tokens at the same power: fast is better on
  // both axes. Dominated exactly when fast's energy interval lies wholly below mixed's.
  const separated = fast!.energy_per_output_token_j_ci_high < mixed!.energy_per_output_token_j_ci_low;
  assert.equal(fast!.status, 'frontier');
  assert.equal(mixed!.status, separated ? 'dominated' : 'not_separable');
  assert.deepEqual(mixed!.dominated_by, separated ? [fast!.config_hash] : []);
  assert.equal(mixed!.on_frontier, !separated);
});

test('compare: studies under fake NVMLs that differ only in the driver: exit 2 naming driver; --allow-env-diff puts it above the table', async () => {
  const refused = await llem(['compare', studies.a, studies.b]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /driver \(NVIDIA driver\): A 550\.54\.15 · B 560\.35\.03/);
  assert.doesNotMatch(refused.stderr, /\bgpu\b \(GPU model\)|power_limit|dataset_sha256/, 'nothing else that changes the numbers differs');
  const allowed = await llem(['compare', studies.a, studies.b, '--allow-env-diff']);
  assert.equal(allowed.code, 0, allowed.stderr);
  const [header, table] = allowed.stdout.split('┌');
  assert.match(header!, /ENVIRONMENTS DIFFER \(1 difference\(s\) that change the meaning of the numbers\)/);
  assert.match(header!, /! driver \(NVIDIA driver\): A 550\.54\.15 · B 560\.35\.03/);
  assert.match(table!, /J\/token/);
  assert.match(table!, /B\/A \[95 % CI\]/);
});

test('on the real study, energy_adjusted_j at constant power is called high-variance only when its interval excludes zero', () => {
  // The fake's counter is the exact integral of 250 W, so the adjusted energy is timing noise
  // around 0 J with a huge CV. It may be flagged only when the bootstrap interval of its mean lies
  // on one side of zero (with n = 3 that happens by chance when all three land on one side).
  const summary = JSON.parse(readFileSync(path.join(studies.a, 'summary.json'), 'utf8')) as {
    configs: Array<{ high_variance_metrics: string[]; metrics: Record<string, { cv: number | null; ci95_bootstrap: [number, number] | null }> }>;
  };
  for (const c of summary.configs) {
    const m = c.metrics.energy_adjusted_j!;
    assert.ok(m.cv === null || m.cv > 0.1, 'the CV alone would flag it');
    const excludesZero = m.ci95_bootstrap !== null && (m.ci95_bootstrap[0] > 0 || m.ci95_bootstrap[1] < 0);
    assert.equal(c.high_variance_metrics.includes('energy_adjusted_j'), excludesZero);
  }
});
