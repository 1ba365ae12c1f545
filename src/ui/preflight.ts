// What the pre-flight says before anything runs, as data: how many runs are left to go (all of a
// new study, what remains of a resumed one), what they should cost, the grid of configs with
// memory fit and timeout, the skipped combinations and every distinct reason once. The full-screen
// pre-flight draws it; `preflightLines` writes it for the plain reporter and above the TUI (--yes).
import { rerunOnResume, type RunStatus } from '../study-dir/schema.ts';
import { describeHalfWidth, maxCyclesOf } from '../study/target.ts';
import type { MemoryFit, PlanFile } from '../study/types.ts';
import { formatClock, formatDuration } from './format.ts';
import { labelSetOf, type LabelColumn } from './labels.ts';

export interface RunsToGo {
  /** Runs that will run. */
  total: number;
  /** Runs left to go per config hash. */
  perConfig: Record<string, number>;
  /** Runs already completed (0 for a new study). */
  completed: number;
  /** Runs of the whole study, top-up included. */
  studyRuns: number;
  /** Some run of the study has been tried already (or cycles are added): counts are "left of". */
  resumed: boolean;
  /**
   * The total timeout every run to go runs under when a resume overrides the plan's
   * (`--experiment-timeout`, or the override an earlier resume recorded); null: the plan's.
   */
  timeoutOverrideS: number | null;
}

/** Which runs a resume reruns (src/study-dir/statuses.ts rerunOnResume, the rule the runner applies). */
export function resumeWillRun(retryFailed: boolean): (status: RunStatus) => boolean {
  return (s) => rerunOnResume(s, retryFailed);
}

/**
 * Runs left to go. `statuses` (by run index, matching plan.order) null for a new study;
 * `addedCycles` more cycles of every config (resume --cycles).
 */
export function runsToGo(
  plan: PlanFile,
  statuses: readonly RunStatus[] | null,
  opts: { willRun?: (status: RunStatus) => boolean; addedCycles?: number; timeoutOverrideS?: number | null } = {},
): RunsToGo {
  const willRun = opts.willRun ?? ((s: RunStatus) => s === 'pending');
  const perConfig: Record<string, number> = {};
  let total = 0;
  let completed = 0;
  let started = false;
  for (const run of plan.order) {
    const status = statuses ? (statuses[run.index] ?? 'pending') : 'pending';
    if (status === 'completed') completed++;
    if (status !== 'pending') started = true;
    if (!willRun(status)) continue;
    perConfig[run.config_hash] = (perConfig[run.config_hash] ?? 0) + 1;
    total++;
  }
  const added = Math.max(0, opts.addedCycles ?? 0);
  if (added > 0) {
    for (const c of plan.configs) perConfig[c.config_hash] = (perConfig[c.config_hash] ?? 0) + added;
    total += added * plan.configs.length;
  }
  return {
    total,
    perConfig,
    completed,
    studyRuns: plan.order.length + added * plan.configs.length,
    resumed: started || added > 0,
    timeoutOverrideS: opts.timeoutOverrideS ?? null,
  };
}

export interface EstimateSeconds {
  totalS: number;
  lowS: number;
  highS: number;
}

