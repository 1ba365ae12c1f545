// `n_cycles: auto` in the runner, one module for every launcher: when a round of cycles is over
// (no run of the study pending, running or interrupted), the stopping rule (src/results/stopping-rule.ts) over
// the valid completed runs of each config; each new stop is recorded in the manifest with its
// reason, and the configs that continue get their next cycle appended in the study's order
// discipline (src/study/round.ts appendRound, with the recorded cycle_seed). The local runner calls
// it from its scheduler when the last run of a round ends; on Slurm, whoever records the last run
// of a round (the task, or the poller that records what Slurm did to it) calls it under the study
// lock, then submits the new round (src/runner/slurm/launcher.ts submitNextRound).
//
// Crash safety: one commit, in order: plan.json, rounds.json (the stops), the manifest with the
// appended runs. A plan ahead of the manifest is cut back to its runs when read here; stops ahead
// of it are final and the rule is deterministic, so a runner killed anywhere between decides the
// same round again on resume.
import path from 'node:path';
import { decideRound, type ConfigCycles, type ConfigDecision } from '../results/stopping-rule.ts';
import type { RunResult } from '../results/schema.ts';
import { DEFAULT_SUMMARY_OPTIONS, METRIC_GETTERS, summaryBootstrapSeed } from '../results/summarize.ts';
import type { SummaryMetricKey } from '../results/summary-schema.ts';
import { checkResult } from '../study-dir/read.ts';
import type { ConfigProgress, ConfigStop, Manifest, RunRecord, RunStatus } from '../study-dir/schema.ts';
import { appendRound } from '../study/round.ts';
import type { CycleTarget } from '../study/target.ts';
import type { PlanFile, PlannedRun } from '../study/types.ts';
import type { RunnerEvent } from './events.ts';
import type { ManifestStore } from './manifest.ts';
import { pendingRecord, writePlan } from './study-dir.ts';
import { runStatusEvent } from './transitions.ts';

/**
 * The one definition of what the stopping rule counts: a completed run, and only that. A run
 * that failed, was skipped, or that the validity gate judged invalid never gives a value (it
 * counts toward max_cycles as a cycle spent without one).
 */
export function countsTowardRule(run: Pick<RunRecord, 'status'>): boolean {
  return run.status === 'completed';
}

/** Runs still to end: no decision on their config until they have. */
function unfinished(status: RunStatus): boolean {
  return status === 'pending' || status === 'running' || status === 'interrupted';
}

/**
 * The target metric of completed runs, read from their result.json once and kept (by result
 * path). `undefined`: the result cannot be read (the summary excludes such a run as failed, so
 * the rule does too).
 */
export class TargetValues {
  private readonly byResult = new Map<string, number | null | undefined>();

  constructor(
    private readonly studyDir: string,
    private readonly metric: SummaryMetricKey,
  ) {}

  /** A result the runner has in hand (the attempt just read it back). */
  remember(resultPath: string, result: RunResult): void {
    this.byResult.set(path.resolve(this.studyDir, resultPath), METRIC_GETTERS[this.metric](result.metrics));
  }

  of(run: Pick<RunRecord, 'result'>): number | null | undefined {
    if (!run.result) return undefined;
    const file = path.resolve(this.studyDir, run.result);
    if (!this.byResult.has(file)) {
      const checked = checkResult(file);
      this.byResult.set(file, checked.ok ? METRIC_GETTERS[this.metric](checked.result.metrics) : undefined);
    }
    return this.byResult.get(file);
  }
}

/** Each config's cycles as the stopping rule takes them, from the manifest's runs and the recorded stops. */
export function configCyclesOf(plan: Pick<PlanFile, 'configs'>, manifest: Pick<Manifest, 'runs' | 'rounds'>, values: TargetValues, only?: string): ConfigCycles[] {
  const byConfig = new Map<string, RunRecord[]>();
  for (const c of plan.configs) if (only === undefined || c.config_hash === only) byConfig.set(c.config_hash, []);
  for (const r of manifest.runs) byConfig.get(r.config_hash)?.push(r);
  const stopOf = new Map((manifest.rounds?.stops ?? []).map((s) => [s.config_hash, s.reason]));
  return [...byConfig].map(([hash, runs]) => {
    const sorted = runs.sort((a, b) => a.cycle - b.cycle);
    const valuesInOrder: Array<number | null> = [];
    let failed = 0;
    let open = 0;
    for (const r of sorted) {
      if (countsTowardRule(r)) {
        const v = values.of(r);
        if (v === undefined) failed++;
        else valuesInOrder.push(v);
      } else if (unfinished(r.status)) open++;
      else failed++;
    }
    // A stop is final, unless runs of the config were put back (a retry): then it is decided again.
    return { config_hash: hash, values: valuesInOrder, failed, unfinished: open, stopped: open > 0 ? null : (stopOf.get(hash) ?? null) };
  });
}

export function progressOf(d: ConfigDecision): ConfigProgress {
  return {
    config_hash: d.config_hash,
    status: d.status,
    reason: d.reason,
    cycles: d.cycles,
    n: d.n,
    mean: d.mean,
    half_width: d.half_width,
    relative_half_width: d.relative_half_width,
    target_half_width: d.target_half_width,
    detail: d.detail,
  };
}

