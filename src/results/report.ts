// The HTML report: one self-contained file (inline CSS, inline SVG charts, no script, no external
// reference) that a researcher can attach to a paper draft. Pure apart from chart rendering.
import type { PlanFile } from '../study/types.ts';
import { frontierChart, parameterCharts, parsePowerCsv, powerChart, renderSvg, type ChartSpec } from './charts.ts';
import { SUMMARY_METRICS, type StudySummary } from './summary-schema.ts';
import { configTable, flagsText, formatMeanCi, formatNumber, stoppingNote, studyNotes } from './table.ts';
import { computeFrontier, FRONTIER_X_AXES, FRONTIER_Y_AXES, frontierAxis, type Frontier } from './frontier.ts';
import { formatSlo, type SloAnswer } from './slo.ts';
import { sloView } from './answers.ts';

export interface PowerRunInput {
  run_id: string;
  label: string;
  /** power.csv contents; null when the run has none (energy unavailable, file missing). */
  csvText: string | null;
  flags: string[];
}

export interface ReportInput {
  summary: StudySummary;
  plan: PlanFile;
  powerRuns: PowerRunInput[];
  /** Runs not shown (cap on default timelines), mentioned in the report. */
  powerRunsOmitted?: number;
  /** The frozen study.yaml of the study dir, shown verbatim (the design as the researcher wrote it). */
  studyYaml?: string | null;
  /** Goodput under the study's `slo:` (plan.slo), computed from each run's requests.jsonl. */
  slo?: SloAnswer | null;
  /** Runs whose request records could not be read (their goodput is unknown). */
  sloWarnings?: string[];
}

