// Cross-cycle statistics, hand-written on purpose: the numbers below are published by researchers,
// so every formula is short enough to be read against a textbook and is pinned by tests against
// values computed by hand. The npm statistics packages we looked at either lack a seeded bootstrap
// (simple-statistics, jstat) or the Student-t quantile for small df without a big dependency tree;
// the whole of what we need is ~150 lines.
import { mulberry32 } from '../prng.ts';

/** Sample statistics of one metric over the completed runs of one config. */
export interface MetricStats {
  /** Finite values used. */
  n: number;
  /** Values that were null, NaN or infinite (metric not measured in that run): not counted. */
  n_missing: number;
  mean: number | null;
  /** Sample standard deviation (n − 1 denominator); null below n = 2. */
  std: number | null;
  /** std / |mean|; null when std is null or the mean is 0. */
  cv: number | null;
  median: number | null;
  min: number | null;
  max: number | null;
  /** Percentile bootstrap of the mean; null below n = 2. */
  ci_bootstrap: [number, number] | null;
  /** mean ± t(1 − α/2, n − 1) · std / √n; null below n = 2. */
  ci_t: [number, number] | null;
  /** cv above the threshold (default 10 %) and the mean distinguishable from zero (its interval
   * excludes 0): a quantity that hovers around zero (energy_adjusted_j at constant power) has a
   * huge CV that says nothing about the measurement. The interval is the one shown (bootstrap). */
  high_variance: boolean;
}

export interface StatsOptions {
  /** Confidence level of both intervals, e.g. 0.95. */
  confidence: number;
  bootstrapResamples: number;
  /** 32-bit seed of this metric's resampling (derive it with seedFor for order independence). */
  seed: number;
  /** CV above which `high_variance` is set. */
  highVarianceCv: number;
}

export const DEFAULT_STATS_OPTIONS: StatsOptions = {
  confidence: 0.95,
  // 1000 resamples (seaborn's default; Efron & Tibshirani's floor for percentile intervals) keeps a
  // 10,000-run summary under a second; --bootstrap-resamples raises it.
  bootstrapResamples: 1000,
  seed: 0x5eed,
  highVarianceCv: 0.1,
};


/** FNV-1a over the parts joined, mixed with a base seed: a per-(config, metric) seed that does
 * not depend on the order configs are summarised in, so adding a config never moves another's CI. */
export function seedFor(baseSeed: number, ...parts: string[]): number {
  let h = (0x811c9dc5 ^ (baseSeed >>> 0)) >>> 0;
  const s = parts.join('\u0000');
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Linear-interpolation quantile of sorted values (type 7: R's default, numpy's default). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError('quantile of an empty sample');
  if (n === 1) return sorted[0]!;
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

// --- Student t quantile: regularised incomplete beta (continued fraction) inverted by bisection.

function logGamma(x: number): number {
  // Lanczos approximation (g = 7, n = 9), accurate to ~1e-15 for x > 0.
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** Regularised incomplete beta I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lnFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x);
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(lnFront) * betaContinuedFraction(a, b, x)) / a;
  return 1 - (Math.exp(lnFront) * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** P(T ≤ t) for Student's t with df degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

const tQuantileCache = new Map<string, number>();

/** The p-quantile (p > 0.5) of Student's t with df degrees of freedom, to ~1e-10. */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0.5 && p < 1)) throw new RangeError(`t quantile needs 0.5 < p < 1, got ${p}`);
  if (!(df >= 1)) throw new RangeError(`t quantile needs df ≥ 1, got ${df}`);
  const key = `${p}:${df}`;
  const cached = tQuantileCache.get(key);
  if (cached !== undefined) return cached;
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  const q = (lo + hi) / 2;
  tQuantileCache.set(key, q);
  return q;
}

/** Finite numbers only: null, undefined, NaN and ±Infinity mean "not measured". */
export function finiteValues(values: ReadonlyArray<number | null | undefined>): { finite: number[]; missing: number } {
  const finite: number[] = [];
  let missing = 0;
  for (const v of values) {
    if (typeof v === 'number' && Number.isFinite(v)) finite.push(v);
    else missing++;
  }
  return { finite, missing };
}

/** B × n resampling indices (row b = resample b), drawn from mulberry32(seed). Depends only on
 * (n, resamples, seed), so metrics with the same n in one config share them (paired resamples). */
export function resampleIndices(n: number, resamples: number, seed: number, scratch?: Uint32Array): Uint32Array {
  const rand = mulberry32(seed);
  const idx = scratch && scratch.length >= n * resamples ? scratch.subarray(0, n * resamples) : new Uint32Array(n * resamples);
  for (let i = 0; i < idx.length; i++) idx[i] = (rand() * n) | 0;
  return idx;
}