/** The plan's estimate for the runs to go: their run times plus their share of the gaps. */
export function estimateToGo(plan: PlanFile, toGo: RunsToGo): EstimateSeconds {
  const e = plan.estimate;
  if (!toGo.resumed && toGo.total === plan.order.length) return { totalS: e.total_seconds, lowS: e.low_seconds, highS: e.high_seconds };
  const perConfig = new Map(e.per_config.map((pc) => [pc.config_hash, pc]));
  const mean = (pick: (pc: (typeof e.per_config)[number]) => number) =>
    e.per_config.length === 0 ? 0 : e.per_config.reduce((sum, pc) => sum + pick(pc), 0) / e.per_config.length;
  const fallback = { run: mean((pc) => pc.run_seconds), low: mean((pc) => pc.low_seconds), high: mean((pc) => pc.high_seconds) };
  const planned: Record<string, number> = {};
  for (const r of plan.order) planned[r.config_hash] = (planned[r.config_hash] ?? 0) + 1;
  const sum = (counts: Record<string, number>, pick: 'run' | 'low' | 'high') => {
    let s = 0;
    for (const [hash, n] of Object.entries(counts)) {
      const pc = perConfig.get(hash);
      s += n * (pc ? (pick === 'run' ? pc.run_seconds : pick === 'low' ? pc.low_seconds : pc.high_seconds) : fallback[pick]);
    }
    return s;
  };
  // What the plan's total holds beyond run times (gaps, cooldown) is shared out per run.
  const share = plan.order.length === 0 ? 0 : toGo.total / plan.order.length;
  const gaps = (total: number, pick: 'run' | 'low' | 'high') => Math.max(0, total - sum(planned, pick)) * share;
  return {
    totalS: sum(toGo.perConfig, 'run') + gaps(e.total_seconds, 'run'),
    lowS: sum(toGo.perConfig, 'low') + gaps(e.low_seconds, 'low'),
    highS: sum(toGo.perConfig, 'high') + gaps(e.high_seconds, 'high'),
  };
}

/**
 * The total timeout a run of config `index` gets, as the planner computed it (src/study/estimate.ts
 * runTimeouts, recorded per config in the plan's estimate), or the override a resume runs under.
 * null: a plan written before the estimate carried it, without an experiment_timeout_seconds (the
 * runner then computes the model-size aware default as each run starts).
 */
export function configTimeoutSeconds(plan: PlanFile, index: number, overrideS: number | null = null): number | null {
  if (overrideS !== null) return overrideS;
  const config = plan.configs[index];
  if (!config) return null;
  const pc = plan.estimate.per_config[index];
  const timeout = pc?.config_hash === config.config_hash ? pc.timeout_seconds : plan.estimate.per_config.find((p) => p.config_hash === config.config_hash)?.timeout_seconds;
  return timeout ?? plan.execution.experiment_timeout_seconds ?? null;
}

export interface PreflightRow {
  label: string;
  /** Values of the label's varying parts, one per `PreflightModel.columns`. */
  values: string[];
  /** Runs of this config left to go. */
  runs: number;
  /** Estimated seconds of one run. */
  runS: number | null;
  fit: MemoryFit;
  /** 1-based number of the memory reason in `reasons`, null when there is none. */
  reason: number | null;
  /** null: not recorded in an older plan (see configTimeoutSeconds). */
  timeoutS: number | null;
}

export interface PreflightModel {
  name: string;
  hash: string;
  nConfigs: number;
  nCycles: number;
  /** `n_cycles: auto`: the most cycles a config may take, and the stopping rule in words; null for a fixed count. */
  autoCycles: { maxCycles: number; maxRuns: number; text: string } | null;
  /** Where the estimate's durations come from (absent in older plans). */
  estimateSource: 'history' | 'heuristic' | 'mixed' | null;
  /** What the estimate assumed, in words (history used or why not, the pilot assumption of
   * n_cycles: auto): the plan's estimate.notes, the same lines `llem plan` prints. */
  estimateNotes: string[];
  toGo: RunsToGo;
  byBackend: Array<{ backend: string; configs: number }>;
  estimate: EstimateSeconds;
  memoryCounts: Record<MemoryFit, number>;
  /** Distinct memory reasons per fit that is not `fits`, worst first. */
  fitReasons: Array<{ fit: MemoryFit; reasons: number[] }>;
  /** Words every config shares (shown once above the grid). */
  common: string;
  /** The grid's value columns (swept keys), and the widest value of each. */
  columns: LabelColumn[];
  columnWidths: number[];
  row(index: number): PreflightRow;
  skipped: Array<{ label: string; reasons: number[] }>;
  /** Every distinct memory and skip reason, once; rows refer to them by number. */
  reasons: string[];
  warnings: string[];
}

const modelCache = new WeakMap<PlanFile, WeakMap<RunsToGo, PreflightModel>>();

