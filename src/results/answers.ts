// The answer views of `llem results`: the CI-aware frontier (--frontier) and goodput under an SLO
// (--slo), as TableData for table/Markdown/CSV and as plain objects for JSON. Pure.
import type { Frontier, FrontierEntry } from './frontier.ts';
import type { SloAnswer } from './slo.ts';
import { formatSlo } from './slo.ts';
import { shownInterval, type MetricStats } from './stats.ts';
import type { StudySummary } from './summary-schema.ts';
import { formatNumber, type Row, type TableData } from './table.ts';

function pm(mean: number | null | undefined, ci: [number, number] | null | undefined): string {
  if (mean === null || mean === undefined) return '–';
  return ci ? `${formatNumber(mean)} ± ${formatNumber((ci[1] - ci[0]) / 2, 2)}` : formatNumber(mean);
}

function sweptColumns(summary: StudySummary): Array<{ key: string; header: string }> {
  return summary.swept_fields.length ? summary.swept_fields.map((f) => ({ key: f, header: f })) : [{ key: 'label', header: 'config' }];
}

function sweptCells(summary: StudySummary, hash: string): Record<string, string> {
  const c = summary.configs.find((x) => x.config_hash === hash);
  const out: Record<string, string> = { label: c?.label ?? hash };
  for (const f of summary.swept_fields) out[f] = c?.swept[f] === null || c?.swept[f] === undefined ? '–' : String(c.swept[f]);
  return out;
}

const STATUS_TEXT: Record<FrontierEntry['status'], string> = {
  frontier: 'on frontier',
  not_separable: 'on frontier, not separable',
  dominated: 'dominated',
  unmeasured: 'not measured',
};

/** Frontier rows, sorted along x (best first); JSON rows keep dominated_by as arrays. */
export function frontierView(summary: StudySummary, frontier: Frontier): { data: TableData; json: Array<Record<string, unknown>> } {
  const labelOf = new Map(summary.configs.map((c) => [c.config_hash, c.label]));
  const sign = frontier.x.better === 'lower' ? 1 : -1;
  const order = [...frontier.entries].sort((a, b) => {
    if (!a.x || !a.y) return 1;
    if (!b.x || !b.y) return -1;
    return sign * (a.x.mean - b.x.mean) || a.y.mean - b.y.mean;
  });
  const rows: Row[] = [];
  const display: Array<Record<string, string>> = [];
  const json: Array<Record<string, unknown>> = [];
  for (const e of order) {
    const base = {
      config_hash: e.config_hash,
      label: e.label,
      [`${frontier.x.name}`]: e.x?.mean ?? null,
      [`${frontier.x.name}_ci_low`]: e.x?.ci?.[0] ?? null,
      [`${frontier.x.name}_ci_high`]: e.x?.ci?.[1] ?? null,
      [`${frontier.y.name}`]: e.y?.mean ?? null,
      [`${frontier.y.name}_ci_low`]: e.y?.ci?.[0] ?? null,
      [`${frontier.y.name}_ci_high`]: e.y?.ci?.[1] ?? null,
      n: Math.min(e.x?.n ?? 0, e.y?.n ?? 0),
      status: e.status,
      on_frontier: e.on_frontier,
    };
    rows.push({ ...base, dominated_by: e.dominated_by.join(' '), not_separable_from: e.not_separable_from.join(' ') });
    json.push({ ...base, dominated_by: e.dominated_by, not_separable_from: e.not_separable_from });
    const names = (hashes: string[]) => hashes.map((h) => labelOf.get(h) ?? h).join(', ');
    display.push({
      ...sweptCells(summary, e.config_hash),
      x: pm(e.x?.mean, e.x?.ci),
      y: pm(e.y?.mean, e.y?.ci),
      status:
        e.status === 'dominated'
          ? `dominated by ${names(e.dominated_by)}`
          : e.status === 'not_separable'
            ? `on frontier (not separable from ${names(e.not_separable_from)})`
            : STATUS_TEXT[e.status],
    });
  }
  const onFrontier = frontier.entries.filter((e) => e.on_frontier).length;
  const notSeparable = frontier.entries.filter((e) => e.status === 'not_separable').length;
  return {
    data: {
      rows,
      display,
      displayColumns: [...sweptColumns(summary), { key: 'x', header: `${frontier.x.title} ±CI` }, { key: 'y', header: `${frontier.y.title} ±CI` }, { key: 'status', header: 'frontier' }],
      notes: [
        `Frontier of ${frontier.y.name} (lower is better) against ${frontier.x.name} (${frontier.x.better} is better): ${onFrontier} of ${frontier.entries.length} configs on it${notSeparable ? `, ${notSeparable} of them only because an interval overlaps one that looks better` : ''}. A config is dominated only when another is better on both axes beyond the overlap of their 95 % intervals.`,
      ],
    },
    json,
  };
}

