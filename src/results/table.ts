// Rows of `llem results`: one per config (from the summary) or one per run (--runs), filtered
// (--where), sorted (--sort) and rendered as a terminal table, CSV, JSON or Markdown. Pure.
import Table from 'cli-table3';
import { stringify } from 'csv-stringify/sync';
import type { PlanFile } from '../study/types.ts';
import type { StudySnapshot } from '../study-dir/schema.ts';
import type { RunResult } from './schema.ts';
import { flattenConfig, METRIC_GETTERS, resultsByRun, runKey, snapshotFromResults, usedResultOf, type Scalar } from './summarize.ts';
import { SUMMARY_METRICS, type MetricSummary, type StudySummary, type SummaryMetricKey } from './summary-schema.ts';
import { flagLegend, HIGH_CV_LEGEND, shortFlagsText } from './flags.ts';
import { reasonsText } from '../measure/validity.ts';
import { widerInterval } from './stats.ts';

export type OutputFormat = 'table' | 'csv' | 'json' | 'md';
export const OUTPUT_FORMATS: OutputFormat[] = ['table', 'csv', 'json', 'md'];

/** A flat record: what CSV/JSON write and what --where and --sort look at. */
export type Row = Record<string, Scalar>;

/** Display cell of a row (table/md), keyed like the row; absent = the raw value. */
export interface TableData {
  rows: Row[];
  /** Columns of the terminal/Markdown view: key into `display` (or the row), header text. */
  displayColumns: Array<{ key: string; header: string }>;
  display: Array<Record<string, string>>;
  /** Lines printed above a table (partial study, warnings). */
  notes: string[];
  /** Lines printed below a terminal or Markdown table (the flag legend); not in CSV/JSON. */
  legend?: string[];
  /** Every config field of each row (flattened), so --where/--sort work on fields that are not
   * swept (and so not columns), e.g. `--where model=…` in a one-model study. */
  configFields?: Row[];
}

/** The headline metrics of the table, in order. */
export const HEADLINE_METRICS: Array<{ key: SummaryMetricKey; column: string; header: string }> = [
  { key: 'energy_per_output_token_j', column: 'energy_per_token_j', header: 'J/token' },
  { key: 'output_tokens_per_s', column: 'tokens_per_s', header: 'tokens/s' },
  { key: 'ttft_p50_ms', column: 'ttft_p50_ms', header: 'TTFT p50 ms' },
  { key: 'power_mean_w', column: 'power_mean_w', header: 'power W' },
];

/** Compact number: 4 significant digits, no exponent for everyday magnitudes. */
export function formatNumber(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  const abs = Math.abs(v);
  if (abs >= 1e6 || abs < 1e-4) return v.toExponential(digits - 1);
  if (abs >= 10 ** digits) return v.toFixed(0);
  return String(Number(v.toPrecision(digits)));
}

/** The interval shown as ±: the wider of the summary's t and bootstrap intervals (stats.ts widerInterval). */
export function ciOf(m: MetricSummary | undefined): [number, number] | null {
  return m ? widerInterval(m.ci95_t, m.ci95_bootstrap) : null;
}

export function formatMeanCi(m: MetricSummary | undefined): string {
  if (!m || m.mean === null) return '–';
  const ci = ciOf(m);
  if (!ci) return formatNumber(m.mean);
  return `${formatNumber(m.mean)} ± ${formatNumber((ci[1] - ci[0]) / 2, 2)}`;
}

export function flagsText(flags: Record<string, number>): string {
  return Object.entries(flags)
    .map(([code, count]) => `${code}×${count}`)
    .join(' ');
}

