// Charts of the HTML report: Vega-Lite specs built from the summary (pure), compiled to Vega and
// rendered to SVG in Node with the headless renderer, so the report needs no script at view time.
import { parse as parseCsv } from 'csv-parse/sync';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import type { Scalar } from './summarize.ts';
import { ciOf } from './table.ts';
import type { ConfigSummary, StudySummary, SummaryMetricKey } from './summary-schema.ts';
import type { Frontier } from './frontier.ts';

export type ChartKind = 'parameter' | 'pareto' | 'frontier' | 'power';

export interface ChartSpec {
  kind: ChartKind;
  id: string;
  title: string;
  caption: string;
  spec: TopLevelSpec;
}

/** Legends with more entries than this are dropped (a 100-entry legend is unreadable). */
const MAX_LEGEND_ENTRIES = 20;
/** Lines per parameter chart; a 500-config grid has 100+ combinations of the other fields, and
 * drawing them all makes an unreadable (and multi-megabyte) chart. The best ones are kept. */
export const MAX_SERIES_PER_CHART = 12;
/** No ARIA labels per mark: they repeat every datum as text and triple the SVG size. */
const CHART_CONFIG = { aria: false, font: 'sans-serif' };
const WIDTH = 420;
const HEIGHT = 260;

function scalarKey(v: Scalar): string {
  return v === null ? '–' : String(v);
}

/** "backend=vllm, precision=fp16": the other swept dimensions, naming one line. */
function seriesName(c: ConfigSummary, others: string[]): string {
  if (others.length === 0) return 'all configs';
  return others.map((f) => `${f}=${scalarKey(c.swept[f] ?? null)}`).join(', ');
}

interface PointDatum {
  x: string | number;
  series: string;
  mean: number;
  lo: number;
  hi: number;
  n: number;
  label: string;
}

function metricPoints(summary: StudySummary, field: string, metric: SummaryMetricKey, numericX: boolean): PointDatum[] {
  const others = summary.swept_fields.filter((f) => f !== field);
  const out: PointDatum[] = [];
  for (const c of summary.configs) {
    const m = c.metrics[metric];
    const x = c.swept[field];
    if (!m || m.mean === null || x === null || x === undefined) continue;
    const ci = ciOf(m) ?? [m.mean, m.mean];
    out.push({ x: numericX ? Number(x) : String(x), series: seriesName(c, others), mean: m.mean, lo: ci[0], hi: ci[1], n: m.n, label: c.label });
  }
  return out;
}

/** The `max` series whose best point is best (lowest, or highest when higherIsBetter). */
function bestSeries(points: PointDatum[], max: number, higherIsBetter: boolean): Set<string> {
  const best = new Map<string, number>();
  for (const p of points) {
    const v = higherIsBetter ? -p.mean : p.mean;
    const prev = best.get(p.series);
    if (prev === undefined || v < prev) best.set(p.series, v);
  }
  return new Set([...best.entries()].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0])).slice(0, max).map(([k]) => k));
}

const METRIC_TITLES: Partial<Record<SummaryMetricKey, string>> = {
  energy_per_output_token_j: 'energy per output token (J)',
  output_tokens_per_s: 'output tokens per second',
};

/** Axis titles and caption notes of swept fields that need more than their name. */
const FIELD_AXES: Record<string, { title: string; note: string }> = {
  'gpu.power_limit_w': {
    title: 'GPU power cap, gpu.power_limit_w (W)',
    note: ' A config at default is drawn at the power limit its GPU had before the study (environment.gpu_settings in each result).',
  },
};

/** Energy/token and tokens/s against each swept field, mean with CI error bars, one line per
 * combination of the other swept fields. */
