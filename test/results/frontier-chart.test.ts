// The report's frontier chart (src/results/charts.ts frontierChart) as a Vega-Lite spec: 95 %
// error bars on both axes, from each config's interval (checked against a t interval computed by
// hand), dominated configs faded, the frontier joined and labelled; then rendered to SVG in Node
// (vega's headless renderer, no browser) to see that the fading reaches the marks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarizeStudy } from '../../src/results/summarize.ts';
import { computeFrontier, FRONTIER_X_AXES, FRONTIER_Y_AXES, frontierAxis } from '../../src/results/frontier.ts';
import { frontierChart, renderSvg } from '../../src/results/charts.ts';
import { frontierFixture } from './fixtures.ts';

/** Student t quantile t(0.975, df = 2): three cycles. */
const T_975_DF2 = 4.302652729911275;

/** frontierFixture: bs1 dominated by bs2 beyond the intervals; bs3 overlaps bs2 (not separable);
 * bs4 frugal and slow, no spread; bs5 without energy (not on the chart). */
function study() {
  const { configs, plan, results } = frontierFixture();
  return { configs, summary: summarizeStudy({ plan, snapshot: null, results, now: '2026-02-01T00:00:00.000Z' }) };
}

interface Layer {
  data: { values: Array<Record<string, unknown>> };
  mark: { type: string };
  encoding: Record<string, { field?: string; scale?: unknown } | undefined>;
}

function chart() {
  const { configs, summary } = study();
  const f = computeFrontier(summary, frontierAxis(FRONTIER_X_AXES, 'ttft_p95_ms', '--x'), frontierAxis(FRONTIER_Y_AXES, 'energy_per_output_token_j', '--y'));
  const c = frontierChart(summary, f, 'frontier', 'frontier-ttft_p95_ms');
  assert.ok(c, 'a chart');
  const layers = (c.spec as unknown as { layer: Layer[] }).layer;
  const hash = (bs: number) => configs[bs - 1]!.hash;
  return { c, layers, hash };
}

const close = (actual: unknown, expected: number, what: string) => assert.ok(Math.abs(Number(actual) - expected) < 1e-9, `${what}: ${String(actual)} ≠ ${expected}`);

test('frontier chart: a 95 % error bar on each axis, from each config\'s interval', () => {
  const { layers, hash } = chart();
  const errorbars = layers.filter((l) => l.mark.type === 'errorbar');
  assert.equal(errorbars.length, 2, 'one error-bar layer per axis');
  // horizontal bars span x_lo..x_hi at the mean y; vertical ones y_lo..y_hi at the mean x
  const xBars = errorbars.find((l) => l.encoding.x?.field === 'x_lo');
  const yBars = errorbars.find((l) => l.encoding.y?.field === 'y_lo');
  assert.ok(xBars && yBars, JSON.stringify(errorbars.map((l) => l.encoding)));
  assert.equal(xBars.encoding.x2?.field, 'x_hi');
  assert.equal(xBars.encoding.y?.field, 'y');
  assert.equal(yBars.encoding.y2?.field, 'y_hi');
  assert.equal(yBars.encoding.x?.field, 'x');
  for (const bars of [xBars, yBars]) {
    const rows = new Map(bars.data.values.map((d) => [d.config_hash as string, d]));
    // the config without energy has no point, so no bars
    assert.deepEqual([...rows.keys()].sort(), [1, 2, 3, 4].map(hash).sort());
    // bs1: TTFT p95 100, 102, 104 and J/token 1.00, 1.02, 1.04 (sd 2 and 0.02): at n = 3 the t
    // interval is wider than any percentile bootstrap (which stays within the data), so it is shown
    const bs1 = rows.get(hash(1))!;
    close(bs1.x, 102, 'bs1 x');
    close(bs1.x_lo, 102 - (T_975_DF2 * 2) / Math.sqrt(3), 'bs1 x_lo');
    close(bs1.x_hi, 102 + (T_975_DF2 * 2) / Math.sqrt(3), 'bs1 x_hi');
    close(bs1.y, 1.02, 'bs1 y');
    close(bs1.y_lo, 1.02 - (T_975_DF2 * 0.02) / Math.sqrt(3), 'bs1 y_lo');
    close(bs1.y_hi, 1.02 + (T_975_DF2 * 0.02) / Math.sqrt(3), 'bs1 y_hi');
    // bs4 measured the same value every cycle: a zero-width bar at its mean, not a missing one
    const bs4 = rows.get(hash(4))!;
    assert.deepEqual([bs4.x_lo, bs4.x, bs4.x_hi, bs4.y_lo, bs4.y_hi], [200, 200, 200, 0.1, 0.1]);
  }
});

test('frontier chart: dominated configs faded (points and both bars), the frontier joined and labelled', async () => {
  const { c, layers, hash } = chart();
  const points = layers.find((l) => l.mark.type === 'point')!;
  const line = layers.find((l) => l.mark.type === 'line')!;
  const labels = layers.find((l) => l.mark.type === 'text')!;
  // opacity is read from the datum as is (no scale): 0.22 stays 0.22
  for (const l of [points, ...layers.filter((x) => x.mark.type === 'errorbar')]) {
    assert.equal(l.encoding.opacity?.field, 'opacity');
    assert.equal(l.encoding.opacity?.scale, null);
    const byHash = new Map(l.data.values.map((d) => [d.config_hash as string, d]));
    assert.ok((byHash.get(hash(1))!.opacity as number) < 0.5, 'bs1 (dominated) faded');
    for (const bs of [2, 3, 4]) assert.equal(byHash.get(hash(bs))!.opacity, 1, `bs${bs} on the frontier, not faded`);
  }
  assert.equal(points.data.values.find((d) => d.config_hash === hash(1))!.status, 'dominated');
  assert.equal(points.data.values.find((d) => d.config_hash === hash(3))!.status, 'frontier (not separable)');
  // the dashed line and the labels: the frontier only, by x
  assert.deepEqual(line.data.values.map((d) => d.config_hash), [hash(2), hash(3), hash(4)]);
  assert.deepEqual(labels.data.values.map((d) => d.label), ['llamacpp bs=2', 'llamacpp bs=3', 'llamacpp bs=4']);
  assert.match(c.caption, /4 configs; 3 on the frontier \(1 of them only because/);
  assert.match(c.caption, /1 dominated \(faded\)/);

  // Rendered: the faded opacity reaches the dominated config's point and both of its bars.
  const warnings: string[] = [];
  const svg = await renderSvg(c.spec, warnings);
  assert.deepEqual(warnings, []);
  const markGroup = (layer: number) => {
    const m = svg.match(new RegExp(`<g class="mark-[a-z]+ role-mark layer_${layer}_marks"[\\s\\S]*?</g>`));
    assert.ok(m, `layer ${layer} rendered`);
    return m[0];
  };
  for (const layer of [0, 1, 3]) {
    const opacities = markGroup(layer).match(/ opacity="[^"]*"/g) ?? [];
    assert.equal(opacities.length, 4, `layer ${layer}: one mark per config`);
    assert.equal(opacities.filter((o) => o === ' opacity="0.22"').length, 1, `layer ${layer}: the dominated config faded`);
  }
});
