// The energy–latency frontier, aware of uncertainty. A config is *dominated* only when another is
// better on both axes beyond the overlap of their 95 % intervals (the other's whole interval is
// better than this one's whole interval, on each axis; an exact tie — both intervals the same
// single point, no uncertainty — counts as not worse on that axis). When another config is better on both
// means but an interval overlaps, neither claim can be made: the config stays on the frontier,
// marked "not separable" from the one that looks better. Pure.
import type { ConfigSummary, StudySummary, SummaryMetricKey } from './summary-schema.ts';
import { ciOf } from './table.ts';

export type Direction = 'lower' | 'higher';

export interface FrontierAxis {
  /** The name used on the command line (--x tokens_per_s). */
  name: string;
  metric: SummaryMetricKey;
  better: Direction;
  title: string;
}

export const FRONTIER_X_AXES: readonly FrontierAxis[] = [
  { name: 'ttft_p95_ms', metric: 'ttft_p95_ms', better: 'lower', title: 'TTFT p95 (ms)' },
  { name: 'itl_p95_ms', metric: 'itl_p95_ms', better: 'lower', title: 'ITL p95 (ms)' },
  { name: 'e2e_p95_ms', metric: 'e2e_p95_ms', better: 'lower', title: 'E2E latency p95 (ms)' },
  { name: 'tokens_per_s', metric: 'output_tokens_per_s', better: 'higher', title: 'output tokens per second' },
];

export const FRONTIER_Y_AXES: readonly FrontierAxis[] = [
  { name: 'energy_per_output_token_j', metric: 'energy_per_output_token_j', better: 'lower', title: 'energy per output token (J)' },
  { name: 'energy_per_output_token_adjusted_j', metric: 'energy_per_output_token_adjusted_j', better: 'lower', title: 'energy per output token, baseline-adjusted (J)' },
  { name: 'energy_per_request_j', metric: 'energy_per_request_j', better: 'lower', title: 'energy per request (J)' },
];

export const DEFAULT_FRONTIER_X = 'ttft_p95_ms';
export const DEFAULT_FRONTIER_Y = 'energy_per_output_token_j';

export function frontierAxis(axes: readonly FrontierAxis[], name: string, flag: string): FrontierAxis {
  const axis = axes.find((a) => a.name === name);
  if (!axis) throw new Error(`${flag} ${name}: expected one of ${axes.map((a) => a.name).join(', ')}`);
  return axis;
}

/** Where a config stands. */
export type FrontierStatus =
  /** No other config is better on both means. */
  | 'frontier'
  /** Some config is better on both means, but no config beyond the overlap of the intervals. */
  | 'not_separable'
  /** Some config is better on both axes beyond the overlap of the intervals. */
  | 'dominated'
  /** x or y was not measured (no completed run, or energy unavailable). */
  | 'unmeasured';

export interface AxisValue {
  mean: number;
  /** 95 % interval; null below n = 2 (then nothing can be separated from this config). */
  ci: [number, number] | null;
  n: number;
}

export interface FrontierEntry {
  config_hash: string;
  label: string;
  x: AxisValue | null;
  y: AxisValue | null;
  status: FrontierStatus;
  /** On the frontier: not dominated beyond the intervals (frontier or not_separable). */
  on_frontier: boolean;
  /** Configs better on both axes beyond the overlap of the intervals. */
  dominated_by: string[];
  /** Configs better on both means whose intervals overlap this one's on some axis. */
  not_separable_from: string[];
}

export interface Frontier {
  x: FrontierAxis;
  y: FrontierAxis;
  entries: FrontierEntry[];
}

function axisValue(c: ConfigSummary, axis: FrontierAxis): AxisValue | null {
  const m = c.metrics[axis.metric];
  if (!m || m.mean === null) return null;
  return { mean: m.mean, ci: ciOf(m), n: m.n };
}

/** a is at least as good as b on the means of this axis; `strictly`: better. */
function betterMean(a: AxisValue, b: AxisValue, dir: Direction, strictly: boolean): boolean {
  const d = dir === 'lower' ? b.mean - a.mean : a.mean - b.mean;
  return strictly ? d > 0 : d >= 0;
}

/** a's whole interval is better than b's whole interval (no overlap), on this axis. */
function betterBeyondCi(a: AxisValue, b: AxisValue, dir: Direction): boolean {
  if (!a.ci || !b.ci) return false;
  return dir === 'lower' ? a.ci[1] < b.ci[0] : a.ci[0] > b.ci[1];
}

/** Both intervals are the same single point: every cycle measured exactly this value (a tie with
 * no uncertainty, as with a scripted or capped quantity), which the other axis can break. */
function exactTie(a: AxisValue, b: AxisValue): boolean {
  return !!a.ci && !!b.ci && a.ci[0] === a.ci[1] && b.ci[0] === b.ci[1] && a.ci[0] === b.ci[0];
}

export function computeFrontier(summary: StudySummary, x: FrontierAxis, y: FrontierAxis): Frontier {
  const points = summary.configs.map((c) => ({ c, x: axisValue(c, x), y: axisValue(c, y) }));
  const entries: FrontierEntry[] = points.map((p) => {
    if (!p.x || !p.y) {
      return { config_hash: p.c.config_hash, label: p.c.label, x: p.x, y: p.y, status: 'unmeasured', on_frontier: false, dominated_by: [], not_separable_from: [] };
    }
    const dominatedBy: string[] = [];
    const notSeparable: string[] = [];
    for (const q of points) {
      if (q === p || !q.x || !q.y) continue;
      const byMeans =
        betterMean(q.x, p.x, x.better, false) &&
        betterMean(q.y, p.y, y.better, false) &&
        (betterMean(q.x, p.x, x.better, true) || betterMean(q.y, p.y, y.better, true));
      if (!byMeans) continue;
      const sx = betterBeyondCi(q.x, p.x, x.better);
      const sy = betterBeyondCi(q.y, p.y, y.better);
      if ((sx && sy) || (sx && exactTie(q.y, p.y)) || (sy && exactTie(q.x, p.x))) dominatedBy.push(q.c.config_hash);
      else notSeparable.push(q.c.config_hash);
    }
    const status: FrontierStatus = dominatedBy.length ? 'dominated' : notSeparable.length ? 'not_separable' : 'frontier';
    return {
      config_hash: p.c.config_hash,
      label: p.c.label,
      x: p.x,
      y: p.y,
      status,
      on_frontier: status === 'frontier' || status === 'not_separable',
      dominated_by: dominatedBy,
      not_separable_from: notSeparable,
    };
  });
  return { x, y, entries };
}