export function parameterCharts(summary: StudySummary): ChartSpec[] {
  const charts: ChartSpec[] = [];
  for (const field of summary.swept_fields) {
    const values = summary.configs.map((c) => c.swept[field]).filter((v) => v !== null && v !== undefined);
    const numericX = values.length > 0 && values.every((v) => typeof v === 'number');
    const positive = numericX && values.every((v) => (v as number) > 0);
    const nums = values.map(Number);
    const logX = positive && Math.max(...nums) / Math.min(...nums) >= 16;
    for (const metric of ['energy_per_output_token_j', 'output_tokens_per_s'] as const) {
      const all = metricPoints(summary, field, metric, numericX);
      if (all.length === 0) continue;
      const totalSeries = new Set(all.map((d) => d.series)).size;
      const higherIsBetter = metric === 'output_tokens_per_s';
      const kept = bestSeries(all, MAX_SERIES_PER_CHART, higherIsBetter);
      const data = all.filter((d) => kept.has(d.series));
      const nSeries = kept.size;
      const integers = numericX && nums.every((v) => Number.isInteger(v));
      // Point (not band) scale for categories: error-bar ticks keep their size instead of spanning the band.
      const xEnc = numericX
        ? {
            field: 'x',
            type: 'quantitative' as const,
            title: FIELD_AXES[field]?.title ?? field,
            scale: logX ? { type: 'log' as const, base: 2 } : { zero: false },
            axis: integers ? { format: '~d', tickMinStep: 1 } : { format: '~g' },
          }
        : { field: 'x', type: 'ordinal' as const, title: field, sort: [...new Set(data.map((d) => String(d.x)))], scale: { type: 'point' as const, padding: 0.5 }, axis: { labelAngle: 0, labelLimit: 160 } };
      const color = {
        field: 'series',
        type: 'nominal' as const,
        title: summary.swept_fields.filter((f) => f !== field).join(', ') || 'series',
        legend: nSeries > MAX_LEGEND_ENTRIES ? null : { orient: 'bottom' as const, columns: 2, labelLimit: 360 },
        scale: { scheme: nSeries > 10 ? 'category20' : 'category10' },
      };
      const yTitle = METRIC_TITLES[metric] ?? metric;
      charts.push({
        kind: 'parameter',
        id: `param-${field}-${metric}`,
        title: `${yTitle} vs ${field}`,
        caption: `Mean over completed cycles with its 95 % interval (the wider of t and bootstrap); ${nSeries} line${nSeries === 1 ? '' : 's'}${
          totalSeries > nSeries ? ` of ${totalSeries}: those with the ${higherIsBetter ? 'highest' : 'lowest'} best value (every config is in the table and summary.json)` : ''
        }${nSeries > MAX_LEGEND_ENTRIES ? ' (legend omitted: too many lines)' : ''}.${FIELD_AXES[field]?.note ?? ''}`,
        spec: {
          $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      config: CHART_CONFIG,
          width: WIDTH,
          height: HEIGHT,
          title: `${yTitle} vs ${field}`,
          data: { values: data },
          encoding: { x: xEnc, color },
          layer: [
            { mark: { type: 'line', point: true }, encoding: { y: { field: 'mean', type: 'quantitative', title: yTitle, scale: { zero: false } } } },
            { mark: { type: 'errorbar', ticks: true }, encoding: { y: { field: 'lo', type: 'quantitative', title: yTitle }, y2: { field: 'hi' } } },
          ],
        } as TopLevelSpec,
      });
    }
  }
  return charts;
}

/**
 * The CI-aware frontier (src/results/frontier.ts) as a chart: 95 % error bars on both axes, the
 * frontier (configs not dominated beyond their intervals) joined by a dashed line and labelled,
 * dominated configs faded. `kind` 'pareto' is energy vs throughput, 'frontier' energy vs latency.
 */
