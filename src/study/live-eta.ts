// The in-run ETA, pure: remaining seconds of a study from its own finished runs first, the
// pre-flight estimate second. It reads run wall times only, never the study's elapsed clock, so
// time spent paused (between runs) never enters it; and a per-config median of recent runs does
// not jump with each finished run the way elapsed ÷ finished × remaining does early on.
import type { CycleOrder, Estimate } from './types.ts';
import { quantileSorted } from '../results/stats.ts';

export type EtaRunStatus = 'pending' | 'running' | 'completed' | 'failed' | 'skipped' | 'interrupted' | 'invalid';

export interface EtaRun {
  config_hash: string;
  cycle: number;
  status: EtaRunStatus | string;
  /** Finished runs: spawn to exit (seconds). Running: seconds so far. Otherwise null. */
  wall_seconds: number | null;
  /** When it finished (ms since epoch), to pick the most recent runs; plan order when absent. */
  ended_at_ms?: number | null;
}

export interface LiveEtaInput {
  /** Every run of the plan, in plan order. */
  runs: ReadonlyArray<EtaRun>;
  /** The pre-flight estimate (plan.json `estimate`): per-config seconds of one run. */
  estimate: { per_config: ReadonlyArray<Pick<Estimate['per_config'][number], 'config_hash' | 'run_seconds'>> };
  execution: { config_gap_seconds: number; cycle_gap_seconds: number; cycle_order: CycleOrder; cooldown: { max_wait_seconds: number } | null };
}

export interface LiveEta {
  remaining_seconds: number;
  /** estimate: no run finished yet; study: every remaining run's config has finished runs here;
   * mixed: some configs not seen yet (their pre-flight estimate, scaled by how far off it was). */
  source: 'study' | 'estimate' | 'mixed';
  finished_runs: number;
}

/** Recent runs per config the median is taken over: enough to shrug off one outlier, few enough
 * to follow a drift (a GPU warming over a long study). */
export const ETA_RECENT_RUNS = 5;

const median = (xs: number[]): number => quantileSorted([...xs].sort((a, b) => a - b), 0.5);

// an invalid run was measured in full: its wall time is a run's like a completed one's
const FINISHED_WITH_WALL = new Set(['completed', 'failed', 'invalid']);
const REMAINING = new Set(['pending', 'running']);

/** Remaining seconds of a study. Pure; call it on every tick. */
export function liveEta(input: LiveEtaInput): LiveEta {
  const estimateOf = new Map(input.estimate.per_config.map((c) => [c.config_hash, c.run_seconds]));
  // Finished runs by config, most recent last.
  const finished = input.runs
    .map((r, i) => ({ r, i }))
    .filter(({ r }) => FINISHED_WITH_WALL.has(r.status) && r.wall_seconds !== null && Number.isFinite(r.wall_seconds))
    .sort((a, b) => (a.r.ended_at_ms ?? a.i) - (b.r.ended_at_ms ?? b.i) || a.i - b.i);
  const wallsByConfig = new Map<string, number[]>();
  const ratios: number[] = [];
  for (const { r } of finished) {
    const list = wallsByConfig.get(r.config_hash) ?? [];
    list.push(r.wall_seconds!);
    wallsByConfig.set(r.config_hash, list);
    const est = estimateOf.get(r.config_hash);
    if (est && est > 0) ratios.push(r.wall_seconds! / est);
  }
  // How far off the pre-flight was on the runs seen so far: applied to configs not seen yet.
  const calibration = ratios.length ? median(ratios.slice(-ETA_RECENT_RUNS * 4)) : 1;
  const meanEstimate = estimateOf.size ? [...estimateOf.values()].reduce((a, b) => a + b, 0) / estimateOf.size : 0;

  let fromStudy = 0;
  let fromEstimate = 0;
  const predict = (hash: string): number => {
    const walls = wallsByConfig.get(hash);
    if (walls?.length) {
      fromStudy++;
      return median(walls.slice(-ETA_RECENT_RUNS));
    }
    fromEstimate++;
    return (estimateOf.get(hash) ?? meanEstimate) * calibration;
  };

  let remaining = 0;
  let previous: EtaRun | null = null;
  for (const r of input.runs) {
    if (REMAINING.has(r.status)) {
      const p = predict(r.config_hash);
      if (r.status === 'running') {
        // Over its prediction, it is nearly done rather than done: keep a tenth.
        remaining += Math.max(p * 0.1, p - (r.wall_seconds ?? 0));
      } else {
        remaining += p;
        if (previous) {
          const boundary = input.execution.cycle_order !== 'sequential' && r.cycle !== previous.cycle;
          remaining += boundary ? input.execution.cycle_gap_seconds : input.execution.config_gap_seconds;
          if (input.execution.cooldown) remaining += input.execution.cooldown.max_wait_seconds / 4;
        }
      }
    }
    previous = r;
  }
  const source = finished.length === 0 ? 'estimate' : fromEstimate === 0 ? 'study' : 'mixed';
  return { remaining_seconds: remaining, source, finished_runs: finished.length };
}