function statCi(s: MetricStats): [number, number] | null {
  return shownInterval(s);
}

function statPm(s: MetricStats): string {
  return pm(s.mean, statCi(s));
}

function meetsMark(v: boolean | null): string {
  return v === null ? '?' : v ? 'yes' : 'no';
}

/** Per config: goodput, J per good token, each condition's run-level value; the recommendation below. */
export function sloView(summary: StudySummary, answer: SloAnswer): { data: TableData; json: Record<string, unknown> } {
  const rows: Row[] = [];
  const display: Array<Record<string, string>> = [];
  const configJson: Array<Record<string, unknown>> = [];
  for (const c of answer.configs) {
    const row: Row = {
      config_hash: c.config_hash,
      label: c.label,
      runs: c.runs.length,
      good_fraction: c.good_fraction.mean,
      goodput_requests_per_s: c.goodput_requests_per_s.mean,
      goodput_requests_per_s_ci_low: statCi(c.goodput_requests_per_s)?.[0] ?? null,
      goodput_requests_per_s_ci_high: statCi(c.goodput_requests_per_s)?.[1] ?? null,
      goodput_tokens_per_s: c.goodput_tokens_per_s.mean,
      goodput_tokens_per_s_ci_low: statCi(c.goodput_tokens_per_s)?.[0] ?? null,
      goodput_tokens_per_s_ci_high: statCi(c.goodput_tokens_per_s)?.[1] ?? null,
      energy_per_good_token_j: c.energy_per_good_token_j.mean,
      energy_per_good_token_j_ci_low: statCi(c.energy_per_good_token_j)?.[0] ?? null,
      energy_per_good_token_j_ci_high: statCi(c.energy_per_good_token_j)?.[1] ?? null,
      meets_slo: c.meets_slo,
      meets_slo_with_confidence: c.meets_slo_with_confidence,
    };
    for (const k of c.conditions) {
      row[k.key] = k.mean;
      row[`${k.key}_ci_low`] = k.ci?.[0] ?? null;
      row[`${k.key}_ci_high`] = k.ci?.[1] ?? null;
    }
    rows.push(row);
    configJson.push({ ...row, runs: c.runs, conditions: c.conditions });
    const cell: Record<string, string> = {
      ...sweptCells(summary, c.config_hash),
      good: c.good_fraction.mean === null ? '–' : `${formatNumber(100 * c.good_fraction.mean, 3)} %`,
      goodput_req: statPm(c.goodput_requests_per_s),
      goodput_tok: statPm(c.goodput_tokens_per_s),
      jgood: statPm(c.energy_per_good_token_j),
      meets: c.meets_slo_with_confidence ? 'yes (whole CI)' : meetsMark(c.meets_slo),
    };
    for (const k of c.conditions) cell[k.key] = `${pm(k.mean, k.ci)} ${k.meets === null ? '' : k.meets ? '✓' : '✗'}`.trim();
    display.push(cell);
  }
  const rec = answer.recommendation;
  const slo = formatSlo(answer.conditions);
  const legend = [
    rec
      ? `Recommended under ${slo}: ${rec.label} (${rec.config_hash}), ${pm(rec.energy_per_good_token_j.mean, rec.energy_per_good_token_j.ci)} J per good token (95 % CI${rec.energy_per_good_token_j.ci ? ` ${formatNumber(rec.energy_per_good_token_j.ci[0])}–${formatNumber(rec.energy_per_good_token_j.ci[1])}` : ' undefined: n < 2'}, n=${rec.energy_per_good_token_j.n})${
          rec.runner_up ? `; next: ${rec.runner_up.label}, ${pm(rec.runner_up.mean, rec.runner_up.ci)} J${rec.runner_up.separable ? ' (separable)' : ''}` : ''
        }`
      : `No recommendation under ${slo}.`,
    ...answer.notes,
    'A request is good when it completed and meets every condition with its own TTFT/TPOT/E2E (ITL: the stat over its own gaps); goodput = good requests (or their output tokens) ÷ window seconds; J per good token = energy_j ÷ good output tokens.',
  ];
  return {
    data: {
      rows,
      display,
      displayColumns: [
        ...sweptColumns(summary),
        { key: 'good', header: 'good req.' },
        { key: 'goodput_req', header: 'goodput req/s' },
        { key: 'goodput_tok', header: 'goodput tok/s' },
        { key: 'jgood', header: 'J/good token' },
        ...answer.conditions.map((k) => ({ key: k.key, header: `${k.key} (${k.op}${k.threshold_ms})` })),
        { key: 'meets', header: 'meets SLO' },
      ],
      notes: [`SLO ${slo}: per config over completed cycles, mean ± 95 % CI.`],
      legend,
    },
    json: { slo, conditions: answer.conditions, configs: configJson, recommendation: rec, notes: answer.notes },
  };
}

