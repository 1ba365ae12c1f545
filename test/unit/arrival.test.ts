// Arrival processes of request-rate workloads (src/arrival.ts): parsing, and the gamma sampler
// (Marsaglia–Tsang) checked statistically against the distribution it claims to draw from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arrivalOffsetsMs, formatArrival, parseArrival, sampleGamma } from '../../src/arrival.ts';
import { mulberry32 } from '../../src/prng.ts';

test('arrival: poisson, constant and gamma(k) parse; anything else does not', () => {
  assert.deepEqual(parseArrival('poisson'), { kind: 'poisson', burstiness: 1 });
  assert.deepEqual(parseArrival(' Constant '), { kind: 'constant', burstiness: 1 });
  assert.deepEqual(parseArrival('gamma(0.5)'), { kind: 'gamma', burstiness: 0.5 });
  assert.equal(formatArrival(parseArrival('GAMMA( 2 )')!), 'gamma(2)');
  for (const bad of ['gamma()', 'gamma(0)', 'gamma(-1)', 'bursty', 'gamma(1,2)']) assert.equal(parseArrival(bad), null, bad);
});

/** Kolmogorov–Smirnov statistic of a sample against a CDF. */
function ks(sample: number[], cdf: (x: number) => number): number {
  const s = [...sample].sort((a, b) => a - b);
  let d = 0;
  s.forEach((x, i) => {
    const f = cdf(x);
    d = Math.max(d, Math.abs(f - i / s.length), Math.abs(f - (i + 1) / s.length));
  });
  return d;
}

test('gamma sampler: mean k and variance k for shapes 0.3–8; KS against the closed-form CDF for k = 1 and 2', () => {
  const n = 20_000;
  // 1 % critical value of the one-sample KS statistic: 1.63 / √n.
  const ksCritical = 1.63 / Math.sqrt(n);
  for (const [i, k] of [0.3, 0.5, 1, 2, 3.5, 8].entries()) {
    const rand = mulberry32(7919 * i + 13);
    const xs = Array.from({ length: n }, () => sampleGamma(k, rand));
    assert.ok(xs.every((x) => x > 0 && Number.isFinite(x)));
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
    // Standard errors: √(k/n) for the mean; the variance's is √((μ4 − σ⁴)/n) = √((2k² + 6k)/n)·… ≈ k·√(2(1 + 3/k)/n).
    assert.ok(Math.abs(mean - k) < 4 * Math.sqrt(k / n), `k=${k}: mean ${mean}`);
    assert.ok(Math.abs(variance - k) < 4 * k * Math.sqrt((2 * (1 + 3 / k)) / n), `k=${k}: variance ${variance}`);
    if (k === 1) assert.ok(ks(xs, (x) => 1 - Math.exp(-x)) < ksCritical, 'exponential');
    if (k === 2) assert.ok(ks(xs, (x) => 1 - Math.exp(-x) * (1 + x)) < ksCritical, 'Erlang-2');
  }
});

test('gamma arrivals: seeded, mean gap 1/rate, burstier below shape 1 (gap CV = 1/√k)', () => {
  const gaps = (k: number, seed: number) => {
    const t = arrivalOffsetsMs(5001, { rate_per_s: 20, process: { kind: 'gamma', burstiness: k } }, seed);
    return t.slice(1).map((v, i) => v - t[i]!);
  };
  assert.deepEqual(gaps(0.5, 3), gaps(0.5, 3));
  assert.notDeepEqual(gaps(0.5, 3), gaps(0.5, 4));
  for (const k of [0.25, 1, 4]) {
    const g = gaps(k, 7);
    const mean = g.reduce((a, b) => a + b, 0) / g.length;
    const cv = Math.sqrt(g.reduce((a, b) => a + (b - mean) ** 2, 0) / (g.length - 1)) / mean;
    assert.ok(Math.abs(mean - 50) < 50 * 0.08, `k=${k}: mean gap ${mean} ms`);
    assert.ok(Math.abs(cv - 1 / Math.sqrt(k)) < 0.1 / Math.sqrt(k), `k=${k}: CV ${cv}`);
  }
  assert.deepEqual(arrivalOffsetsMs(3, { rate_per_s: 'inf', process: { kind: 'poisson', burstiness: 1 } }, 1), [0, 0, 0]);
});
