// The `n_cycles: auto` stopping rule, pure: per-config values of the target metric after a round
// of cycles → per config continue / wait / stop with a reason, and the configs of the next round.
//
// The interval is the summary's own: describe() from stats.ts with configStatsOptions() from
// summarize.ts (same confidence, resamples and per-config seed), so a config stops exactly when
// the summary that will be published says its interval is narrow enough. The summary reports two
// intervals of the mean (percentile bootstrap and Student t); the rule requires BOTH to be within
// the target. With 3–5 cycles the percentile bootstrap is much narrower than t (it uses z instead
// of t and the n rather than n − 1 spread) and under-covers: stopping on it alone would end
// configs early with an interval that claims more than it holds.
import type { CycleTarget } from '../study/target.ts';
import { describe as describeValues, studentTQuantile, type MetricStats } from './stats.ts';
import { configStatsOptions, DEFAULT_SUMMARY_OPTIONS, type SummaryOptions } from './summarize.ts';

import type { StopReason } from '../study-dir/statuses.ts';
export { STOP_REASONS, type StopReason } from '../study-dir/statuses.ts';

/** One config's cycles so far, as the runner's manifest and results tell them. */
export interface ConfigCycles {
  config_hash: string;
  /** The target metric of each valid completed cycle, in cycle order; null = a valid run that did
   * not measure the metric (e.g. energy without a GPU). Failed and invalid runs are NOT here. */
  values: ReadonlyArray<number | null>;
  /** Cycles that ended without a valid result after all their retries (failed; invalid once the
   * validity gate exists). They count toward max_cycles: the budget is in runs. */
  failed: number;
  /** Cycles planned but not finished (pending, running, interrupted): no decision until they end. */
  unfinished: number;
  /** A stop already recorded (resume): final, kept as it is. */
  stopped: StopReason | null;
}

export interface ConfigDecision {
  config_hash: string;
  /** continue: one more cycle next round; waiting: cycles of this round still to finish. */
  status: 'continue' | 'waiting' | 'stopped';
  reason: StopReason | null;
  /** Finished cycles (valid + failed). */
  cycles: number;
  /** Finite values the interval is computed from. */
  n: number;
  mean: number | null;
  /** The widest half-width of the summary's intervals (t, bootstrap), in the metric's unit. */
  half_width: number | null;
  /** half_width / |mean|. */
  relative_half_width: number | null;
  /** The target half-width in the metric's unit (relative targets scale with the mean). */
  target_half_width: number | null;
  /** The hull of the summary's intervals (what `decide: ranking` compares). */
  interval: [number, number] | null;
  /** One sentence: why it stopped or continues. */
  detail: string;
}

export interface RoundDecision {
  configs: ConfigDecision[];
  /** Configs that get one more cycle in the next round, in input order. */
  next_round: string[];
  /** Every config stopped: the study's cycles are complete. */
  done: boolean;
}

export interface StoppingInput {
  target: CycleTarget;
  configs: ReadonlyArray<ConfigCycles>;
  /** The summary's options (default: DEFAULT_SUMMARY_OPTIONS). */
  options?: Partial<SummaryOptions>;
  /** The summary's bootstrap base seed: summaryBootstrapSeed(plan, options), i.e. plan.cycle_seed. */
  bootstrapSeed: number;
}

function fmt(v: number): string {
  return String(Number(v.toPrecision(3)));
}

function widest(stats: MetricStats): { halfWidth: number; hull: [number, number] } | null {
  const intervals = [stats.ci_t, stats.ci_bootstrap].filter((ci): ci is [number, number] => ci !== null);
  if (intervals.length === 0 || stats.mean === null) return null;
  let halfWidth = 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (const [a, b] of intervals) {
    halfWidth = Math.max(halfWidth, (b - a) / 2);
    lo = Math.min(lo, a);
    hi = Math.max(hi, b);
  }
  return { halfWidth, hull: [lo, hi] };
}

/** The half-width the target asks for, in the metric's unit, for a config with this mean. */
export function targetHalfWidth(target: CycleTarget, mean: number): number {
  return target.ci_half_width.kind === 'relative' ? target.ci_half_width.value * Math.abs(mean) : target.ci_half_width.value;
}