/** A run as the manifest (or the UI's snapshot) records it: enough to time it. */
export interface RecordedRun {
  config_hash: string;
  cycle: number;
  status: string;
  attempts: ReadonlyArray<{ started_at: string; ended_at: string | null }>;
}

/**
 * The runs of a study as liveEta takes them: a finished run's wall time is its last attempt's
 * (started → ended: the time it ran, so a pause or the idle time between two sessions of a
 * resumed study never enters it); the running one counts up to `nowMs`.
 */
export function etaRunsOf(runs: ReadonlyArray<RecordedRun | undefined>, nowMs: number): EtaRun[] {
  const out: EtaRun[] = [];
  for (const r of runs) {
    if (!r) continue;
    const a = r.attempts.at(-1);
    const started = a ? Date.parse(a.started_at) : NaN;
    const ended = a?.ended_at ? Date.parse(a.ended_at) : NaN;
    let wall: number | null = null;
    if (FINISHED_WITH_WALL.has(r.status) && Number.isFinite(started) && Number.isFinite(ended)) wall = Math.max(0, (ended - started) / 1000);
    else if (r.status === 'running' && Number.isFinite(started)) wall = Math.max(0, (nowMs - started) / 1000);
    out.push({ config_hash: r.config_hash, cycle: r.cycle, status: r.status, wall_seconds: wall, ended_at_ms: Number.isFinite(ended) ? ended : null });
  }
  return out;
}

/**
 * n_cycles: auto: the cycles each config not yet stopped is still expected to add after the runs
 * planned so far (the pre-flight's expected cycles per config), as pending runs for liveEta. The
 * rounds append them one at a time, so without these the ETA would cover only the current round.
 */
export function expectedRoundRuns(
  estimate: { per_config: ReadonlyArray<{ config_hash: string; cycles?: { expected: number } }> },
  runs: ReadonlyArray<{ config_hash: string; cycle: number } | undefined>,
  stopped: ReadonlySet<string>,
): EtaRun[] {
  const planned = new Map<string, number>();
  for (const r of runs) if (r) planned.set(r.config_hash, Math.max(planned.get(r.config_hash) ?? 0, r.cycle));
  const extra: EtaRun[] = [];
  for (const c of estimate.per_config) {
    const have = planned.get(c.config_hash);
    if (have === undefined || stopped.has(c.config_hash) || !c.cycles) continue;
    for (let cycle = have + 1; cycle <= c.cycles.expected; cycle++) extra.push({ config_hash: c.config_hash, cycle, status: 'pending', wall_seconds: null });
  }
  // in round order: by cycle, so the ETA counts the cycle gaps between rounds
  return extra.sort((a, b) => a.cycle - b.cycle);
}