export interface RenderedChart {
  kind: ChartSpec['kind'];
  id: string;
  title: string;
  caption: string;
  svg: string;
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;margin:0;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:20px 0 6px}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0 12px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.meta{color:#555}.banner{padding:10px 14px;border-radius:6px;margin:12px 0}
.partial{background:#fff4d6;border:1px solid #e7c35a}.ok{background:#e8f5e9;border:1px solid #9ccc9c}
.flags{background:#fdecea;border:1px solid #e6a5a0}
.flag{display:inline-block;background:#fbe3e1;border:1px solid #e6a5a0;border-radius:4px;padding:0 5px;margin:1px 2px;font-size:11.5px}
.hv{color:#b3261e;font-weight:600}
figure.chart{display:inline-block;margin:10px 14px 18px 0;vertical-align:top;max-width:100%}
figure.chart svg{max-width:100%;height:auto}
figcaption{font-size:12px;color:#555;max-width:520px}
.charts{display:flex;flex-wrap:wrap}
code{background:#f2f2f2;padding:0 3px;border-radius:3px}
tr.faded td{color:#9a9a9a}tr.recommended td{background:#e8f5e9;font-weight:600}
`;

function kv(rows: Array<[string, string]>): string {
  return `<table class="kv">${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>`;
}

function designSection(summary: StudySummary, plan: PlanFile, studyYaml: string | null): string {
  const p = summary.protocol;
  const sweptValues = summary.swept_fields.map((f) => {
    const values = [...new Set(summary.configs.map((c) => c.swept[f]).map((v) => (v === null || v === undefined ? '–' : String(v))))];
    return `<li><code>${escapeHtml(f)}</code>: ${escapeHtml(values.join(', '))}</li>`;
  });
  const skipped = summary.skipped_configs.length
    ? `<h3>Configs skipped before running (${summary.skipped_configs.length})</h3><table><tr><th>config</th><th>reasons</th></tr>${summary.skipped_configs
        .map((s) => `<tr><td>${escapeHtml(s.label)}</td><td>${escapeHtml(s.reasons.join('; '))}</td></tr>`)
        .join('')}</table>`
    : '';
  const warnings = plan.warnings?.length ? `<h3>Plan warnings</h3><ul>${plan.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul>` : '';
  return `<section id="design"><h2>Design and protocol</h2>
${kv([
  ['study', `${summary.study.name} (hash ${summary.study.hash})`],
  ['source', summary.study.source_path],
  ['created', summary.study.created_at],
  ['configs', `${summary.configs.length} planned, ${summary.skipped_configs.length} skipped as invalid`],
  [
    'cycles',
    p.target
      ? `n_cycles: auto — each config measured until the interval of ${p.target.metric} was within ${p.target.ci_half_width} (${p.target.min_cycles}–${p.target.max_cycles} cycles${p.target.decide ? `, or its rank decided` : ''}); up to ${p.n_cycles} cycles (${p.planned_runs} runs), order ${p.cycle_order}, cycle seed ${p.cycle_seed}${p.shuffle_seed === null ? ' (derived)' : ''}`
      : `${p.n_cycles} (${p.planned_runs} runs), order ${p.cycle_order}, cycle seed ${p.cycle_seed}${p.shuffle_seed === null ? ' (derived)' : ''}`,
  ],
  ...(p.target ? ([['stopping', stoppingNote(summary)]] as Array<[string, string]>) : []),
  ['gaps', `${p.config_gap_seconds} s between configs, ${p.cycle_gap_seconds} s between cycles`],
  ['cooldown', p.cooldown ? `to ${p.cooldown.target_temp_c} °C, at most ${p.cooldown.max_wait_seconds} s` : 'none'],
  ['timeouts', `${p.experiment_timeout_seconds === null ? 'model-size aware default' : `${p.experiment_timeout_seconds} s`} per run, stall after ${p.stall_timeout_seconds} s`],
  ['parallel', p.parallel],
])}
<h3>Swept fields</h3>${sweptValues.length ? `<ul>${sweptValues.join('')}</ul>` : '<p>None: a single configuration.</p>'}
${skipped}${warnings}${studyYaml ? `<details><summary>study.yaml as run</summary><pre>${escapeHtml(studyYaml)}</pre></details>` : ''}</section>`;
}

function environmentSection(summary: StudySummary): string {
  const e = summary.environment;
  if (!e) return `<section id="environment"><h2>Environment</h2><p>No completed run yet, so no environment was recorded.</p></section>`;
  const gpus = e.gpus.length
    ? e.gpus.map((g) => `${g.index}: ${g.name} (${g.uuid})${g.power_limit_w === null ? '' : `, power limit ${g.power_limit_w} W`}${g.persistence_mode === false ? ', persistence mode off' : ''}${g.mig_mode ? ', MIG' : ''}`).join('; ')
    : 'none';
  const diffs = e.differences.length
    ? `<div class="banner flags"><strong>Runs on a different environment (${e.differences.length}):</strong><ul>${e.differences.map((d) => `<li>${escapeHtml(d)}</li>`).join('')}</ul></div>`
    : '';
  return `<section id="environment"><h2>Environment</h2>${kv([
    ['GPUs', gpus],
    ['driver', `${e.driver_version ?? 'unknown'} (CUDA driver ${e.cuda_driver_version ?? 'unknown'})`],
    ['NVML', e.nvml_available ? 'available' : `unavailable: ${e.nvml_reason ?? 'unknown reason'}`],
    ['host', `${e.hostname}, ${e.platform}, ${e.cpu_model ?? 'unknown CPU'}`],
    ['CUDA_VISIBLE_DEVICES', e.cuda_visible_devices ?? '(unset)'],
    ['software', `llem ${e.llem_version}, Node ${e.node_version}${Object.entries(e.extra).map(([k, v]) => `, ${k} ${v ?? '?'}`).join('')}`],
  ])}${diffs}</section>`;
}

function flagsSection(summary: StudySummary): string {
  const flagged = summary.configs.filter((c) => Object.keys(c.flags).length > 0 || c.high_variance_metrics.length > 0);
  const excluded = summary.excluded_runs;
  if (flagged.length === 0 && excluded.length === 0) {
    return `<section id="flags"><h2>Validity flags</h2><div class="banner ok">No validity flag was raised, no metric has a CV above ${formatNumber(summary.statistics.high_variance_cv * 100)} %, and no run failed.</div></section>`;
  }
  const flagRows = flagged
    .map(
      (c) =>
        `<tr><td>${escapeHtml(c.label)}</td><td>${Object.entries(c.flags)
          .map(([code, n]) => `<span class="flag">${escapeHtml(code)} in ${n} of ${c.counts.completed} runs</span>`)
          .join(' ')}</td><td class="hv">${escapeHtml(c.high_variance_metrics.join(', '))}</td></tr>`,
    )
    .join('');
  const excludedRows = excluded
    .map(
      (r) =>
        `<tr><td>${escapeHtml(r.run_id)}</td><td>${escapeHtml(r.label)}</td><td class="num">${r.cycle}</td><td>${escapeHtml(r.status)}</td><td>${escapeHtml(r.error_type ?? '')}</td><td>${escapeHtml(r.reason)}</td></tr>`,
    )
    .join('');
  return `<section id="flags"><h2>Validity flags</h2>
<div class="banner flags">${flagged.length} config${flagged.length === 1 ? '' : 's'} with validity flags or high variance; ${excluded.length} run${excluded.length === 1 ? '' : 's'} excluded from the statistics.</div>
${flagged.length ? `<table><tr><th>config</th><th>flags (runs carrying each)</th><th>metrics with CV &gt; ${formatNumber(summary.statistics.high_variance_cv * 100)} %</th></tr>${flagRows}</table>` : ''}
${excluded.length ? `<h3>Runs excluded from the statistics</h3><table><tr><th>run</th><th>config</th><th>cycle</th><th>status</th><th>error</th><th>reason</th></tr>${excludedRows}</table>` : ''}
</section>`;
}

/**
 * What the validity gate kept out of every statistic, with its reasons: runs that ended invalid
 * after their re-measurements, and invalid attempts whose runs were measured again validly.
 */
function invalidSection(summary: StudySummary): string {
  const attempts = summary.invalid_attempts;
  if (attempts.length === 0) return '';
  const ended = new Set(summary.excluded_runs.filter((r) => r.status === 'invalid').map((r) => r.run_id));
  const rows = attempts
    .map(
      (a) =>
        `<tr class="${ended.has(a.run_id) ? 'invalid-run' : 'remeasured'}"><td>${escapeHtml(a.run_id)}</td><td>${escapeHtml(a.label)}</td><td class="num">${a.cycle}</td><td class="num">${a.attempt}</td><td>${ended.has(a.run_id) ? 'run ended invalid' : `measured again: run ${escapeHtml(a.run_status)}`}</td><td><ul>${a.reasons
          .map((r) => `<li><code>${escapeHtml(r.code)}</code>: ${escapeHtml(r.detail)}</li>`)
          .join('')}</ul></td><td><code>${escapeHtml(a.result)}</code></td></tr>`,
    )
    .join('\n');
  return `<section id="invalid"><h2>Excluded as invalid</h2>
<div class="banner flags">${ended.size} run${ended.size === 1 ? '' : 's'} ended invalid after every re-measurement and ${attempts.length} attempt${attempts.length === 1 ? ' was' : 's were'} judged invalid by the study's validity policy (<code>execution.validity</code> in plan.json): none of them is in any statistic, chart or export row's metrics. Their results stay in their run directories.</div>
<table><tr><th>run</th><th>config</th><th>cycle</th><th>attempt</th><th>outcome</th><th>reasons</th><th>result</th></tr>
${rows}</table></section>`;
}

function resultsSection(summary: StudySummary): string {
  const data = configTable(summary);
  const head = data.displayColumns.map((c) => `<th>${escapeHtml(c.header)}</th>`).join('');
  const body = data.display
    .map((cell, i) => {
      const row = data.rows[i]!;
      return `<tr>${data.displayColumns
        .map((c) => {
          const text = cell[c.key] ?? (row[c.key] === null || row[c.key] === undefined ? '–' : String(row[c.key]));
          const numeric = /±|^[\d.–-]/.test(text) && c.key !== 'flags';
          return `<td${numeric ? ' class="num"' : ''}>${escapeHtml(text)}</td>`;
        })
        .join('')}</tr>`;
    })
    .join('\n');
  const detail = summary.configs
    .map(
      (c) =>
        `<tr><td>${escapeHtml(c.label)}</td>${SUMMARY_METRICS.slice(0, 8)
          .map((m) => `<td class="num${c.metrics[m.key]?.high_variance ? ' hv' : ''}">${escapeHtml(formatMeanCi(c.metrics[m.key]))}</td>`)
          .join('')}</tr>`,
    )
    .join('\n');
  return `<section id="results"><h2>Results</h2>
<p class="meta">Mean ± half-width of the wider of the two 95 % intervals of the mean (Student t and percentile bootstrap) over completed cycles; no ± below 2 cycles. "runs" is completed/planned; * marks configs with fewer runs than planned.${summary.protocol.target ? ` "stopped" is why n_cycles: auto stopped measuring the config.` : ''}</p>
<table class="results"><tr>${head}</tr>
${body}</table>
<details><summary>More metrics</summary><table><tr><th>config</th>${SUMMARY_METRICS.slice(0, 8)
    .map((m) => `<th>${escapeHtml(m.label)}${m.unit ? ` (${escapeHtml(m.unit)})` : ''}</th>`)
    .join('')}</tr>${detail}</table></details></section>`;
}

function methodSection(summary: StudySummary): string {
  const s = summary.statistics;
  return `<section id="method"><h2>Statistics</h2><p>Per config and metric over completed runs only, each by its valid attempt (failed, skipped, interrupted and invalid runs, and invalid attempts, are listed above and never averaged in; a metric that could not be measured in a run is missing, not zero):
mean, sample standard deviation (n − 1), coefficient of variation, median and quantiles by linear interpolation, and two ${formatNumber(s.confidence * 100)} % intervals of the mean:
a percentile bootstrap (${s.bootstrap_resamples} resamples, seed ${s.bootstrap_seed}; ${escapeHtml(s.seed_derivation)}) and the Student-t interval beside it (both in summary.json).
The ± shown is the wider of the two: at the cycle counts of a study the percentile bootstrap is the narrower and covers the true mean less often than it claims (about 74 % at 3 cycles, 90 % at 10, for a nominal 95 %).
Metrics with CV above ${formatNumber(s.high_variance_cv * 100)} % are flagged high-variance.</p></section>`;
}

/** Energy charts need energy: say why they are missing instead of leaving a silent gap. */
function energyMissingNote(summary: StudySummary): string {
  const anyCompleted = summary.configs.some((c) => c.counts.completed > 0);
  const anyEnergy = summary.configs.some((c) => c.metrics.energy_per_output_token_j?.mean !== null && c.metrics.energy_per_output_token_j?.mean !== undefined);
  if (!anyCompleted || anyEnergy) return '';
  return `<div class="banner flags">Energy was not measured in any completed run (flag <code>energy_unavailable</code>; see each result's <code>energy_unavailable_reason</code>), so the energy charts and the energy-vs-throughput scatter are omitted.</div>`;
}

function figure(c: RenderedChart): string {
  return `<figure class="chart" data-chart="${escapeHtml(c.kind)}" id="${escapeHtml(c.id)}">${c.svg}<figcaption>${escapeHtml(c.caption)}</figcaption></figure>`;
}

/** Every chart of the report, rendered to SVG. */
export async function reportCharts(input: ReportInput): Promise<{ charts: RenderedChart[]; notes: string[] }> {
  const specs: ChartSpec[] = [...parameterCharts(input.summary)];
  for (const f of reportFrontiers(input.summary)) {
    const chart = frontierChart(input.summary, f, f.x.name === 'tokens_per_s' ? 'pareto' : 'frontier', f.x.name === 'tokens_per_s' ? 'pareto' : `frontier-${f.x.name}`);
    if (chart) specs.push(chart);
  }
  const notes: string[] = [];
  for (const r of input.powerRuns) {
    if (r.csvText === null) {
      notes.push(`${r.run_id}: no power.csv`);
      continue;
    }
    let samples;
    try {
      samples = parsePowerCsv(r.csvText);
    } catch (err) {
      notes.push(`${r.run_id}: ${(err as Error).message}`);
      continue;
    }
    if (samples.length === 0) {
      notes.push(`${r.run_id}: power.csv has no power samples`);
      continue;
    }
    specs.push(powerChart(r.run_id, r.label, samples, r.flags));
  }
  const charts: RenderedChart[] = [];
  for (const s of specs) charts.push({ kind: s.kind, id: s.id, title: s.title, caption: s.caption, svg: await renderSvg(s.spec) });
  return { charts, notes };
}

const ENERGY_Y = frontierAxis(FRONTIER_Y_AXES, 'energy_per_output_token_j', 'y');

/** The frontiers the report draws: energy per token against TTFT p95 and against throughput. */
export function reportFrontiers(summary: StudySummary): Frontier[] {
  return ['ttft_p95_ms', 'tokens_per_s'].map((x) => computeFrontier(summary, frontierAxis(FRONTIER_X_AXES, x, 'x'), ENERGY_Y));
}

function frontierSection(summary: StudySummary, charts: RenderedChart[]): string {
  const frontierCharts = charts.filter((c) => c.kind === 'frontier' || c.kind === 'pareto');
  const [latency] = reportFrontiers(summary);
  const rows = latency!.entries
    .filter((e) => e.x && e.y)
    .sort((a, b) => a.x!.mean - b.x!.mean)
    .map((e) => {
      const names = (hs: string[]) => hs.map((h) => summary.configs.find((c) => c.config_hash === h)?.label ?? h).join(', ');
      const status =
        e.status === 'dominated' ? `dominated by ${names(e.dominated_by)}` : e.status === 'not_separable' ? `on the frontier, not separable from ${names(e.not_separable_from)}` : 'on the frontier';
      return `<tr class="${e.on_frontier ? '' : 'faded'}"><td>${escapeHtml(e.label)}</td><td class="num">${escapeHtml(formatNumber(e.x!.mean))}${e.x!.ci ? ` ± ${escapeHtml(formatNumber((e.x!.ci[1] - e.x!.ci[0]) / 2, 2))}` : ''}</td><td class="num">${escapeHtml(formatNumber(e.y!.mean))}${e.y!.ci ? ` ± ${escapeHtml(formatNumber((e.y!.ci[1] - e.y!.ci[0]) / 2, 2))}` : ''}</td><td>${escapeHtml(status)}</td></tr>`;
    })
    .join('');
  if (!frontierCharts.length && !rows) return '';
  return `<section id="frontier"><h2>Energy–latency frontier</h2>
<p class="meta">A config is dominated only when another is better on both axes beyond the overlap of their 95 % intervals; when the intervals overlap, both stay on the frontier (marked not separable). Also as <code>llem results --frontier</code>.</p>
${frontierCharts.length ? `<div class="charts">${frontierCharts.map(figure).join('\n')}</div>` : ''}
${rows ? `<table class="frontier"><tr><th>config</th><th>${escapeHtml(latency!.x.title)}</th><th>${escapeHtml(latency!.y.title)}</th><th>frontier</th></tr>${rows}</table>` : ''}
</section>`;
}

function sloSection(summary: StudySummary, slo: SloAnswer | null | undefined, warnings: string[]): string {
  if (!slo) return '';
  const view = sloView(summary, slo);
  const head = view.data.displayColumns.map((c) => `<th>${escapeHtml(c.header)}</th>`).join('');
  const recHash = slo.recommendation?.config_hash;
  const body = view.data.display
    .map((cell, i) => {
      const hash = String(view.data.rows[i]!.config_hash);
      return `<tr${hash === recHash ? ' class="recommended"' : ''}>${view.data.displayColumns.map((c) => `<td>${escapeHtml(cell[c.key] ?? '–')}</td>`).join('')}</tr>`;
    })
    .join('\n');
  const [recommendation, ...rest] = view.data.legend ?? [];
  return `<section id="slo"><h2>Service-level objective: ${escapeHtml(formatSlo(slo.conditions))}</h2>
<div class="banner ${slo.recommendation ? 'ok' : 'flags'}"><strong>${escapeHtml(recommendation ?? '')}</strong></div>
<table class="slo"><tr>${head}</tr>
${body}</table>
<p class="meta">${rest.map(escapeHtml).join('<br>')}${warnings.length ? `<br>${warnings.map(escapeHtml).join('<br>')}` : ''}</p></section>`;
}

export async function buildReportHtml(input: ReportInput, generatedAt = new Date().toISOString()): Promise<string> {
  const { summary, plan } = input;
  const { charts, notes } = await reportCharts(input);
  const partial = summary.study.partial;
  const banner = studyNotes(summary)
    .map((n) => `<div class="banner ${partial ? 'partial' : 'flags'}">${escapeHtml(n)}</div>`)
    .join('');
  const param = charts.filter((c) => c.kind === 'parameter');
  const power = charts.filter((c) => c.kind === 'power');
  const flagsTotals: Record<string, number> = {};
  for (const c of summary.configs) for (const [k, v] of Object.entries(c.flags)) flagsTotals[k] = (flagsTotals[k] ?? 0) + v;
  const c = summary.study.counts;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(summary.study.name)} — llem report</title>
<style>${CSS}</style></head>
<body><main>
<h1>${escapeHtml(summary.study.name)}</h1>
<p class="meta">llem study report · ${summary.study.status === 'unknown' ? 'no manifest (statuses from result files)' : `study ${escapeHtml(summary.study.status)}`} · ${c.completed} of ${c.planned} runs completed${c.failed ? `, ${c.failed} failed` : ''}${c.skipped ? `, ${c.skipped} skipped` : ''}${c.interrupted ? `, ${c.interrupted} interrupted` : ''}${c.invalid ? `, ${c.invalid} invalid` : ''} · summary generated ${escapeHtml(summary.generated_at)} · report generated ${escapeHtml(generatedAt)}${Object.keys(flagsTotals).length ? ` · flags: ${escapeHtml(flagsText(flagsTotals))}` : ''}</p>
${partial ? `<div class="banner partial"><strong>Partial results.</strong> This study has not finished every planned run; statistics cover only completed runs.</div>` : ''}
${banner}
${designSection(summary, plan, input.studyYaml ?? null)}
${environmentSection(summary)}
${flagsSection(summary)}
${invalidSection(summary)}
${resultsSection(summary)}
${sloSection(summary, input.slo, input.sloWarnings ?? [])}
${frontierSection(summary, charts)}
<section id="charts"><h2>Charts</h2>
${energyMissingNote(summary)}
${param.length ? `<h3>Against each swept parameter</h3><div class="charts">${param.map(figure).join('\n')}</div>` : '<p>No swept parameter: nothing to plot against.</p>'}
<h3>Power timelines</h3>
${power.length ? `<div class="charts">${power.map(figure).join('\n')}</div>` : '<p>No power timeline available.</p>'}
${input.powerRunsOmitted ? `<p class="meta">${input.powerRunsOmitted} other runs have timelines not included here; choose them with <code>llem report --power-runs RUN_ID,…</code> or <code>--power-runs all</code>.</p>` : ''}
${notes.length ? `<p class="meta">${notes.map(escapeHtml).join('<br>')}</p>` : ''}
</section>
${methodSection(summary)}
<footer class="meta"><p>Generated by llem. Data: summary.json (schema v${summary.schema_version}) and each run's result.json and power.csv in the study directory.</p></footer>
</main></body></html>
`;
}
