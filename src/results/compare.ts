// `llem compare A B`: first what differs between the two studies' environments and workloads, then
// the configs they share, per metric: both means with their 95 % intervals, the change, the ratio
// B/A with its interval over both studies' cycles (the wider of a percentile bootstrap and a
// delta-method t interval, as every interval llem shows), and whether the difference is
// distinguishable from noise (that interval excludes 1). Pure.
import type { RunResult } from './schema.ts';
import { METRIC_GETTERS, flattenConfig } from './summarize.ts';
import { bootstrapRatioCi, finiteValues, halfWidth, intervalsOverlap, ratioTCi, seedFor, widerInterval } from './stats.ts';
import type { ConfigSummary, StudySummary, SummaryMetricKey } from './summary-schema.ts';
import { ciOf, formatNumber, type Row, type TableData } from './table.ts';
import { environmentDifferences, formatDifference, type EnvDifference } from './environment-diff.ts';

export const COMPARE_METRICS: Array<{ key: SummaryMetricKey; header: string }> = [
  { key: 'energy_per_output_token_j', header: 'J/token' },
  { key: 'output_tokens_per_s', header: 'tokens/s' },
  { key: 'ttft_p50_ms', header: 'TTFT p50 ms' },
  { key: 'power_mean_w', header: 'power W' },
];

/** One study as compare needs it: its summary and the results the summary was computed from. */
export interface CompareInput {
  summary: StudySummary;
  results: readonly RunResult[];
}

export type Verdict = 'B higher' | 'B lower' | 'not distinguishable' | 'undefined';

export interface CompareResult {
  table: TableData;
  matched: number;
  onlyA: string[];
  onlyB: string[];
  /** Environment and workload differences, meaning-changing ones first. */
  differences: EnvDifference[];
}

type Pair = [ConfigSummary, ConfigSummary, 'hash' | 'label'];

/** Configs matched by config_hash, then by label for the rest (a changed default alters the hash). */
function matchConfigs(a: StudySummary, b: StudySummary): { pairs: Pair[]; onlyA: string[]; onlyB: string[] } {
  const bByHash = new Map(b.configs.map((c) => [c.config_hash, c]));
  const usedB = new Set<string>();
  const pairs: Pair[] = [];
  const onlyA: string[] = [];
  for (const ca of a.configs) {
    const byHash = bByHash.get(ca.config_hash);
    if (byHash && !usedB.has(byHash.config_hash)) {
      pairs.push([ca, byHash, 'hash']);
      usedB.add(byHash.config_hash);
    }
  }
  for (const ca of a.configs) {
    if (pairs.some(([x]) => x === ca)) continue;
    const byLabel = b.configs.find((cb) => cb.label === ca.label && !usedB.has(cb.config_hash));
    if (byLabel) {
      pairs.push([ca, byLabel, 'label']);
      usedB.add(byLabel.config_hash);
    } else onlyA.push(ca.label);
  }
  const onlyB = b.configs.filter((c) => !usedB.has(c.config_hash)).map((c) => c.label);
  const order = new Map(a.configs.map((c, i) => [c, i]));
  pairs.sort((x, y) => order.get(x[0])! - order.get(y[0])!);
  return { pairs, onlyA, onlyB };
}