/** One row per config. Every summary metric gets mean/std/cv/ci columns for CSV and JSON. */
export function configTable(summary: StudySummary): TableData {
  const rows: Row[] = [];
  const display: Array<Record<string, string>> = [];
  for (const c of summary.configs) {
    const row: Row = { label: c.label, config_hash: c.config_hash };
    for (const f of summary.swept_fields) row[f] = c.swept[f] ?? null;
    row.runs_completed = c.counts.completed;
    row.runs_planned = c.planned_runs;
    row.runs_failed = c.counts.failed + c.counts.skipped + c.counts.interrupted;
    row.runs_invalid = c.counts.invalid;
    row.partial = c.partial;
    for (const h of HEADLINE_METRICS) {
      const m = c.metrics[h.key];
      const ci = ciOf(m);
      row[h.column] = m?.mean ?? null;
      row[`${h.column}_ci_low`] = ci?.[0] ?? null;
      row[`${h.column}_ci_high`] = ci?.[1] ?? null;
    }
    row.flags = flagsText(c.flags);
    row.high_variance = c.high_variance_metrics.join(' ');
    if (summary.protocol.target) {
      // n_cycles: auto: why it stopped (null: still measuring, the study is unfinished)
      row.stop_reason = c.stopping?.reason ?? null;
      row.stop_cycles = c.stopping?.cycles ?? null;
      row.stop_detail = c.stopping?.detail ?? null;
    }
    for (const def of SUMMARY_METRICS) {
      if (HEADLINE_METRICS.some((h) => h.key === def.key)) continue;
      row[def.key] = c.metrics[def.key]?.mean ?? null;
    }
    for (const h of HEADLINE_METRICS) {
      const m = c.metrics[h.key];
      row[`${h.column}_std`] = m?.std ?? null;
      row[`${h.column}_cv`] = m?.cv ?? null;
      row[`${h.column}_n`] = m?.n ?? 0;
      row[`${h.column}_t_ci_low`] = m?.ci95_t?.[0] ?? null;
      row[`${h.column}_t_ci_high`] = m?.ci95_t?.[1] ?? null;
    }
    rows.push(row);
    const cell: Record<string, string> = {
      runs: `${c.counts.completed}/${c.planned_runs}${c.partial ? '*' : ''}`,
      flags: [shortFlagsText(c.flags), c.high_variance_metrics.length ? `${HIGH_CV_LEGEND.short}(${c.high_variance_metrics.map(metricLabel).join(', ')})` : '']
        .filter(Boolean)
        .join(' '),
    };
    for (const h of HEADLINE_METRICS) cell[h.column] = formatMeanCi(c.metrics[h.key]) + (c.metrics[h.key]?.high_variance ? ' !' : '');
    for (const f of summary.swept_fields) cell[f] = scalarText(c.swept[f] ?? null);
    cell.label = c.label;
    if (summary.protocol.target) cell.stop = c.stopping ? c.stopping.reason : 'measuring';
    display.push(cell);
  }
  const sweptCols = summary.swept_fields.length ? summary.swept_fields.map((f) => ({ key: f, header: f })) : [{ key: 'label', header: 'config' }];
  return {
    rows,
    display,
    configFields: summary.configs.map((c) => flattenConfig(c.config)),
    displayColumns: [
      ...sweptCols,
      { key: 'runs', header: 'runs' },
      ...(summary.protocol.target ? [{ key: 'stop', header: 'stopped' }] : []),
      ...HEADLINE_METRICS.map((h) => ({ key: h.column, header: h.header })),
      { key: 'flags', header: 'flags' },
    ],
    notes: studyNotes(summary),
    legend: flagLegend(
      summary.configs.flatMap((c) => Object.keys(c.flags)),
      summary.configs.some((c) => c.high_variance_metrics.length > 0),
      summary.statistics.high_variance_cv,
    ),
  };
}

function metricLabel(key: string): string {
  return SUMMARY_METRICS.find((m) => m.key === key)?.label ?? key;
}

/** One line naming the study, its protocol and its hardware, above terminal tables. */
export function studyHeadline(summary: StudySummary): string {
  const p = summary.protocol;
  const e = summary.environment;
  const gpus = e ? [...new Set(e.gpus.map((g) => g.name))].join(' + ') || 'no GPU' : null;
  const hw = e ? ` · ${gpus}${e.driver_version ? `, driver ${e.driver_version}` : ''}${e.differences.length ? ` (${e.differences.length} runs on another environment)` : ''}` : '';
  const cycles = p.target ? `n_cycles: auto (${p.target.min_cycles}–${p.target.max_cycles} cycles, ${p.target.ci_half_width} on ${p.target.metric})` : `${p.n_cycles} cycles`;
  return `${summary.study.name} (${summary.study.hash}) · ${summary.configs.length} configs × ${cycles}, ${p.cycle_order} order${hw}`;
}