export function frontierChart(summary: StudySummary, frontier: Frontier, kind: 'pareto' | 'frontier', id: string): ChartSpec | null {
  const colorField = summary.swept_fields.includes('backend') ? 'backend' : (summary.swept_fields[0] ?? null);
  const swept = new Map(summary.configs.map((c) => [c.config_hash, c.swept]));
  const data = frontier.entries.flatMap((e) => {
    if (!e.x || !e.y) return [];
    const xci = e.x.ci ?? [e.x.mean, e.x.mean];
    const yci = e.y.ci ?? [e.y.mean, e.y.mean];
    return [
      {
        config_hash: e.config_hash,
        label: e.label,
        group: colorField ? scalarKey(swept.get(e.config_hash)?.[colorField] ?? null) : 'config',
        x: e.x.mean,
        x_lo: xci[0],
        x_hi: xci[1],
        y: e.y.mean,
        y_lo: yci[0],
        y_hi: yci[1],
        status: e.status === 'dominated' ? 'dominated' : e.status === 'not_separable' ? 'frontier (not separable)' : 'frontier',
        opacity: e.status === 'dominated' ? 0.22 : 1,
      },
    ];
  });
  if (data.length === 0) return null;
  const frontData = data.filter((d) => d.status !== 'dominated').sort((a, b) => a.x - b.x);
  const nGroups = new Set(data.map((d) => d.group)).size;
  const xTitle = frontier.x.title;
  // Throughput across batch sizes spans orders of magnitude: log axis then, else the slow configs pile up at 0.
  const positive = data.map((d) => d.x_lo).filter((v) => v > 0);
  const logX = positive.length === data.length && Math.max(...data.map((d) => d.x_hi)) / Math.min(...positive) >= 16;
  const x = { field: 'x', type: 'quantitative' as const, title: `${xTitle}${logX ? ' (log scale)' : ''}`, scale: logX ? { type: 'log' as const } : { zero: false } };
  const y = { field: 'y', type: 'quantitative' as const, title: frontier.y.title, scale: { zero: false } };
  const color = { field: 'group', type: 'nominal' as const, title: colorField ?? 'config', legend: nGroups > MAX_LEGEND_ENTRIES ? null : { orient: 'right' as const, labelLimit: 220 } };
  const opacity = { field: 'opacity', type: 'quantitative' as const, scale: null, legend: null };
  const dominated = data.length - frontData.length;
  const notSeparable = data.filter((d) => d.status === 'frontier (not separable)').length;
  const title = `${frontier.y.title.replace(/ \(J\)$/, '')} vs ${xTitle.replace(/ \(.*\)$/, '')}`;
  return {
    kind,
    id,
    title,
    caption: `${data.length} configs; ${frontData.length} on the frontier${notSeparable ? ` (${notSeparable} of them only because their intervals overlap a config that looks better)` : ''}, joined by the dashed line and labelled; ${dominated} dominated (faded): another config is better on both axes beyond the overlap of the 95 % intervals. Bars: 95 % CI on both axes.`,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      config: CHART_CONFIG,
      width: WIDTH + 80,
      height: HEIGHT + 60,
      title,
      layer: [
        { data: { values: data }, mark: { type: 'errorbar' }, encoding: { x: { ...x, field: 'x_lo' }, x2: { field: 'x_hi' }, y, color, opacity } },
        { data: { values: data }, mark: { type: 'errorbar' }, encoding: { y: { ...y, field: 'y_lo' }, y2: { field: 'y_hi' }, x, color, opacity } },
        { data: { values: frontData }, mark: { type: 'line', strokeDash: [6, 4], color: '#333' }, encoding: { x, y } },
        {
          data: { values: data },
          mark: { type: 'point', filled: true, size: 70 },
          encoding: {
            x,
            y,
            color,
            opacity,
            shape: { field: 'status', type: 'nominal', title: null, legend: { labelLimit: 220 }, scale: { domain: ['frontier', 'frontier (not separable)', 'dominated'], range: ['diamond', 'square', 'circle'] } },
          },
        },
        { data: { values: frontData.slice(0, 30) }, mark: { type: 'text', align: 'left', dx: 7, dy: -7, fontSize: 10 }, encoding: { x, y, text: { field: 'label' } } },
      ],
    } as TopLevelSpec,
  };
}

// --- power.csv

export interface PowerSample {
  t_s: number;
  device: string;
  power_w: number;
}

/**
 * Power samples from a run's power.csv. The meter writes one row per (sample, device) with
 * `t_s,device_index,…,power_w,…`; a wide file (`t_ms` or `t_s`, and one `*power_w` column per
 * device) is read as well. Empty cells (power unsupported) are skipped, never read as 0 W.
 */
export function parsePowerCsv(text: string): PowerSample[] {
  const records = parseCsv(text, { columns: true, skip_empty_lines: true, relax_column_count: true }) as Array<Record<string, string>>;
  if (records.length === 0) return [];
  const cols = Object.keys(records[0]!);
  const tCol = cols.find((c) => c === 't_s') ?? cols.find((c) => c === 't_ms') ?? cols.find((c) => /^t(ime)?(_|$)/.test(c));
  if (!tCol) throw new Error(`power.csv: no time column (t_s or t_ms) among ${cols.join(', ')}`);
  const tScale = tCol.endsWith('_ms') ? 1 / 1000 : 1;
  const out: PowerSample[] = [];
  const num = (s: string | undefined): number | null => {
    if (s === undefined || s.trim() === '') return null;
    const v = Number(s);
    return Number.isFinite(v) ? v : null;
  };
  if (cols.includes('power_w')) {
    const devCol = cols.includes('device_index') ? 'device_index' : cols.includes('device_uuid') ? 'device_uuid' : null;
    for (const r of records) {
      const t = num(r[tCol]);
      const p = num(r.power_w);
      if (t === null || p === null) continue;
      out.push({ t_s: t * tScale, device: devCol ? `GPU ${r[devCol]}` : 'GPU', power_w: p });
    }
  } else {
    const powerCols = cols.filter((c) => /power.*_w$/.test(c));
    for (const r of records) {
      const t = num(r[tCol]);
      if (t === null) continue;
      for (const c of powerCols) {
        const p = num(r[c]);
        if (p !== null) out.push({ t_s: t * tScale, device: c.replace(/_?power_w$/, '') || 'GPU', power_w: p });
      }
    }
  }
  return out;
}

