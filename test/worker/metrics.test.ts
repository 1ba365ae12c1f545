import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coefficientOfVariation, computeFlags, computeMetrics, latencySamples, percentile, percentiles } from '../../src/worker/metrics.ts';
import type { RequestRecord } from '../../src/backends/types.ts';
import type { EnergyWindow } from '../../src/measure/types.ts';

test('percentiles: linear interpolation between closest ranks (numpy default)', () => {
  const cases: Array<[number[], number, number]> = [
    [[1, 2, 3, 4], 50, 2.5],
    [[1, 2, 3, 4], 90, 3.7],
    [[10], 99, 10],
    [[0, 100], 95, 95],
    [[5, 1, 3], 50, 3],
  ];
  for (const [values, p, expected] of cases) {
    const sorted = [...values].sort((a, b) => a - b);
    assert.ok(Math.abs(percentile(sorted, p)! - expected) < 1e-12, `p${p} of ${values}`);
  }
  assert.deepEqual(percentiles([]), { mean: null, p50: null, p90: null, p95: null, p99: null });
  const pc = percentiles([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(pc.mean, 5.5);
  assert.ok(Math.abs(pc.p99! - 9.91) < 1e-12);
});

const rec = (over: Partial<RequestRecord>): RequestRecord => ({
  prompt_index: 0, input_tokens: 1, output_tokens: 4, start_ms: 0, first_token_ms: 50, first_content_token_ms: 80,
  token_times_ms: [60, 80, 110], end_ms: 110, error: null, ...over,
});

test('latency samples: TTFT, content TTFT, ITL, TPOT, E2E as defined', () => {
  const s = latencySamples([rec({}), rec({ error: 'x' }), rec({ output_tokens: 1, token_times_ms: [], first_token_ms: 20, first_content_token_ms: 20, end_ms: 20 })]);
  assert.deepEqual(s.ttft_ms, [50, 20]);
  assert.deepEqual(s.ttft_content_ms, [80, 20]);
  assert.deepEqual(s.itl_ms, [10, 20, 30]);
  assert.deepEqual(s.tpot_ms, [20], '(110 − 50) / 3; single-token requests have no TPOT');
  assert.deepEqual(s.e2e_ms, [110, 20]);
});

test('coefficient of variation over the last window', () => {
  assert.equal(coefficientOfVariation([5], 3), null);
  assert.equal(coefficientOfVariation([100, 7, 7, 7], 3), 0);
  assert.ok(Math.abs(coefficientOfVariation([1, 2, 3], 3)! - 0.5) < 1e-12);
});

const win = (over: Partial<EnergyWindow>): EnergyWindow => ({
  window_s: 8, energy_j: 800, energy_method: 'counter', energy_method_reason: null, energy_polled_j: 790, energy_divergence: 0.0125, unavailable_reason: null,
  power_mean_w: 100, power_peak_w: 120, temperature_start_c: 40, temperature_end_c: 45, temperature_max_c: 45, memory_peak_bytes: 1,
  throttle_s: { thermal: 0, power_cap: 0, power_brake: 0 }, throttle_fraction: { thermal: 0, power_cap: 0, power_brake: 0 },
  samples: 80, counter_reset: false, flags: [], per_device: [], edges: null, ...over,
});

test('energy metrics: raw kept, adjusted = raw − baseline × window, null never 0', () => {
  const base = { records: [rec({}), rec({})], baselinePowerW: 60, baselineReused: false, cpuEnergyJ: null, cpuEnergyUnavailableReason: 'no RAPL', loadS: 1, loadEnergyJ: 50, warmupPrompts: 3, warmupCv: 0.01, warmupConverged: true };
  const m = computeMetrics({ ...base, window: win({}) });
  assert.equal(m.energy_j, 800);
  assert.equal(m.energy_adjusted_j, 800 - 60 * 8);
  assert.equal(m.energy_per_output_token_j, 100);
  assert.equal(m.energy_per_output_token_adjusted_j, 40);
  assert.equal(m.output_tokens_per_s, 1);
  const none = computeMetrics({ ...base, baselinePowerW: null, window: win({ energy_j: null, energy_polled_j: null, energy_method: null, energy_divergence: null, unavailable_reason: 'no NVML' }) });
  assert.equal(none.energy_j, null);
  assert.equal(none.energy_adjusted_j, null);
  assert.equal(none.energy_per_output_token_j, null);
  assert.equal(none.energy_unavailable_reason, 'no NVML');
  assert.equal(none.cpu_energy_unavailable_reason, 'no RAPL');
});

test('validity flags: meter flags kept once, worker flags added from their inputs', () => {
  const f = (over: Partial<Parameters<typeof computeFlags>[0]>) =>
    computeFlags({ window: win({}), warmupConverged: true, warmupCv: 0.01, cvThreshold: 0.05, foreign: null, persistenceModeOff: [], builtinModel: null, baselineStaleReason: null, failedRequests: 0, totalRequests: 10, ...over }).map((x) => x.code);
  assert.deepEqual(f({}), []);
  assert.deepEqual(f({ window: win({ window_s: 2 }) }), ['short_window']);
  assert.deepEqual(f({ window: win({ energy_divergence: 0.2 }) }), ['energy_divergence']);
  assert.deepEqual(f({ window: win({ flags: [{ code: 'energy_divergence', message: 'meter says' }], energy_divergence: 0.2 }) }), ['energy_divergence']);
  assert.deepEqual(f({ window: win({ counter_reset: true }) }), ['counter_reset']);
  assert.deepEqual(f({ warmupConverged: false }), ['warmup_not_converged']);
  const check = { processes: [{ pid: 1, gpu_uuid: 'GPU-0', memory_bytes: 10 }], memory_bytes: 10, gpu_util_pct: 0 };
  assert.deepEqual(f({ foreign: { preflight: null, window_start: check, window_stop: null } }), ['foreign_gpu_process']);
  assert.deepEqual(f({ foreign: { preflight: { ...check, processes: [], memory_bytes: 0 }, window_start: null, window_stop: null } }), []);
  assert.deepEqual(f({ failedRequests: 4 }), ['failed_requests']);
  assert.deepEqual(f({ warmupConverged: null }), [], 'no warmup ran: nothing to converge');
  assert.deepEqual(f({ migWholeGpu: ['GPU-0'] }), ['mig_whole_gpu']);
  // energy_j 800 J: below −2 % (−16 J) is a baseline above the load; closer to 0 it is noise.
  assert.deepEqual(f({ energyAdjustedJ: -17, energyJ: 800, baselinePowerW: 120 }), ['baseline_above_load']);
  assert.deepEqual(f({ energyAdjustedJ: -15, energyJ: 800 }), []);
  assert.deepEqual(f({ energyAdjustedJ: 0 }), []);
  assert.deepEqual(f({ persistenceModeOff: ['GPU 0'] }), ['persistence_mode_off']);
  assert.deepEqual(f({ builtinModel: 'builtin:tiny-random' }), ['builtin_model']);
  assert.deepEqual(f({ baselineStaleReason: 'old' }), ['baseline_stale']);
  assert.deepEqual(f({ window: win({ energy_j: null, unavailable_reason: 'x' }) }), ['energy_unavailable']);
});

test('baseline reuse: fresh and within 3 °C reused; old, hot or absent measured; unknown temperature flagged', async () => {
  const { baselineReuseDecision } = await import('../../src/worker/metrics.ts');
  const prev = { measured_at_ms: 1_000_000, power_w: 70, temperature_c: 40 };
  const now = 1_000_000 + 60_000;
  const cases: Array<[Parameters<typeof baselineReuseDecision>, boolean, boolean]> = [
    [[prev, now, 300, 42], true, false],
    [[prev, now, 300, 44], false, false],
    [[prev, now, 30, 40], false, false],
    [[prev, now, 0, 40], false, false],
    [[null, now, 300, 40], false, false],
    [[prev, now, 300, null], true, true],
    [[{ ...prev, temperature_c: null }, now, 300, 40], true, true],
  ];
  for (const [args, reuse, stale] of cases) {
    const d = baselineReuseDecision(...args);
    assert.equal(d.reuse, reuse, `${JSON.stringify(args)}: ${d.why}`);
    assert.equal(d.staleReason !== null, stale, JSON.stringify(args));
  }
});

test('failed requests: counted with their tokens, out of every divisor, their energy kept', () => {
  const records = [rec({}), rec({ error: 'HTTP 500', output_tokens: 3 }), rec({}), rec({ error: 'timeout', output_tokens: 0 })];
  const m = computeMetrics({
    records, window: win({}), baselinePowerW: null, baselineReused: null, cpuEnergyJ: null, cpuEnergyUnavailableReason: null,
    loadS: null, loadEnergyJ: null, warmupPrompts: 0, warmupCv: null, warmupConverged: null, warmupNotRunReason: 'warmup.max_prompts is 0',
  });
  assert.equal(m.requests, 2);
  assert.equal(m.requests_failed, 2);
  assert.equal(m.output_tokens, 8);
  assert.equal(m.output_tokens_failed, 3);
  assert.equal(m.energy_j, 800, 'the energy of the failed requests stays in the window');
  assert.equal(m.energy_per_request_j, 400);
  assert.equal(m.energy_per_output_token_j, 100);
  assert.equal(m.warmup_converged, null);
  assert.equal(m.warmup_not_run_reason, 'warmup.max_prompts is 0');
});

test('every metric and every flag has one definition, embedded in every result', async () => {
  const { metricsSchema, FLAG_CODES } = await import('../../src/results/schema.ts');
  const { METRIC_DEFINITIONS, FLAG_DEFINITIONS, resultDefinitions } = await import('../../src/worker/metrics.ts');
  const defs = resultDefinitions();
  for (const key of Object.keys(metricsSchema.shape)) {
    assert.ok((METRIC_DEFINITIONS as Record<string, string>)[key], `metric ${key} has a definition`);
    assert.equal(defs[key], (METRIC_DEFINITIONS as Record<string, string>)[key]);
  }
  for (const code of FLAG_CODES) assert.equal(defs[`flag.${code}`], FLAG_DEFINITIONS[code], `flag ${code}`);
  assert.match(defs.energy_per_request_j!, /successful requests/);
  assert.match(defs.energy_per_output_token_j!, /successful requests/);
});

test('docs/MEASUREMENT.md defines every metric, flag and validity rule the code has', async () => {
  const { readFileSync } = await import('node:fs');
  const { metricsSchema, FLAG_CODES } = await import('../../src/results/schema.ts');
  const { RECORD_DEFINITIONS } = await import('../../src/worker/metrics.ts');
  const { VALIDITY_RULES } = await import('../../src/measure/validity.ts');
  const doc = readFileSync(new URL('../../docs/MEASUREMENT.md', import.meta.url), 'utf8');
  const tableRow = (key: string) => new RegExp(`^\\| \`${key}\`[ |,]`, 'm').test(doc) || new RegExp(`^\\| [^|]*\`${key}\``, 'm').test(doc);
  for (const key of Object.keys(metricsSchema.shape)) assert.ok(tableRow(key), `metric ${key} has a row`);
  for (const key of Object.keys(RECORD_DEFINITIONS)) assert.ok(tableRow(key), `result section ${key} has a row`);
  for (const code of FLAG_CODES) assert.ok(new RegExp(`^\\| \`${code}\` \\|`, 'm').test(doc), `flag ${code} has a row`);
  for (const key of [...Object.keys(VALIDITY_RULES), 'max_invalid_retries']) assert.ok(doc.includes(key), `validity key ${key}`);
});
