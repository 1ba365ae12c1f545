// What the pre-flight says before anything runs, as data: how many runs are left to go (all of a
// new study, what remains of a resumed one), what they should cost, the grid of configs with
// memory fit and timeout, the skipped combinations and every distinct reason once. The full-screen
// pre-flight draws it; `preflightLines` writes it for the plain reporter and above the TUI (--yes).
import { statSync } from 'node:fs';
import type { RunStatus } from '../runner/events.ts';
import { defaultRunTimeoutSeconds } from '../study/estimate.ts';
import type { ExperimentConfig, MemoryFit, PlanFile } from '../study/types.ts';
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
}

/** Which runs a resume reruns: pending, running (its runner died) and interrupted; failed and skipped with --retry-failed. */
export function resumeWillRun(retryFailed: boolean): (status: RunStatus) => boolean {
  return (s) => s === 'pending' || s === 'running' || s === 'interrupted' || (retryFailed && (s === 'failed' || s === 'skipped'));
}

/**
 * Runs left to go. `statuses` (by run index, matching plan.order) null for a new study;
 * `addedCycles` more cycles of every config (resume --cycles).
 */
export function runsToGo(
  plan: PlanFile,
  statuses: readonly RunStatus[] | null,
  opts: { willRun?: (status: RunStatus) => boolean; addedCycles?: number } = {},
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
  return { total, perConfig, completed, studyRuns: plan.order.length + added * plan.configs.length, resumed: started || added > 0 };
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

function modelFileBytes(config: ExperimentConfig): number | null {
  if (typeof config.model !== 'string' || config.model.startsWith('builtin:')) return null;
  try {
    return statSync(config.model).size;
  } catch {
    return null;
  }
}

const timeoutCache = new WeakMap<PlanFile, Map<string, number>>();

/**
 * The timeout a run of config `index` gets: the plan's per-config `timeout_seconds` when the plan
 * carries it, else `execution.experiment_timeout_seconds`, else the model-size aware default the
 * runner computes (src/study/estimate.ts defaultRunTimeoutSeconds over the model file's size).
 */
export function configTimeoutSeconds(plan: PlanFile, index: number): number {
  const config = plan.configs[index];
  if (!config) return 0;
  const perConfig = plan.estimate.per_config[index] as { config_hash: string; timeout_seconds?: number } | undefined;
  if (perConfig?.config_hash === config.config_hash && typeof perConfig.timeout_seconds === 'number') return perConfig.timeout_seconds;
  if (plan.execution.experiment_timeout_seconds) return plan.execution.experiment_timeout_seconds;
  let byHash = timeoutCache.get(plan);
  if (!byHash) timeoutCache.set(plan, (byHash = new Map()));
  let s = byHash.get(config.config_hash);
  if (s === undefined) {
    s = defaultRunTimeoutSeconds(config.config, modelFileBytes(config.config));
    byHash.set(config.config_hash, s);
  }
  return s;
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
  timeoutS: number;
}

export interface PreflightModel {
  name: string;
  hash: string;
  nConfigs: number;
  nCycles: number;
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
        timeoutS: configTimeoutSeconds(plan, index),
      };
    },
    skipped,
    reasons,
    warnings: plan.warnings,
  };
  byToGo.set(toGo, model);
  return model;
}

export const FIT_WORDS: Record<MemoryFit, string> = { fits: 'fits', tight: 'tight', wont_fit: "won't fit", unknown: 'unknown' };

/** "6 runs (3 configs × 2 cycles)", or for a resume "4 of 6 runs to go (2 completed)". */
export function countLine(m: PreflightModel): string {
  const t = m.toGo;
  const grid = `${m.nConfigs} config${m.nConfigs === 1 ? '' : 's'} × ${m.nCycles} cycle${m.nCycles === 1 ? '' : 's'}`;
  if (!t.resumed) return `${grid} = ${t.total} run${t.total === 1 ? '' : 's'}`;
  return `${t.total} of ${t.studyRuns} runs to go (${t.completed} completed; ${grid})`;
}

export function estimateLine(m: PreflightModel, nowMs: number): string {
  const e = m.estimate;
  return `estimate: ${formatDuration(e.totalS)} (${formatDuration(e.lowS)}–${formatDuration(e.highS)}), finishes about ${formatClock(nowMs + e.totalS * 1000)}`;
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
  lines.push(`  ${estimateLine(m, nowMs)}`);
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