/** At most `maxPoints` per device: bucket means, so a 10 Hz hour does not bloat the report. */
export function downsamplePower(samples: PowerSample[], maxPoints: number): PowerSample[] {
  const byDevice = new Map<string, PowerSample[]>();
  for (const s of samples) {
    const list = byDevice.get(s.device) ?? [];
    list.push(s);
    byDevice.set(s.device, list);
  }
  const out: PowerSample[] = [];
  for (const [device, list] of byDevice) {
    list.sort((a, b) => a.t_s - b.t_s);
    if (list.length <= maxPoints) {
      out.push(...list);
      continue;
    }
    const bucket = Math.ceil(list.length / maxPoints);
    for (let i = 0; i < list.length; i += bucket) {
      const chunk = list.slice(i, i + bucket);
      out.push({
        device,
        t_s: chunk.reduce((a, s) => a + s.t_s, 0) / chunk.length,
        power_w: chunk.reduce((a, s) => a + s.power_w, 0) / chunk.length,
      });
    }
  }
  return out;
}

export function powerChart(runId: string, label: string, samples: PowerSample[], flags: string[]): ChartSpec {
  const data = downsamplePower(samples, 600).map((s) => ({ t: Number(s.t_s.toFixed(3)), power_w: Number(s.power_w.toFixed(2)), device: s.device }));
  const devices = new Set(data.map((d) => d.device)).size;
  return {
    kind: 'power',
    id: `power-${runId}`,
    title: `Power: ${label} (${runId})`,
    caption: `GPU power over the measurement window from power.csv${devices > 1 ? `, ${devices} devices` : ''}${flags.length ? `; flags: ${flags.join(', ')}` : ''}.`,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      config: CHART_CONFIG,
      width: WIDTH + 80,
      height: 180,
      title: `${label} — ${runId}`,
      data: { values: data },
      mark: { type: 'line', strokeWidth: 1.2 },
      encoding: {
        x: { field: 't', type: 'quantitative', title: 'time in window (s)' },
        y: { field: 'power_w', type: 'quantitative', title: 'power (W)', scale: { zero: false } },
        color: { field: 'device', type: 'nominal', title: 'device', legend: devices > 1 ? { orient: 'right' } : null },
      },
    } as TopLevelSpec,
  };
}

/** Vega-Lite → Vega → SVG string, with no renderer, no loader, no network. */
export async function renderSvg(spec: TopLevelSpec, warnings: string[] = []): Promise<string> {
  // Compiler warnings are collected, not printed over the command's output.
  const collect = (...args: unknown[]) => {
    warnings.push(args.map(String).join(' '));
  };
  const logger = { level: () => logger, error: collect, warn: collect, info: () => logger, debug: () => logger } as unknown as vega.LoggerInterface;
  const compiled = vl.compile(spec, { logger }).spec;
  // A loader that refuses everything: the report must never fetch (data is inline).
  const loader = vega.loader();
  loader.load = async (uri: string) => {
    throw new Error(`chart tried to load ${uri}; report data must be inline`);
  };
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', loader, logLevel: vega.Warn, logger });
  try {
    return compactSvg(await view.toSVG());
  } finally {
    view.finalize();
  }
}

const GEOMETRY_ATTR = /\b(d|transform|x|y|x1|x2|y1|y2|width|height|points)="([^"]*)"/g;

/** Geometry to 2 decimals (a hundredth of a pixel): vega writes 15 digits per coordinate. */
export function compactSvg(svg: string): string {
  return svg.replace(GEOMETRY_ATTR, (_m, name: string, value: string) => `${name}="${value.replace(/(\d+\.\d{2})\d+/g, '$1')}"`);
}
