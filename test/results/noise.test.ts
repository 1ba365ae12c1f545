// Less noise in the tables (issue 16): "high CV" only when the mean is distinguishable from zero,
// and the flags column as short codes with counts and a legend below.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describe } from '../../src/results/stats.ts';
import { summarizeStudy } from '../../src/results/summarize.ts';
import { configTable, render } from '../../src/results/table.ts';
import { FLAG_LEGEND } from '../../src/results/flags.ts';
import { FLAG_CODES } from '../../src/results/schema.ts';
import { makeGrid, makePlan, makeResult } from './fixtures.ts';

const NOW = '2026-02-01T00:00:00.000Z';

test('a quantity whose mean is within its own CI of zero is not called high-variance', () => {
  // energy_adjusted_j at constant power: raw energy minus baseline × window is noise around 0 J.
  const nearZero = describe([0.4, -0.3, 0.1, -0.2, 0.05]);
  assert.ok(nearZero.cv !== null && nearZero.cv > 1, `CV ${nearZero.cv} is huge`);
  assert.ok(nearZero.ci_bootstrap![0] < 0 && nearZero.ci_bootstrap![1] > 0, 'the interval straddles zero');
  assert.equal(nearZero.high_variance, false);
  // The same spread around a mean far from zero is a real high-variance metric.
  const real = describe([10, 20, 30]);
  assert.equal(real.high_variance, true);
});

test('summary: energy_adjusted_j at constant power is not in high_variance_metrics; tokens/s with real spread is', () => {
  const [a] = makeGrid([1]);
  const plan = makePlan([a!], 3);
  const adjusted = [0.8, -0.6, 0.1];
  const tps = [10, 20, 30];
  const results = [1, 2, 3].map((c, i) => makeResult(a!, i, c, { energy_adjusted_j: adjusted[i]!, output_tokens_per_s: tps[i]! }));
  const c = summarizeStudy({ plan, snapshot: null, results, now: NOW }).configs[0]!;
  assert.ok(c.metrics.energy_adjusted_j!.cv! > 0.1);
  assert.deepEqual(c.high_variance_metrics, ['output_tokens_per_s']);
});

test('flags column: short codes with counts, and a legend below the table naming each code shown', () => {
  const configs = makeGrid([1, 2]);
  const plan = makePlan(configs, 3);
  const results = plan.order.map((o) => {
    const c = configs.find((x) => x.hash === o.config_hash)!;
    const flags = c.config.batch_size === 1 && o.cycle < 3 ? (['thermal_throttle', 'short_window'] as const) : ([] as const);
    return makeResult(c, o.index, o.cycle, { output_tokens_per_s: c.config.batch_size === 2 ? 10 * o.cycle : 20 }, [...flags]);
  });
  const summary = summarizeStudy({ plan, snapshot: null, results, now: NOW });
  const data = configTable(summary);
  assert.equal(data.display[0]!.flags, 'SW×2 TT×2');
  assert.equal(data.display[1]!.flags, 'CV(tokens/s)');
  // CSV/JSON keep the full codes for machines.
  assert.equal(data.rows[0]!.flags, 'short_window×2 thermal_throttle×2');
  const text = render(data, 'table', 160);
  const tableEnd = text.lastIndexOf('└');
  const legend = text.slice(tableEnd);
  assert.match(legend, /SW short_window: measurement window shorter than 5 s/);
  assert.match(legend, /TT thermal_throttle: /);
  assert.match(legend, /CV\(metrics\) high CV: coefficient of variation across cycles above 10 %/);
  assert.doesNotMatch(legend, /PB power_brake/, 'only the codes shown');
  assert.match(render(data, 'md'), /\n\nflags: ×N = number of completed runs carrying the flag {2}\nSW short_window/);
  assert.doesNotMatch(render(data, 'csv'), /SW short_window/);
});

test('every flag code has a distinct short code', () => {
  const shorts = FLAG_CODES.map((c) => FLAG_LEGEND[c].short);
  assert.equal(new Set(shorts).size, shorts.length);
  assert.ok(!shorts.includes('CV'));
});