function decide(plan: PlanFile, target: CycleTarget, configs: ConfigCycles[]) {
  return decideRound({ target, configs, bootstrapSeed: summaryBootstrapSeed(plan, DEFAULT_SUMMARY_OPTIONS) });
}

/** The plan cut back to the manifest's runs: a plan.json written just before a crash may be ahead of it. */
export function planOfManifest(plan: PlanFile, manifest: Pick<Manifest, 'runs' | 'n_cycles'>): PlanFile {
  if (plan.order.length <= manifest.runs.length) return plan;
  return { ...plan, order: plan.order.slice(0, manifest.runs.length), execution: { ...plan.execution, n_cycles: manifest.n_cycles } };
}

/**
 * Drops the recorded stop of every config with runs put back to pending (`--retry-failed`, a
 * retry): its data is changing, so the rule decides it again when its runs have ended. Applied
 * to the store (the caller commits); returns the config hashes released.
 */
export function releaseRetriedStops(store: ManifestStore): string[] {
  const rounds = store.manifest.rounds;
  if (!rounds || rounds.stops.length === 0) return [];
  const open = new Set(store.manifest.runs.filter((r) => unfinished(r.status)).map((r) => r.config_hash));
  const released = rounds.stops.filter((s) => open.has(s.config_hash)).map((s) => s.config_hash);
  if (released.length > 0) store.setRounds({ ...rounds, stops: rounds.stops.filter((s) => !open.has(s.config_hash)) });
  return released;
}

/** Where the rule stands for one config now (the interval so far), for the UI's CI column. */
export function progressEvent(plan: PlanFile, manifest: Pick<Manifest, 'runs' | 'rounds'>, values: TargetValues, configHash: string): RunnerEvent | null {
  const target = plan.execution.target;
  if (!target) return null;
  const configs = configCyclesOf(plan, manifest, values, configHash);
  if (configs.length === 0) return null;
  const d = decide(plan, { ...target, decide: null }, configs).configs[0]!;
  // mid-round the rule has not decided: what it would say so far, without a stop
  const status = d.status === 'stopped' && !configs[0]!.stopped ? 'continue' : d.status;
  return { type: 'stopping', at: new Date().toISOString(), round: null, configs: [{ ...progressOf(d), status, reason: status === 'stopped' ? d.reason : null }], added: [] };
}

export interface RoundStep {
  /** The plan from now on (with the appended round). */
  plan: PlanFile;
  /** Already applied to the store: the caller commits them (journal, then manifest). */
  events: RunnerEvent[];
  /** Runs appended (the next round). */
  added: PlannedRun[];
  /** Every config has stopped: the study's cycles are complete. */
  done: boolean;
}

/**
 * When the round is over (no run pending, running or interrupted): the rule over every config; new stops are
 * recorded, each continuing config gets its next cycle appended (plan.json written first), and
 * the manifest's cycle count follows. Applied to the store, not committed. Null when the study
 * has no target, the round is not over, or the rule changes nothing (every stop already recorded,
 * or configs waiting for interrupted runs).
 */
export function advanceRound(store: ManifestStore, plan: PlanFile, studyDir: string, values: TargetValues, now = new Date()): RoundStep | null {
  const target = plan.execution.target;
  if (!target) return null;
  const m = store.manifest;
  // the round is over when every run of it has ended: an interrupted one is rerun by a resume first
  if (m.runs.some((r) => unfinished(r.status))) return null;
  const current = planOfManifest(plan, m);
  const rounds = m.rounds ?? { decided: 0, stops: [] };
  const decision = decide(current, target, configCyclesOf(current, m, values));
  const round = rounds.decided + 1;
  const at = now.toISOString();
  const before = new Map(rounds.stops.map((s) => [s.config_hash, s]));
  const stops: ConfigStop[] = decision.configs
    .filter((d): d is ConfigDecision & { reason: NonNullable<ConfigDecision['reason']> } => d.status === 'stopped' && d.reason !== null)
    .map((d) => {
      const kept = before.get(d.config_hash);
      if (kept && kept.reason === d.reason) return kept;
      const { status: _status, ...progress } = progressOf(d);
      return { ...progress, reason: d.reason, round, at };
    });
  const changed = stops.length !== rounds.stops.length || stops.some((s) => before.get(s.config_hash) !== s);
  if (!changed && decision.next_round.length === 0) return null;

  let next = current;
  let added: PlannedRun[] = [];
  if (decision.next_round.length > 0) {
    const appended = appendRound(current, m.runs.length, decision.next_round);
    writePlan(studyDir, appended.plan);
    store.setRuns([...m.runs, ...appended.added.map(pendingRecord)]);
    store.manifest.n_cycles = Math.max(m.n_cycles, appended.plan.execution.n_cycles);
    next = appended.plan;
    added = appended.added;
  }
  store.setRounds({ decided: round, stops });
  // the configs this round stopped (the others' intervals went out run by run: progressEvent), so
  // a round of a large grid stays one small journal line
  const newlyStopped = decision.configs.filter((d) => d.status === 'stopped' && !before.has(d.config_hash));
  const events: RunnerEvent[] = [
    { type: 'stopping', at, round, configs: newlyStopped.map(progressOf), added: added.map((r) => ({ index: r.index, config_hash: r.config_hash, cycle: r.cycle })) },
    ...added.map((r) => runStatusEvent(store.run(r.index), at)),
  ];
  return { plan: next, events, added, done: decision.done };
}