export function preflightModel(plan: PlanFile, toGo: RunsToGo): PreflightModel {
  let byToGo = modelCache.get(plan);
  if (!byToGo) modelCache.set(plan, (byToGo = new WeakMap()));
  const cached = byToGo.get(toGo);
  if (cached) return cached;
  const reasons: string[] = [];
  const reasonNumber = new Map<string, number>();
  const refer = (reason: string): number | null => {
    const text = reason.trim();
    if (text === '') return null;
    let n = reasonNumber.get(text);
    if (n === undefined) {
      reasons.push(text);
      n = reasons.length;
      reasonNumber.set(text, n);
    }
    return n;
  };
  const perConfig = new Map(plan.estimate.per_config.map((pc) => [pc.config_hash, pc]));
  const memoryCounts: Record<MemoryFit, number> = { fits: 0, tight: 0, wont_fit: 0, unknown: 0 };
  const byFit = new Map<MemoryFit, Set<number>>();
  const memoryReason: Array<number | null> = plan.configs.map((c) => {
    const pc = perConfig.get(c.config_hash);
    if (!pc) return null;
    memoryCounts[pc.memory_fit] += 1;
    if (pc.memory_fit === 'fits') return null;
    const n = refer(pc.memory_reason);
    if (n !== null) {
      if (!byFit.has(pc.memory_fit)) byFit.set(pc.memory_fit, new Set());
      byFit.get(pc.memory_fit)!.add(n);
    }
    return n;
  });
  const fitReasons = (['wont_fit', 'tight', 'unknown'] as const)
    .filter((fit) => byFit.has(fit))
    .map((fit) => ({ fit, reasons: [...byFit.get(fit)!] }));
  const skipped = plan.skipped.map((s) => ({ label: s.label, reasons: s.reasons.map(refer).filter((n): n is number => n !== null) }));
  const byBackend = new Map<string, number>();
  for (const c of plan.configs) byBackend.set(String(c.config.backend), (byBackend.get(String(c.config.backend)) ?? 0) + 1);
  const labels = labelSetOf(plan);
  const model: PreflightModel = {
    name: plan.study_name,
    hash: plan.study_hash,
    nConfigs: plan.configs.length,
    nCycles: plan.execution.n_cycles,
    autoCycles: autoCyclesOf(plan),
    estimateSource: plan.estimate.source ?? null,
    estimateNotes: plan.estimate.notes ?? [],
    toGo,
    byBackend: [...byBackend].map(([backend, configs]) => ({ backend, configs })),
    estimate: estimateToGo(plan, toGo),
    memoryCounts,
    fitReasons,
    common: labels.common,
    columns: labels.columns,
    columnWidths: labels.widths,
    row(index) {
      const c = plan.configs[index]!;
      const pc = perConfig.get(c.config_hash);
      return {
        label: c.label,
        values: labels.cells[index] ?? [],
        runs: toGo.perConfig[c.config_hash] ?? 0,
        runS: pc?.run_seconds ?? null,
        fit: pc?.memory_fit ?? 'unknown',
        reason: memoryReason[index] ?? null,
        timeoutS: configTimeoutSeconds(plan, index, toGo.timeoutOverrideS),
      };
    },
    skipped,
    reasons,
    warnings: plan.warnings,
  };
  byToGo.set(toGo, model);
  return model;
}

/**
 * `n_cycles: auto` in words, the runs expected first (the full screen cuts the line at its width):
 * "n_cycles: auto — ~120 runs expected (75–250) of at most 250; 3–10 cycles per config, until the
 * interval of … is within ±5 % of the mean".
 */