function decideOne(target: CycleTarget, c: ConfigCycles, opts: SummaryOptions, bootstrapSeed: number): ConfigDecision {
  const cycles = c.values.length + c.failed;
  const stats = describeValues(c.values, configStatsOptions(opts, bootstrapSeed, c.config_hash));
  const w = widest(stats);
  const mean = stats.mean;
  const goal = mean === null ? null : targetHalfWidth(target, mean);
  const base = {
    config_hash: c.config_hash,
    cycles,
    n: stats.n,
    mean,
    half_width: w?.halfWidth ?? null,
    relative_half_width: w && mean !== null && mean !== 0 ? w.halfWidth / Math.abs(mean) : null,
    target_half_width: goal,
    interval: w?.hull ?? null,
  };
  const stop = (reason: StopReason, detail: string): ConfigDecision => ({ ...base, status: 'stopped', reason, detail });
  const width = () => (w && goal !== null ? `±${fmt(w.halfWidth)} against ±${fmt(goal)}` : 'no interval yet');

  if (c.stopped) return { ...base, status: 'stopped', reason: c.stopped, detail: `stopped earlier (${c.stopped})` };
  if (c.unfinished > 0) return { ...base, status: 'waiting', reason: null, detail: `${c.unfinished} cycle(s) of this round still to finish` };
  if (w && goal !== null && stats.n >= target.min_cycles && w.halfWidth <= goal) {
    return stop('target_met', `${stats.n} valid cycles: ${width()} (${target.metric})`);
  }
  const missing = c.values.length - stats.n;
  if (cycles >= target.min_cycles && stats.n === 0) {
    return stop('failed', `no valid ${target.metric} in ${cycles} cycle(s): ${c.failed} failed or invalid, ${missing} without the metric`);
  }
  if (cycles >= target.max_cycles) {
    if (stats.n < 2) return stop('failed', `${stats.n} valid ${target.metric} value(s) in ${cycles} cycles (max_cycles): no interval`);
    return stop('max_cycles', `max_cycles ${target.max_cycles} reached: ${width()}`);
  }
  return { ...base, status: 'continue', reason: null, detail: `${stats.n} valid cycle(s): ${width()}` };
}

/** After a round: every config's decision and the next round. Pure and deterministic. */
export function decideRound(input: StoppingInput): RoundDecision {
  const opts: SummaryOptions = { ...DEFAULT_SUMMARY_OPTIONS, ...input.options };
  const { target } = input;
  const configs = input.configs.map((c) => decideOne(target, c, opts, input.bootstrapSeed));

  if (target.decide === 'ranking') {
    // Ranked by mean among configs that have an interval (failed ones out). A config still
    // measuring stops as `decided` when its interval is clear of both neighbours': another cycle
    // narrows it but cannot move it past them.
    const ranked = configs
      .filter((d) => d.interval !== null && d.mean !== null && d.reason !== 'failed')
      .sort((a, b) => a.mean! - b.mean! || a.config_hash.localeCompare(b.config_hash));
    for (let i = 0; i < ranked.length; i++) {
      const d = ranked[i]!;
      if (d.status !== 'continue' || d.n < target.min_cycles) continue;
      const overlaps = [ranked[i - 1], ranked[i + 1]].some((nb) => nb && nb.interval![0] <= d.interval![1] && d.interval![0] <= nb.interval![1]);
      if (!overlaps) {
        const neighbours = [ranked[i - 1], ranked[i + 1]].filter(Boolean).length;
        Object.assign(d, {
          status: 'stopped',
          reason: 'decided',
          detail: neighbours ? `interval clear of its ${neighbours === 2 ? 'two neighbours' : 'neighbour'} in the ranking by ${target.metric}` : 'no other config to rank against',
        });
      }
    }
  }

  const next = configs.filter((d) => d.status === 'continue').map((d) => d.config_hash);
  return { configs, next_round: next, done: configs.every((d) => d.status === 'stopped') };
}

/**
 * Cycles a config with this per-cycle CV needs for a relative half-width (the t interval, which
 * is the wider of the summary's two at these n), clamped to [min, max]. For the estimate.
 */
export function cyclesForCv(cv: number, relativeHalfWidth: number, min: number, max: number, confidence = DEFAULT_SUMMARY_OPTIONS.confidence): number {
  if (!(cv > 0)) return min;
  for (let n = Math.max(2, min); n <= max; n++) {
    if ((studentTQuantile(1 - (1 - confidence) / 2, n - 1) * cv) / Math.sqrt(n) <= relativeHalfWidth) return n;
  }
  return max;
}