/** k-th smallest (0-based) of arr, rearranging arr in place (quickselect): O(n) where a sort of
 * every resample set would dominate a 10,000-run summary. */
function selectKth(arr: Float64Array, k: number): number {
  let left = 0;
  let right = arr.length - 1;
  while (right > left) {
    const mid = (left + right) >> 1;
    // median of three as pivot
    const a = arr[left]!, b = arr[mid]!, c = arr[right]!;
    const pivot = a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
    let i = left;
    let j = right;
    while (i <= j) {
      while (arr[i]! < pivot) i++;
      while (arr[j]! > pivot) j--;
      if (i <= j) {
        const t = arr[i]!;
        arr[i] = arr[j]!;
        arr[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return arr[k]!;
  }
  return arr[k]!;
}

/** Type-7 quantile without sorting (arr is rearranged). */
function quantileSelect(arr: Float64Array, q: number): number {
  const n = arr.length;
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const vlo = selectKth(arr, lo);
  if (lo + 1 >= n || h === lo) return vlo;
  let vhi = Infinity;
  for (let i = lo + 1; i < n; i++) if (arr[i]! < vhi) vhi = arr[i]!;
  return vlo + (h - lo) * (vhi - vlo);
}

/** Percentile-bootstrap CI of the mean over precomputed resampling indices (see resampleIndices). */
export function bootstrapMeanCiWith(values: ReadonlyArray<number>, indices: Uint32Array, confidence: number): [number, number] {
  const n = values.length;
  if (n < 2) throw new RangeError('bootstrap needs at least 2 values');
  const resamples = indices.length / n;
  if (!Number.isInteger(resamples)) throw new RangeError('resampling indices do not match the sample size');
  const v = Float64Array.from(values);
  const means = new Float64Array(resamples);
  let k = 0;
  for (let b = 0; b < resamples; b++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += v[indices[k++]!]!;
    means[b] = sum / n;
  }
  const alpha = 1 - confidence;
  return [quantileSelect(means, alpha / 2), quantileSelect(means, 1 - alpha / 2)];
}

/** Percentile-bootstrap CI of the mean. Deterministic for a given seed. Needs n ≥ 2. */
export function bootstrapMeanCi(values: ReadonlyArray<number>, resamples: number, confidence: number, seed: number): [number, number] {
  return bootstrapMeanCiWith(values, resampleIndices(values.length, resamples, seed), confidence);
}

export function describe(
  values: ReadonlyArray<number | null | undefined>,
  options: Partial<StatsOptions> = {},
  /** The bootstrap CI of these finite values (describeMany computes several metrics at once). */
  bootstrapCi?: (finite: number[]) => [number, number],
): MetricStats {
  const opts = { ...DEFAULT_STATS_OPTIONS, ...options };
  const { finite, missing } = finiteValues(values);
  const n = finite.length;
  if (n === 0) {
    return { n: 0, n_missing: missing, mean: null, std: null, cv: null, median: null, min: null, max: null, ci_bootstrap: null, ci_t: null, high_variance: false };
  }
  const sorted = Float64Array.from(finite).sort();
  let sum = 0;
  for (const v of finite) sum += v;
  const mean = sum / n;
  const min = sorted[0]!;
  const max = sorted[n - 1]!;
  const median = quantileSorted(sorted, 0.5);
  if (n === 1) {
    return { n, n_missing: missing, mean, std: null, cv: null, median, min, max, ci_bootstrap: null, ci_t: null, high_variance: false };
  }
  if (min === max) {
    // Identical values: exactly no spread (the sum above can carry rounding noise).
    return { n, n_missing: missing, mean: min, std: 0, cv: min === 0 ? null : 0, median: min, min, max, ci_bootstrap: [min, min], ci_t: [min, min], high_variance: false };
  }
  let ss = 0;
  for (const v of finite) ss += (v - mean) * (v - mean);
  const std = Math.sqrt(ss / (n - 1));
  const cv = mean === 0 ? null : std / Math.abs(mean);
  const halfWidth = studentTQuantile(1 - (1 - opts.confidence) / 2, n - 1) * (std / Math.sqrt(n));
  const ci_t: [number, number] = [mean - halfWidth, mean + halfWidth];
  const ci_bootstrap = bootstrapCi ? bootstrapCi(finite) : bootstrapMeanCi(finite, opts.bootstrapResamples, opts.confidence, opts.seed);
  // A flag, not a published interval: the bootstrap's test against zero only keeps a quantity that
  // is noise around 0 (energy_adjusted_j at constant power) out of it (issue 16).
  const high_variance = cv !== null && cv > opts.highVarianceCv && excludesZero(ci_bootstrap ?? ci_t);
  return { n, n_missing: missing, mean, std, cv, median, min, max, ci_bootstrap, ci_t, high_variance };
}

/** describe() for several metrics of one config: metrics with the same number of finite values
 * share resampling indices (paired bootstrap, and one draw instead of one per metric). The result
 * for each metric equals describe(values, options) alone. */
export function describeMany<K extends string>(
  valuesByMetric: Record<K, ReadonlyArray<number | null | undefined>>,
  options: Partial<StatsOptions> = {},
): Record<K, MetricStats> {
  const opts = { ...DEFAULT_STATS_OPTIONS, ...options };
  const keys = Object.keys(valuesByMetric) as K[];
  const finiteByKey = new Map<K, number[]>();
  // Group the metrics that need a bootstrap (n ≥ 2, not all equal) by n.
  const groups = new Map<number, K[]>();
  for (const key of keys) {
    const { finite } = finiteValues(valuesByMetric[key]);
    finiteByKey.set(key, finite);
    if (finite.length < 2) continue;
    let min = finite[0]!;
    let max = finite[0]!;
    for (const v of finite) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (min === max) continue;
    const g = groups.get(finite.length) ?? [];
    g.push(key);
    groups.set(finite.length, g);
  }
  const cis = new Map<K, [number, number]>();
  for (const [n, groupKeys] of groups) {
    const columns = groupKeys.map((k) => finiteByKey.get(k)!);
    if (indexScratch.length < n * opts.bootstrapResamples) indexScratch = new Uint32Array(n * opts.bootstrapResamples);
    const result = bootstrapMeanCisMulti(columns, resampleIndices(n, opts.bootstrapResamples, opts.seed, indexScratch), opts.confidence);
    groupKeys.forEach((k, i) => cis.set(k, result[i]!));
  }
  const out = {} as Record<K, MetricStats>;
  for (const key of keys) {
    out[key] = describe(valuesByMetric[key], opts, () => {
      const ci = cis.get(key);
      if (!ci) throw new Error(`internal: no bootstrap interval computed for ${key}`);
      return ci;
    });
  }
  return out;
}

const scratch = new Map<string, Float64Array>();
function scratchFloat64(name: string, length: number): Float64Array {
  let buf = scratch.get(name);
  if (!buf || buf.length < length) {
    buf = new Float64Array(Math.max(length, (buf?.length ?? 0) * 2));
    scratch.set(name, buf);
  }
  return buf.subarray(0, length);
}
let indexScratch = new Uint32Array(0);

/** bootstrapMeanCiWith for M columns of the same length at once: one pass over the indices with
 * the columns interleaved (row-major), which is what makes a 10,000-run summary fast. */
export function bootstrapMeanCisMulti(columns: ReadonlyArray<ReadonlyArray<number>>, indices: Uint32Array, confidence: number): Array<[number, number]> {
  const m = columns.length;
  const n = columns[0]?.length ?? 0;
  if (n < 2) throw new RangeError('bootstrap needs at least 2 values');
  const resamples = indices.length / n;
  const rows = scratchFloat64('rows', n * m);
  for (let j = 0; j < m; j++) {
    const col = columns[j]!;
    if (col.length !== n) throw new RangeError('columns differ in length');
    for (let i = 0; i < n; i++) rows[i * m + j] = col[i]!;
  }
  // Reused buffers: a 1000-config summary would otherwise allocate ~100 MB of short-lived arrays.
  const meansAll = scratchFloat64('means', m * resamples);
  const means = columns.map((_, j) => meansAll.subarray(j * resamples, (j + 1) * resamples));
  const sums = scratchFloat64('sums', m);
  let k = 0;
  for (let b = 0; b < resamples; b++) {
    sums.fill(0);
    for (let i = 0; i < n; i++) {
      const base = indices[k++]! * m;
      for (let j = 0; j < m; j++) sums[j] += rows[base + j]!;
    }
    for (let j = 0; j < m; j++) means[j]![b] = sums[j]! / n;
  }
  const alpha = 1 - confidence;
  return means.map((mm) => [quantileSelect(mm, alpha / 2), quantileSelect(mm, 1 - alpha / 2)] as [number, number]);
}

/** The interval lies entirely on one side of zero: the mean is distinguishable from zero. */
export function excludesZero(ci: [number, number] | null): boolean {
  return ci !== null && (ci[0] > 0 || ci[1] < 0);
}

/** Half the width of an interval, for "mean ± x" displays. */
/**
 * The interval llem shows and decides on (the ± of results, report and compare; the SLO and
 * frontier checks; the stopping rule): the wider of the Student-t and the percentile-bootstrap
 * interval of the mean. At the cycle counts studies use (3–30) the percentile bootstrap is the
 * narrower one and covers the true mean far less often than its nominal 95 % (74 % at n = 3,
 * 90 % at n = 10 on normal noise: docs/MEASUREMENT.md "Which interval is shown",
 * test/results/intervals.test.ts); the wider keeps what is published honest at every n.
 */
export function widerInterval(t: [number, number] | null, bootstrap: [number, number] | null): [number, number] | null {
  if (!t) return bootstrap;
  if (!bootstrap) return t;
  return t[1] - t[0] >= bootstrap[1] - bootstrap[0] ? t : bootstrap;
}

/** How summary.json names the interval shown (statistics.interval_shown). */
export const INTERVAL_SHOWN = 'the wider of ci95_t and ci95_bootstrap';

/** The shown interval of one metric's statistics (see widerInterval). */
export function shownInterval(s: Pick<MetricStats, 'ci_t' | 'ci_bootstrap'>): [number, number] | null {
  return widerInterval(s.ci_t, s.ci_bootstrap);
}

export function halfWidth(ci: [number, number] | null): number | null {
  return ci ? (ci[1] - ci[0]) / 2 : null;
}

/** Do two intervals share any point? */
export function intervalsOverlap(a: [number, number] | null, b: [number, number] | null): boolean | null {
  if (!a || !b) return null;
  return a[0] <= b[1] && b[0] <= a[1];
}

/**
 * Student-t CI of mean(b) ÷ mean(a) by the delta method: the ratio's relative variance is the sum
 * of the two means' relative variances, with Welch–Satterthwaite degrees of freedom. null when
 * either sample has fewer than 2 values or mean(a) is 0. Beside the bootstrap's: at 3–5 cycles
 * the percentile bootstrap of a ratio covers ~81–89 % for a nominal 95 %, this one ~95 %.
 */
export function ratioTCi(a: ReadonlyArray<number>, b: ReadonlyArray<number>, confidence: number): [number, number] | null {
  if (a.length < 2 || b.length < 2) return null;
  const meanOf = (x: ReadonlyArray<number>) => x.reduce((s, v) => s + v, 0) / x.length;
  const varOf = (x: ReadonlyArray<number>, m: number) => x.reduce((s, v) => s + (v - m) * (v - m), 0) / (x.length - 1);
  const ma = meanOf(a);
  const mb = meanOf(b);
  if (ma === 0) return null;
  const ratio = mb / ma;
  // relative variances of the two means (b's is 0 when its mean is 0: then the ratio is 0 ± a's part)
  const ua = varOf(a, ma) / (a.length * ma * ma);
  const ub = mb === 0 ? 0 : varOf(b, mb) / (b.length * mb * mb);
  if (ua + ub === 0) return [ratio, ratio];
  const df = (ua + ub) ** 2 / (ua ** 2 / (a.length - 1) + ub ** 2 / (b.length - 1));
  const half = studentTQuantile(1 - (1 - confidence) / 2, Math.max(1, df)) * Math.abs(ratio) * Math.sqrt(ua + ub);
  return [ratio - half, ratio + half];
}

/**
 * Percentile-bootstrap CI of mean(b) ÷ mean(a), resampling each sample on its own (the two
 * studies' cycles are independent), from mulberry32(seed). null when either sample has fewer than
 * 2 values, or when a resampled mean of `a` is 0 or changes sign (the ratio is then meaningless).
 */
export function bootstrapRatioCi(a: ReadonlyArray<number>, b: ReadonlyArray<number>, resamples: number, confidence: number, seed: number): [number, number] | null {
  if (a.length < 2 || b.length < 2) return null;
  const rand = mulberry32(seed);
  const ratios = new Float64Array(resamples);
  const sign = Math.sign(a.reduce((s, v) => s + v, 0));
  if (sign === 0) return null;
  for (let k = 0; k < resamples; k++) {
    let sa = 0;
    for (let i = 0; i < a.length; i++) sa += a[(rand() * a.length) | 0]!;
    let sb = 0;
    for (let i = 0; i < b.length; i++) sb += b[(rand() * b.length) | 0]!;
    if (Math.sign(sa) !== sign) return null;
    ratios[k] = sb / b.length / (sa / a.length);
  }
  const alpha = 1 - confidence;
  return [quantileSelect(ratios, alpha / 2), quantileSelect(ratios, 1 - alpha / 2)];
}