/** A pair matched by label has different configs: every field that differs is a workload difference. */
function workloadDifferences(pairs: Pair[]): EnvDifference[] {
  const out: EnvDifference[] = [];
  for (const [ca, cb, by] of pairs) {
    if (by !== 'label') continue;
    const fa = flattenConfig(ca.config);
    const fb = flattenConfig(cb.config);
    for (const k of [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort()) {
      const va = fa[k] ?? null;
      const vb = fb[k] ?? null;
      if (va !== vb) out.push({ field: 'workload', label: `${ca.label}: ${k}`, severity: 'meaning', a: String(va), b: String(vb) });
    }
  }
  return out;
}

function runValues(c: ConfigSummary, byId: Map<string, RunResult>, key: SummaryMetricKey): number[] {
  return finiteValues(c.runs.map((id) => byId.get(id)).map((r) => (r ? METRIC_GETTERS[key](r.metrics) : null))).finite;
}

export function compareSummaries(a: CompareInput, b: CompareInput, metrics: SummaryMetricKey[] = COMPARE_METRICS.map((m) => m.key)): CompareResult {
  const { pairs, onlyA, onlyB } = matchConfigs(a.summary, b.summary);
  const usedIds = (s: StudySummary) => new Set(s.configs.flatMap((c) => c.runs));
  const usedA = usedIds(a.summary);
  const usedB = usedIds(b.summary);
  const resultsA = a.results.filter((r) => usedA.has(r.run_id));
  const resultsB = b.results.filter((r) => usedB.has(r.run_id));
  const differences = [...environmentDifferences(resultsA, resultsB), ...workloadDifferences(pairs)].sort(
    (x, y) => (x.severity === y.severity ? 0 : x.severity === 'meaning' ? -1 : 1),
  );
  const byIdA = new Map(resultsA.map((r) => [r.run_id, r]));
  const byIdB = new Map(resultsB.map((r) => [r.run_id, r]));
  const stats = a.summary.statistics;
  const meaningful = differences.filter((d) => d.severity === 'meaning');
  const envText = meaningful.map((d) => `${d.field === 'workload' ? d.label : d.field}: ${d.a} → ${d.b}`).join('; ');

  const rows: Row[] = [];
  const display: Array<Record<string, string>> = [];
  for (const [ca, cb, matchedBy] of pairs) {
    for (const key of metrics) {
      const ma = ca.metrics[key];
      const mb = cb.metrics[key];
      const ciA = ciOf(ma);
      const ciB = ciOf(mb);
      const meanA = ma?.mean ?? null;
      const meanB = mb?.mean ?? null;
      const change = meanA !== null && meanB !== null ? meanB - meanA : null;
      const changePct = change !== null && meanA !== null && meanA !== 0 ? (100 * change) / Math.abs(meanA) : null;
      const overlap = intervalsOverlap(ciA, ciB);
      const ratio = meanA !== null && meanB !== null && meanA !== 0 ? meanB / meanA : null;
      const valuesA = runValues(ca, byIdA, key);
      const valuesB = runValues(cb, byIdB, key);
      const ratioBootstrap = bootstrapRatioCi(valuesA, valuesB, stats.bootstrap_resamples, stats.confidence, seedFor(stats.bootstrap_seed, ca.config_hash, cb.config_hash, key));
      const ratioT = ratioBootstrap === null ? null : ratioTCi(valuesA, valuesB, stats.confidence);
      const ratioCi = widerInterval(ratioT, ratioBootstrap);
      const verdict: Verdict = ratioCi === null ? 'undefined' : ratioCi[0] > 1 ? 'B higher' : ratioCi[1] < 1 ? 'B lower' : 'not distinguishable';
      const row: Row = {
        label: ca.label,
        config_hash_a: ca.config_hash,
        config_hash_b: cb.config_hash,
        matched_by: matchedBy,
        metric: key,
        a_mean: meanA,
        a_ci_low: ciA?.[0] ?? null,
        a_ci_high: ciA?.[1] ?? null,
        a_n: ma?.n ?? 0,
        b_mean: meanB,
        b_ci_low: ciB?.[0] ?? null,
        b_ci_high: ciB?.[1] ?? null,
        b_n: mb?.n ?? 0,
        change,
        change_pct: changePct,
        ci_overlap: overlap,
        ratio,
        ratio_ci_low: ratioCi?.[0] ?? null,
        ratio_ci_high: ratioCi?.[1] ?? null,
        ratio_t_ci_low: ratioT?.[0] ?? null,
        ratio_t_ci_high: ratioT?.[1] ?? null,
        ratio_bootstrap_ci_low: ratioBootstrap?.[0] ?? null,
        ratio_bootstrap_ci_high: ratioBootstrap?.[1] ?? null,
        verdict,
      };
      if (meaningful.length) row.env_differences = envText;
      rows.push(row);
      const pm = (mean: number | null, ci: [number, number] | null) => (mean === null ? '–' : ci ? `${formatNumber(mean)} ± ${formatNumber(halfWidth(ci), 2)}` : formatNumber(mean));
      display.push({
        label: ca.label + (matchedBy === 'label' ? ' (by label)' : ''),
        metric: COMPARE_METRICS.find((m) => m.key === key)?.header ?? key,
        a: `${pm(meanA, ciA)} (n=${ma?.n ?? 0})`,
        b: `${pm(meanB, ciB)} (n=${mb?.n ?? 0})`,
        change: change === null ? '–' : `${change >= 0 ? '+' : ''}${formatNumber(change)}${changePct === null ? '' : ` (${changePct >= 0 ? '+' : ''}${changePct.toFixed(1)} %)`}`,
        ratio: ratio === null ? '–' : `${formatNumber(ratio)}${ratioCi ? ` [${formatNumber(ratioCi[0])}, ${formatNumber(ratioCi[1])}]` : ''}`,
        verdict: verdict === 'undefined' ? 'n/a (n < 2 or a mean near 0)' : verdict,
      });
    }
  }
  const notes: string[] = [];
  if (differences.length) {
    notes.push(meaningful.length ? `ENVIRONMENTS DIFFER (${meaningful.length} difference(s) that change the meaning of the numbers):` : 'Environment differences (readings, not settings):');
    for (const d of differences) notes.push(`  ${d.severity === 'meaning' ? '!' : '·'} ${d.field === 'workload' ? `workload ${d.label}: A ${d.a} · B ${d.b}` : formatDifference(d)}`);
  }
  notes.push(`A: ${a.summary.study.name} (${a.summary.study.hash})  B: ${b.summary.study.name} (${b.summary.study.hash})  — ${pairs.length} configs in both`);
  if (a.summary.study.partial) notes.push('A has partial results');
  if (b.summary.study.partial) notes.push('B has partial results');
  if (onlyA.length) notes.push(`only in A (${onlyA.length}): ${onlyA.join(', ')}`);
  if (onlyB.length) notes.push(`only in B (${onlyB.length}): ${onlyB.join(', ')}`);
  return {
    table: {
      rows,
      display,
      displayColumns: [
        { key: 'label', header: 'config' },
        { key: 'metric', header: 'metric' },
        { key: 'a', header: 'A mean ± CI' },
        { key: 'b', header: 'B mean ± CI' },
        { key: 'change', header: 'B − A' },
        { key: 'ratio', header: 'B/A [95 % CI]' },
        { key: 'verdict', header: 'vs noise' },
      ],
      notes,
      legend: [
        `B/A: ratio of the means; its interval is the wider of a percentile bootstrap over both studies' cycles (${stats.bootstrap_resamples} resamples, seeded) and a delta-method t interval. "vs noise": distinguishable when that interval excludes 1. ± of A and B: the wider of the t and bootstrap intervals of the mean.`,
      ],
    },
    matched: pairs.length,
    onlyA,
    onlyB,
    differences,
  };
}