export function studyNotes(summary: StudySummary): string[] {
  const notes: string[] = [];
  const c = summary.study.counts;
  if (summary.study.partial) {
    notes.push(
      `PARTIAL RESULTS: ${c.completed} of ${c.planned} runs completed (${summary.study.status === 'unknown' ? 'no manifest' : `study ${summary.study.status}`}; ${c.pending} pending, ${c.running} running, ${c.interrupted} interrupted, ${c.failed} failed, ${c.skipped} skipped, ${c.invalid} invalid). Configs marked * have fewer runs than planned.`,
    );
  } else if (c.failed + c.skipped > 0) {
    notes.push(`${c.failed} failed and ${c.skipped} skipped runs are excluded from the statistics (see --runs).`);
  }
  notes.push(...invalidNotes(summary));
  if (summary.protocol.target) notes.push(stoppingNote(summary));
  for (const w of summary.warnings) notes.push(`warning: ${w}`);
  return notes;
}

/**
 * The validity gate's exclusions, with every reason: runs that ended invalid (in no statistic),
 * then attempts that were invalid and measured again (their results kept, not used).
 */
export function invalidNotes(summary: StudySummary): string[] {
  const notes: string[] = [];
  const reasons = (rs: Array<{ code: string; detail: string }>) => reasonsText(rs) || 'no reason recorded';
  const ended = summary.excluded_runs.filter((r) => r.status === 'invalid');
  if (ended.length > 0) notes.push(`EXCLUDED AS INVALID: ${ended.length} run(s) the validity gate judged unusable after every re-measurement; in no statistic:`);
  for (const r of ended) {
    const last = r.invalid_attempts.at(-1);
    notes.push(`  ${r.run_id} (${r.label}, cycle ${r.cycle}), ${r.invalid_attempts.length} invalid attempt(s); last: ${last ? reasons(last.reasons) : r.reason}`);
  }
  const remeasured = summary.invalid_attempts.filter((a) => a.run_status !== 'invalid');
  if (remeasured.length > 0) {
    notes.push(`${remeasured.length} invalid attempt(s) were measured again; their results are kept and not used:`);
    for (const a of remeasured) notes.push(`  ${a.run_id} attempt ${a.attempt} (${a.result}): ${reasons(a.reasons)}`);
  }
  return notes;
}

/** n_cycles: auto: how many configs stopped for each reason, and how many runs that took. */
export function stoppingNote(summary: StudySummary): string {
  const by = new Map<string, number>();
  for (const c of summary.configs) {
    const why = c.stopping?.reason ?? 'still measuring';
    by.set(why, (by.get(why) ?? 0) + 1);
  }
  const parts = [...by].map(([why, n]) => `${n} ${why}`);
  const t = summary.protocol.target!;
  return `n_cycles: auto: ${parts.join(', ')} (target ${t.ci_half_width} on ${t.metric}, ${t.min_cycles}–${t.max_cycles} cycles; ${summary.study.counts.planned} runs in all; --format json has each config's stop_detail)`;
}

function scalarText(v: Scalar): string {
  return v === null ? '–' : String(v);
}