function autoCyclesOf(plan: PlanFile): PreflightModel['autoCycles'] {
  const target = plan.execution.target;
  if (!target) return null;
  const maxCycles = maxCyclesOf(plan.execution);
  const maxRuns = plan.configs.length * maxCycles;
  const expected = plan.estimate.runs;
  const runs = expected ? `~${expected.expected} runs expected (${expected.low}–${expected.high}) of at most ${maxRuns}` : `up to ${maxRuns} runs`;
  const text =
    `n_cycles: auto — ${runs}; ${target.min_cycles}–${target.max_cycles} cycles per config, until the interval of ${target.metric} is within ${describeHalfWidth(target.ci_half_width)}` +
    `${target.decide ? ' or its rank is decided' : ''}`;
  return { maxCycles, maxRuns, text };
}

export const FIT_WORDS: Record<MemoryFit, string> = { fits: 'fits', tight: 'tight', wont_fit: "won't fit", unknown: 'unknown' };

/** "6 runs (3 configs × 2 cycles)", or for a resume "4 of 6 runs to go (2 completed)". */
export function countLine(m: PreflightModel): string {
  const t = m.toGo;
  const grid = `${m.nConfigs} config${m.nConfigs === 1 ? '' : 's'} × ${m.nCycles} cycle${m.nCycles === 1 ? '' : 's'}`;
  // n_cycles: auto starts with min_cycles and may add rounds: say how far it may go
  const auto = m.autoCycles ? ` (n_cycles: auto, up to ${m.autoCycles.maxCycles} cycles, ${m.autoCycles.maxRuns} runs)` : '';
  if (!t.resumed) return `${grid} = ${t.total} run${t.total === 1 ? '' : 's'}${auto}`;
  return `${t.total} of ${t.studyRuns} runs to go (${t.completed} completed; ${grid})${auto}`;
}

export function estimateLine(m: PreflightModel, nowMs: number): string {
  const e = m.estimate;
  const source = m.estimateSource === null ? '' : `  [from ${m.estimateSource === 'mixed' ? 'history and heuristic' : m.estimateSource}]`;
  return `estimate: ${formatDuration(e.totalS)} (${formatDuration(e.lowS)}–${formatDuration(e.highS)}), finishes about ${formatClock(nowMs + e.totalS * 1000)}${source}`;
}

export function memoryLine(m: PreflightModel): string {
  const mc = m.memoryCounts;
  return `GPU memory: ${mc.fits} fit, ${mc.tight} tight, ${mc.wont_fit} won't fit, ${mc.unknown} unknown`;
}

const PLAIN_SKIPPED_MAX = 20;

/**
 * The pre-flight as plain lines (no colour, no width): what `--no-tui` prints before the first run
 * and what stays on the normal screen above the full-screen interface with --yes.
 */
export function preflightLines(m: PreflightModel, nowMs: number, opts: { title?: boolean } = {}): string[] {
  const lines: string[] = [];
  if (opts.title !== false) lines.push(`llem · ${m.name}  (study ${m.hash.slice(0, 12)})`);
  lines.push(`  ${countLine(m)}; backends: ${m.byBackend.map((b) => `${b.backend} ${b.configs}`).join(', ') || 'none'}`);
  if (m.autoCycles) lines.push(`  ${m.autoCycles.text}`);
  lines.push(`  ${estimateLine(m, nowMs)}`);
  for (const note of m.estimateNotes) lines.push(`    · ${note}`);
  lines.push(`  ${memoryLine(m)}`);
  for (const { fit, reasons } of m.fitReasons) for (const n of reasons) lines.push(`    ${FIT_WORDS[fit]}: ${m.reasons[n - 1]}`);
  if (m.skipped.length > 0) {
    lines.push(`  skipped ${m.skipped.length} combination${m.skipped.length === 1 ? '' : 's'} (invalid before anything runs):`);
    for (const s of m.skipped.slice(0, PLAIN_SKIPPED_MAX)) lines.push(`    ${s.label}: ${s.reasons.map((n) => m.reasons[n - 1]).join('; ')}`);
    if (m.skipped.length > PLAIN_SKIPPED_MAX) lines.push(`    … and ${m.skipped.length - PLAIN_SKIPPED_MAX} more (llem plan lists them all)`);
  }
  for (const w of m.warnings) lines.push(`  warning: ${w}`);
  return lines;
}
