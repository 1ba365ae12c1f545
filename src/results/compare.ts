// `llem compare A B`: the configs two studies share, side by side per metric, with the change and
// whether the 95 % intervals overlap (non-overlap is a strong hint of a real difference; overlap
// does not prove there is none). Pure.
import { halfWidth, intervalsOverlap } from './stats.ts';
import type { StudySummary, SummaryMetricKey } from './summary-schema.ts';
import { ciOf, formatNumber, type Row, type TableData } from './table.ts';

export const COMPARE_METRICS: Array<{ key: SummaryMetricKey; header: string }> = [
  { key: 'energy_per_output_token_j', header: 'J/token' },
  { key: 'output_tokens_per_s', header: 'tokens/s' },
  { key: 'ttft_p50_ms', header: 'TTFT p50 ms' },
  { key: 'power_mean_w', header: 'power W' },
];

export interface CompareResult {
  table: TableData;
  matched: number;
  onlyA: string[];
  onlyB: string[];
}

/** Configs matched by config_hash, then by label for the rest (a changed default alters the hash). */
export function compareSummaries(a: StudySummary, b: StudySummary, metrics: SummaryMetricKey[] = COMPARE_METRICS.map((m) => m.key)): CompareResult {
  const bByHash = new Map(b.configs.map((c) => [c.config_hash, c]));
  const usedB = new Set<string>();
  const pairs: Array<[StudySummary['configs'][number], StudySummary['configs'][number], 'hash' | 'label']> = [];
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
      };
      rows.push(row);
      const pm = (mean: number | null, ci: [number, number] | null) => (mean === null ? '–' : ci ? `${formatNumber(mean)} ± ${formatNumber(halfWidth(ci), 2)}` : formatNumber(mean));
      display.push({
        label: ca.label + (matchedBy === 'label' ? ' (by label)' : ''),
        metric: COMPARE_METRICS.find((m) => m.key === key)?.header ?? key,
        a: `${pm(meanA, ciA)} (n=${ma?.n ?? 0})`,
        b: `${pm(meanB, ciB)} (n=${mb?.n ?? 0})`,
        change: change === null ? '–' : `${change >= 0 ? '+' : ''}${formatNumber(change)}${changePct === null ? '' : ` (${changePct >= 0 ? '+' : ''}${changePct.toFixed(1)} %)`}`,
        ci_overlap: overlap === null ? 'n/a (n < 2)' : overlap ? 'overlap' : 'NO overlap',
      });
    }
  }
  const notes: string[] = [`A: ${a.study.name} (${a.study.hash})  B: ${b.study.name} (${b.study.hash})  — ${pairs.length} configs in both`];
  if (a.study.partial) notes.push('A has partial results');
  if (b.study.partial) notes.push('B has partial results');
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
        { key: 'ci_overlap', header: '95 % CIs' },
      ],
      notes,
    },
    matched: pairs.length,
    onlyA,
    onlyB,
  };
}
