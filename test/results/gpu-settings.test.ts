// The gpu.* settings on the results side (issue 15): a sweep `gpu.power_limit_w: [300, default]` is
// a swept field whose default reads as the recorded original limit (the table, the per-run rows,
// the energy-per-token chart against the cap), and compare lists the requested and the enforced
// power limit as differences that change the meaning of the numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarizeStudy } from '../../src/results/summarize.ts';
import { parameterCharts } from '../../src/results/charts.ts';
import { environmentDifferences } from '../../src/results/environment-diff.ts';
import { runTable } from '../../src/results/table.ts';
import type { RunResult } from '../../src/results/schema.ts';
import type { GpuDeviceSettings } from '../../src/gpu-settings/record.ts';
import { makeConfig, makePlan, makeResult, type ConfigFixture } from './fixtures.ts';

const NOW = '2026-02-01T00:00:00.000Z';

function device(requestedW: number | null, enforcedW: number, originalW = 700): GpuDeviceSettings {
  return {
    uuid: 'GPU-fixture',
    index: 0,
    name: 'NVIDIA H100',
    requested: { power_limit_w: requestedW, sm_clock_mhz: null, memory_clock_mhz: null },
    enforced: { power_limit_w: enforcedW, sm_clock_mhz: 1980, memory_clock_mhz: 2619 },
    original_power_limit_w: originalW,
    notes: [],
  };
}

function withSettings(r: RunResult, d: GpuDeviceSettings): RunResult {
  return { ...r, environment: { ...r.environment, gpu_settings: { devices: [d], gpu_setting_drift: false, drift_reasons: [] } } };
}

test('gpu.power_limit_w: [300, default] is swept; default reads as the recorded original limit everywhere', () => {
  const capped: ConfigFixture = { hash: 'aaaaaaaaaaaaaaaa', label: 'llamacpp power_w=300', config: makeConfig({ gpu: { power_limit_w: 300 } }) };
  const dflt: ConfigFixture = { hash: 'bbbbbbbbbbbbbbbb', label: 'llamacpp', config: makeConfig({}) };
  const plan = makePlan([capped, dflt], 2);
  const results = plan.order.map((o) => {
    const c = o.config_hash === capped.hash ? capped : dflt;
    const r = makeResult(c, o.index, o.cycle, { energy_per_output_token_j: c === capped ? 0.2 : 0.3 });
    return withSettings(r, c === capped ? device(300, 300) : device(null, 700));
  });
  const summary = summarizeStudy({ plan, snapshot: null, results, now: NOW });
  assert.ok(summary.swept_fields.includes('gpu.power_limit_w'), JSON.stringify(summary.swept_fields));
  assert.deepEqual(summary.configs.map((c) => c.swept['gpu.power_limit_w']), [300, 700]);
  const runs = runTable(plan, null, results, summary);
  assert.deepEqual([...new Set(runs.rows.map((r) => r['gpu.power_limit_w']))].sort(), [300, 700]);
  const chart = parameterCharts(summary).find((c) => c.id === 'param-gpu.power_limit_w-energy_per_output_token_j');
  assert.ok(chart, 'a chart of energy per token against the cap');
  assert.match(chart.caption, /default is drawn at the power limit its GPU had before the study/);
  const points = (chart.spec as unknown as { data: { values: Array<{ x: number; mean: number }> } }).data.values;
  assert.deepEqual(points.map((p) => [p.x, p.mean]).sort(), [[300, 0.2], [700, 0.3]]);
});

test('a default no result records yet reads "default"; a study without gpu.* gets no gpu field', () => {
  const capped: ConfigFixture = { hash: 'aaaaaaaaaaaaaaaa', label: 'llamacpp power_w=300', config: makeConfig({ gpu: { power_limit_w: 300 } }) };
  const dflt: ConfigFixture = { hash: 'bbbbbbbbbbbbbbbb', label: 'llamacpp', config: makeConfig({}) };
  const summary = summarizeStudy({ plan: makePlan([capped, dflt], 1), snapshot: null, results: [], now: NOW });
  assert.deepEqual(summary.configs.map((c) => c.swept['gpu.power_limit_w']), [300, 'default']);
  const plain = summarizeStudy({ plan: makePlan([dflt, { ...dflt, hash: 'cccccccccccccccc', config: makeConfig({ batch_size: 2 }) }], 1), snapshot: null, results: [], now: NOW });
  assert.equal(plain.swept_fields.some((f) => f.startsWith('gpu.')), false);
});

test('compare: the requested and the enforced power limit are what it compares, as meaning-changing differences', () => {
  const c: ConfigFixture = { hash: 'aaaaaaaaaaaaaaaa', label: 'llamacpp', config: makeConfig({}) };
  const a = withSettings(makeResult(c, 0, 1), device(300, 300));
  const b = withSettings(makeResult(c, 0, 1), device(null, 700));
  const diffs = environmentDifferences([a], [b]);
  const requested = diffs.find((d) => d.field === 'power_limit_requested');
  const enforced = diffs.find((d) => d.field === 'power_limit_w');
  assert.deepEqual([requested?.a, requested?.b, requested?.severity], ['300', 'default', 'meaning']);
  assert.deepEqual([enforced?.a, enforced?.b, enforced?.severity], ['300', '700', 'meaning']);
  // the same request with another enforced value is still a difference (another limiter held it)
  const c2 = withSettings(makeResult(c, 0, 1), device(300, 250));
  const only = environmentDifferences([a], [c2]).map((d) => d.field);
  assert.ok(only.includes('power_limit_w') && !only.includes('power_limit_requested'), only.join(', '));
  // a result without the record (older) is "not recorded": noted, not a meaning difference
  const old = makeResult(c, 0, 1);
  assert.equal(environmentDifferences([a], [old]).find((d) => d.field === 'power_limit_requested')?.severity, 'note');
});
