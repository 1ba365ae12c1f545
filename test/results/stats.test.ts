import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootstrapMeanCi,
  describe,
  describeMany,
  intervalsOverlap,
  quantileSorted,
  seedFor,
  studentTQuantile,
} from '../../src/results/stats.ts';
import { mulberry32 } from '../../src/prng.ts';

const close = (actual: number | null | undefined, expected: number, tol = 1e-9, what = '') => {
  assert.ok(typeof actual === 'number', `${what}: expected a number, got ${actual}`);
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} is not within ${tol} of ${expected}`);
};

test('Student t 0.975 quantiles match published tables', () => {
  // Two-sided 95 % critical values from any t table.
  const table: Array<[number, number]> = [
    [1, 12.7062047],
    [2, 4.3026527],
    [5, 2.5705818],
    [7, 2.3646243],
    [10, 2.2281389],
    [30, 2.0422725],
  ];
  for (const [df, t] of table) close(studentTQuantile(0.975, df), t, 1e-6, `df=${df}`);
  close(studentTQuantile(0.95, 4), 2.1318468, 1e-6, '0.95 df=4');
});

test('type-7 quantiles (numpy/R default)', () => {
  close(quantileSorted([1, 2, 3, 4], 0.25), 1.75);
  close(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
  close(quantileSorted([7], 0.9), 7);
  close(quantileSorted([0, 10], 0.975), 9.75);
});

test('describe: n = 8 against values computed by hand', () => {
  // mean 5; squared deviations 9+1+1+1+0+0+4+16 = 32; s² = 32/7; s = 2.13808994
  const s = describe([2, 4, 4, 4, 5, 5, 7, 9]);
  assert.equal(s.n, 8);
  assert.equal(s.n_missing, 0);
  close(s.mean, 5);
  close(s.std, Math.sqrt(32 / 7));
  close(s.cv, Math.sqrt(32 / 7) / 5);
  close(s.median, 4.5);
  assert.equal(s.min, 2);
  assert.equal(s.max, 9);
  // t-interval: 5 ± 2.36462425 · 2.13808994 / √8 = 5 ± 1.78748792
  close(s.ci_t?.[0], 5 - 1.7874879178, 1e-7, 'ci_t low');
  close(s.ci_t?.[1], 5 + 1.7874879178, 1e-7, 'ci_t high');
  assert.equal(s.high_variance, true, 'CV 43 % is above 10 %');
  // A bootstrap CI of the mean lies inside [min, max] and around the mean.
  const [lo, hi] = s.ci_bootstrap!;
  assert.ok(lo >= 2 && lo < 5 && hi > 5 && hi <= 9, `bootstrap CI ${lo}..${hi}`);
});

test('describe: n = 1 has a mean and no spread or interval', () => {
  const s = describe([3.5]);
  assert.equal(s.n, 1);
  assert.equal(s.mean, 3.5);
  assert.equal(s.median, 3.5);
  assert.equal(s.min, 3.5);
  assert.equal(s.max, 3.5);
  assert.equal(s.std, null);
  assert.equal(s.cv, null);
  assert.equal(s.ci_t, null);
  assert.equal(s.ci_bootstrap, null);
  assert.equal(s.high_variance, false);
});

test('describe: n = 2 (t with one degree of freedom; bootstrap means are 1, 2 or 3)', () => {
  const s = describe([1, 3]);
  close(s.mean, 2);
  close(s.std, Math.SQRT2);
  close(s.cv, Math.SQRT2 / 2);
  close(s.median, 2);
  // 2 ± 12.7062047 · √2 / √2
  close(s.ci_t?.[0], 2 - 12.7062047, 1e-6);
  close(s.ci_t?.[1], 2 + 12.7062047, 1e-6);
  // Resample means take 1 (p = 1/4), 2 (1/2), 3 (1/4): the 2.5 % and 97.5 % points are 1 and 3.
  assert.deepEqual(s.ci_bootstrap, [1, 3]);
});

test('describe: identical values have zero spread and a point interval', () => {
  const s = describe([0.1, 0.1, 0.1, 0.1]);
  assert.equal(s.mean, 0.1);
  assert.equal(s.std, 0);
  assert.equal(s.cv, 0);
  assert.deepEqual(s.ci_t, [0.1, 0.1]);
  assert.deepEqual(s.ci_bootstrap, [0.1, 0.1]);
  assert.equal(s.high_variance, false);
});

test('describe: null, NaN and Infinity are missing, not zero', () => {
  const s = describe([1, null, Number.NaN, 3, undefined, Number.POSITIVE_INFINITY]);
  assert.equal(s.n, 2);
  assert.equal(s.n_missing, 4);
  close(s.mean, 2);
  const none = describe([null, Number.NaN]);
  assert.equal(none.n, 0);
  assert.equal(none.n_missing, 2);
  assert.equal(none.mean, null);
  assert.equal(none.median, null);
  assert.equal(none.ci_bootstrap, null);
});

test('describe: CV is undefined for a zero mean; high_variance threshold is configurable', () => {
  const zero = describe([-1, 1]);
  assert.equal(zero.mean, 0);
  assert.equal(zero.cv, null);
  assert.equal(zero.high_variance, false);
  // mean 100, std 10 → CV 10 %: not above 10 %, but above 5 %
  const tenPercent = [90, 110];
  const s = describe(tenPercent);
  close(s.cv, Math.sqrt(200) / 100);
  assert.equal(describe([95, 105]).high_variance, false); // CV 7.07 %
  assert.equal(describe([95, 105], { highVarianceCv: 0.05 }).high_variance, true);
});

test('bootstrap is deterministic for a seed and changes with it', () => {
  const values = [12.1, 11.8, 13.4, 12.9, 12.2, 14.1, 11.5];
  const a = bootstrapMeanCi(values, 2000, 0.95, 42);
  const b = bootstrapMeanCi(values, 2000, 0.95, 42);
  const c = bootstrapMeanCi(values, 2000, 0.95, 43);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.deepEqual(describe(values, { seed: 7 }).ci_bootstrap, describe(values, { seed: 7 }).ci_bootstrap);
  // The PRNG itself is reproducible.
  const r1 = mulberry32(99);
  const r2 = mulberry32(99);
  for (let i = 0; i < 5; i++) assert.equal(r1(), r2());
});

test('bootstrap agrees with the t-interval on a larger, well-behaved sample', () => {
  const rand = mulberry32(2024);
  const values = Array.from({ length: 60 }, () => 100 + 10 * (rand() + rand() + rand() - 1.5));
  const s = describe(values, { bootstrapResamples: 4000 });
  const widthBoot = s.ci_bootstrap![1] - s.ci_bootstrap![0];
  const widthT = s.ci_t![1] - s.ci_t![0];
  assert.ok(Math.abs(widthBoot / widthT - 1) < 0.15, `bootstrap width ${widthBoot} vs t width ${widthT}`);
  assert.ok(s.ci_bootstrap![0] < s.mean! && s.mean! < s.ci_bootstrap![1]);
});

test('describeMany gives each metric what describe gives it alone', () => {
  const many = describeMany({ a: [1, 2, 3, 4], b: [10, 20, null, 30], c: [5, 6, 7, 9] }, { seed: 5 });
  assert.deepEqual(many.a, describe([1, 2, 3, 4], { seed: 5 }));
  assert.deepEqual(many.b, describe([10, 20, null, 30], { seed: 5 }));
  assert.deepEqual(many.c, describe([5, 6, 7, 9], { seed: 5 }));
});

test('seedFor depends on its parts, not on call order', () => {
  assert.equal(seedFor(1, 'abc'), seedFor(1, 'abc'));
  assert.notEqual(seedFor(1, 'abc'), seedFor(1, 'abd'));
  assert.notEqual(seedFor(1, 'abc'), seedFor(2, 'abc'));
});

test('intervalsOverlap', () => {
  assert.equal(intervalsOverlap([1, 2], [2, 3]), true);
  assert.equal(intervalsOverlap([1, 2], [2.1, 3]), false);
  assert.equal(intervalsOverlap([1, 5], [2, 3]), true);
  assert.equal(intervalsOverlap(null, [2, 3]), null);
});