/** One row per planned run, for pandas: identity, status, swept fields, flags, every metric. */
export function runTable(plan: PlanFile, snapshot: StudySnapshot | null, results: RunResult[], summary: StudySummary): TableData {
  const snap = snapshot ?? snapshotFromResults(plan, results);
  const byRun = resultsByRun(results);
  const configByHash = new Map(plan.configs.map((c) => [c.config_hash, c]));
  const sweptOf = new Map(summary.configs.map((c) => [c.config_hash, c.swept]));
  const excluded = new Map(summary.excluded_runs.map((e) => [e.run_id, e]));
  const rows: Row[] = [];
  const display: Array<Record<string, string>> = [];
  const configFields: Row[] = [];
  for (const run of [...snap.runs].sort((a, b) => a.index - b.index)) {
    const pc = configByHash.get(run.config_hash);
    if (!pc) continue;
    const flat = flattenConfig(pc.config);
    const result = usedResultOf(run, byRun.get(runKey(run.config_hash, run.cycle)) ?? []);
    const row: Row = {
      run_id: run.run_id,
      index: run.index,
      config_hash: run.config_hash,
      label: pc.label,
      cycle: run.cycle,
      attempt: result?.attempt ?? run.attempts.at(-1)?.attempt ?? null,
      status: run.status,
      error_type: run.error_type,
      reason: excluded.get(run.run_id)?.reason ?? null,
    };
    // the config's swept values as the summary has them (gpu.* left at default: the recorded value)
    for (const f of summary.swept_fields) row[f] = sweptOf.get(run.config_hash)?.[f] ?? null;
    row.flags = result ? [...new Set(result.flags.map((f) => f.code))].join(' ') : null;
    for (const def of SUMMARY_METRICS) row[def.key] = result ? METRIC_GETTERS[def.key](result.metrics) : null;
    row.window_s = result?.metrics.window_s ?? null;
    row.requests = result?.metrics.requests ?? null;
    row.output_tokens = result?.metrics.output_tokens ?? null;
    row.energy_method = result?.metrics.energy_method ?? null;
    row.started_at = result?.started_at ?? run.attempts.at(-1)?.started_at ?? null;
    rows.push(row);
    configFields.push(flat);
    const cell: Record<string, string> = {};
    for (const [k, v] of Object.entries(row)) cell[k] = typeof v === 'number' ? formatNumber(v) : scalarText(v);
    if (row.reason) cell.flags = `${run.status}: ${row.reason}`;
    else if (!row.flags) cell.flags = run.status === 'completed' ? '' : run.status;
    display.push(cell);
  }
  const sweptCols = summary.swept_fields.length ? summary.swept_fields.map((f) => ({ key: f, header: f })) : [{ key: 'label', header: 'config' }];
  return {
    rows,
    display,
    configFields,
    displayColumns: [
      { key: 'run_id', header: 'run' },
      ...sweptCols,
      { key: 'cycle', header: 'cycle' },
      { key: 'status', header: 'status' },
      { key: 'energy_per_output_token_j', header: 'J/token' },
      { key: 'output_tokens_per_s', header: 'tokens/s' },
      { key: 'ttft_p50_ms', header: 'TTFT p50 ms' },
      { key: 'power_mean_w', header: 'power W' },
      { key: 'flags', header: 'flags / reason' },
    ],
    notes: studyNotes(summary),
  };
}

// --- --where and --sort

export interface WhereClause {
  field: string;
  op: '=' | '!=' | '<' | '<=' | '>' | '>=';
  value: string;
}

function knownFields(data: TableData): Set<string> {
  return new Set([...data.rows.flatMap((r) => Object.keys(r)), ...(data.configFields ?? []).flatMap((r) => Object.keys(r))]);
}

function fieldOf(data: TableData, i: number, field: string): Scalar {
  const row = data.rows[i]!;
  if (field in row) return row[field] ?? null;
  return data.configFields?.[i]?.[field] ?? null;
}

export function parseWhere(expr: string): WhereClause {
  const m = /^\s*([^=!<>\s]+)\s*(!=|<=|>=|=|<|>)\s*(.*?)\s*$/.exec(expr);
  if (!m) throw new Error(`--where "${expr}": expected FIELD=VALUE (or !=, <, <=, >, >=)`);
  return { field: m[1]!, op: m[2] as WhereClause['op'], value: m[3]! };
}

function compare(a: Scalar, b: string): number | null {
  if (a === null) return null;
  const an = typeof a === 'number' ? a : Number(a);
  const bn = Number(b);
  if (b.trim() !== '' && Number.isFinite(an) && Number.isFinite(bn)) return an - bn;
  return String(a).localeCompare(b);
}

/** Keep rows matching every clause. Unknown fields are an error that lists the known ones. */
export function filterRows(data: TableData, clauses: WhereClause[]): TableData {
  if (clauses.length === 0) return data;
  const known = knownFields(data);
  for (const c of clauses) {
    if (data.rows.length > 0 && !known.has(c.field)) {
      throw new Error(`--where: unknown field "${c.field}"; fields: ${[...known].join(', ')}`);
    }
  }
  const keep = data.rows.map((row, i) =>
    clauses.every((c) => {
      const v = fieldOf(data, i, c.field);
      if (c.op === '=') return v === null ? c.value === '' || c.value === 'null' : compare(v, c.value) === 0;
      if (c.op === '!=') return v === null ? !(c.value === '' || c.value === 'null') : compare(v, c.value) !== 0;
      const d = compare(v, c.value);
      if (d === null) return false;
      return c.op === '<' ? d < 0 : c.op === '<=' ? d <= 0 : c.op === '>' ? d > 0 : d >= 0;
    }),
  );
  return {
    ...data,
    rows: data.rows.filter((_, i) => keep[i]),
    display: data.display.filter((_, i) => keep[i]),
    configFields: data.configFields?.filter((_, i) => keep[i]),
  };
}

/** Sort by a row field; a leading '-' means descending. Nulls last either way. Stable. */
export function sortRows(data: TableData, spec: string): TableData {
  const desc = spec.startsWith('-');
  const field = desc ? spec.slice(1) : spec;
  const known = knownFields(data);
  if (data.rows.length > 0 && !known.has(field)) {
    throw new Error(`--sort: unknown column "${field}"; columns: ${[...known].join(', ')}`);
  }
  const order = data.rows.map((_, i) => i);
  order.sort((i, j) => {
    const a = fieldOf(data, i, field);
    const b = fieldOf(data, j, field);
    if (a === null && b === null) return i - j;
    if (a === null) return 1;
    if (b === null) return -1;
    const d = typeof a === 'number' && typeof b === 'number' ? a - b : String(a).localeCompare(String(b), undefined, { numeric: true });
    return (desc ? -d : d) || i - j;
  });
  return {
    ...data,
    rows: order.map((i) => data.rows[i]!),
    display: order.map((i) => data.display[i]!),
    configFields: data.configFields ? order.map((i) => data.configFields![i]!) : undefined,
  };
}

// --- rendering

export function renderCsv(rows: Row[]): string {
  if (rows.length === 0) return '';
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return stringify(
    rows.map((r) => columns.map((c) => r[c] ?? '')),
    { header: true, columns, cast: { boolean: (v) => (v ? 'true' : 'false') } },
  );
}

export function renderJson(rows: Row[]): string {
  return JSON.stringify(rows, null, 2) + '\n';
}

function mdEscape(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>');
}

export function renderMarkdown(data: TableData): string {
  const cols = data.displayColumns;
  const lines = data.notes.map((n) => `> ${mdEscape(n)}`);
  if (lines.length) lines.push('');
  lines.push(`| ${cols.map((c) => mdEscape(c.header)).join(' | ')} |`);
  lines.push(`| ${cols.map(() => '---').join(' | ')} |`);
  data.display.forEach((cell, i) => {
    lines.push(`| ${cols.map((c) => mdEscape(cell[c.key] ?? scalarText(data.rows[i]![c.key] ?? null))).join(' | ')} |`);
  });
  if (data.legend?.length) lines.push('', ...data.legend.map((l) => `${mdEscape(l)}  `));
  return lines.join('\n') + '\n';
}

export function renderTerminalTable(data: TableData, columns = 120): string {
  const cols = data.displayColumns;
  const table = new Table({
    head: cols.map((c) => c.header),
    style: { head: [], border: [], compact: true },
    wordWrap: true,
    colWidths: fitWidths(data, columns),
  });
  data.display.forEach((cell, i) => table.push(cols.map((c) => cell[c.key] ?? scalarText(data.rows[i]![c.key] ?? null))));
  const out = [...data.notes, table.toString()];
  if (data.rows.length === 0) out.push('(no rows)');
  else if (data.legend?.length) out.push(...data.legend);
  return out.join('\n') + '\n';
}

/** Natural widths, shrinking the widest columns until the table fits the terminal. */
function fitWidths(data: TableData, termColumns: number): number[] {
  const cols = data.displayColumns;
  const widths = cols.map((c) => {
    let w = c.header.length;
    data.display.forEach((cell, i) => {
      w = Math.max(w, (cell[c.key] ?? scalarText(data.rows[i]![c.key] ?? null)).length);
    });
    return w + 2;
  });
  const budget = Math.max(termColumns - (cols.length + 1), cols.length * 6);
  let total = widths.reduce((a, b) => a + b, 0);
  while (total > budget) {
    const widest = widths.indexOf(Math.max(...widths));
    if (widths[widest]! <= 8) break;
    widths[widest]!--;
    total--;
  }
  return widths;
}

export function render(data: TableData, format: OutputFormat, termColumns = 120): string {
  switch (format) {
    case 'csv':
      return renderCsv(data.rows);
    case 'json':
      return renderJson(data.rows);
    case 'md':
      return renderMarkdown(data);
    case 'table':
      return renderTerminalTable(data, termColumns);
  }
}
