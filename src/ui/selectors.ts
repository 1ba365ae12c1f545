// Derived views of UiState. Cached on object identity so that a run that did not change keeps
// its row object and its memoised table row does not re-render.
import type { RunSnapshot, RunStatus, StatusCounts } from '../runner/events.ts';
import type { ConfigProgress } from '../study-dir/schema.ts';
import { etaRunsOf, expectedRoundRuns, liveEta } from '../study/live-eta.ts';
import type { PlanFile } from '../study/types.ts';
import { computeLayout, type Layout } from './layout.ts';
import type { UiState } from './state.ts';

export interface ConfigRow {
  configHash: string;
  label: string;
  /** One status per cycle, in cycle order. */
  statuses: RunStatus[];
  runIndices: number[];
  /** Means over completed cycles. */
  energyJ: number | null;
  jPerToken: number | null;
  tokensPerS: number | null;
  durationS: number | null;
  flags: string[];
  retryable: number[];
  /** n_cycles: auto: where the stopping rule stands (the CI column); null for a fixed study or before a cycle ended. */
  ci: ConfigProgress | null;
}

const RUN_STATUSES: readonly RunStatus[] = ['pending', 'running', 'completed', 'failed', 'skipped', 'interrupted'];

export function isRunStatus(word: string): word is RunStatus {
  return (RUN_STATUSES as readonly string[]).includes(word);
}

export function isRetryable(status: RunStatus): boolean {
  return status === 'failed' || status === 'skipped' || status === 'interrupted';
}

const runsByConfigCache = new WeakMap<PlanFile, Map<string, number[]>>();

/** Run indices of each config, in cycle order. */
export function runsByConfig(plan: PlanFile): Map<string, number[]> {
  let map = runsByConfigCache.get(plan);
  if (map) return map;
  map = new Map(plan.configs.map((c) => [c.config_hash, [] as number[]]));
  const sorted = [...plan.order].sort((a, b) => a.cycle - b.cycle || a.index - b.index);
  for (const run of sorted) {
    let list = map.get(run.config_hash);
    if (!list) map.set(run.config_hash, (list = []));
    list.push(run.index);
  }
  runsByConfigCache.set(plan, map);
  return map;
}

function mean(values: Array<number | null | undefined>): number | null {
  const xs = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
}

interface RowCacheEntry {
  runs: Array<RunSnapshot | undefined>;
  ci: ConfigProgress | null;
  row: ConfigRow;
}
const rowCache = new WeakMap<PlanFile, Map<string, RowCacheEntry>>();

function buildRow(label: string, configHash: string, indices: number[], runs: Array<RunSnapshot | undefined>, ci: ConfigProgress | null): ConfigRow {
  const completed = runs.filter((r): r is RunSnapshot => r?.status === 'completed' && r.headline !== null);
  const flags = new Set<string>();
  for (const r of completed) for (const f of r.headline?.flags ?? []) flags.add(f);
  return {
    configHash,
    label,
    statuses: runs.map((r) => r?.status ?? 'pending'),
    runIndices: indices,
    energyJ: mean(completed.map((r) => r.headline?.energy_j)),
    jPerToken: mean(completed.map((r) => r.headline?.energy_per_output_token_j)),
    tokensPerS: mean(completed.map((r) => r.headline?.output_tokens_per_s)),
    durationS: mean(completed.map((r) => r.headline?.duration_s)),
    flags: [...flags].sort(),
    retryable: runs.filter((r): r is RunSnapshot => r !== undefined && isRetryable(r.status)).map((r) => r.index),
    ci,
  };
}

let allRowsMemo: { plan: PlanFile; runs: RunSnapshot[] | null; stopping: UiState['stopping'] | undefined; rows: ConfigRow[] } | null = null;

/** One row per planned config; a row object is reused while none of its runs changed. */
export function selectRows(state: Pick<UiState, 'plan' | 'study'> & Partial<Pick<UiState, 'stopping'>>): ConfigRow[] {
  const runs = state.study?.runs ?? null;
  if (allRowsMemo && allRowsMemo.plan === state.plan && allRowsMemo.runs === runs && allRowsMemo.stopping === state.stopping) return allRowsMemo.rows;
  const byConfig = runsByConfig(state.plan);
  let cache = rowCache.get(state.plan);
  if (!cache) rowCache.set(state.plan, (cache = new Map()));
  const rows = state.plan.configs.map((config) => {
    const indices = byConfig.get(config.config_hash) ?? [];
    const configRuns = indices.map((i) => runs?.[i]);
    const ci = state.stopping?.[config.config_hash] ?? null;
    const cached = cache.get(config.config_hash);
    if (cached && cached.ci === ci && cached.runs.length === configRuns.length && cached.runs.every((r, k) => r === configRuns[k])) return cached.row;
    const row = buildRow(config.label, config.config_hash, indices, configRuns, ci);
    cache.set(config.config_hash, { runs: configRuns, ci, row });
    return row;
  });
  allRowsMemo = { plan: state.plan, runs, stopping: state.stopping, rows };
  return rows;
}

export function rowMatches(row: ConfigRow, filterText: string): boolean {
  const text = filterText.trim().toLowerCase();
  if (text === '') return true;
  if (isRunStatus(text)) return row.statuses.includes(text);
  return row.label.toLowerCase().includes(text) || row.configHash.startsWith(text);
}

let filteredMemo: { rows: ConfigRow[]; filter: string; result: ConfigRow[] } | null = null;

/** Rows shown: all, or those matching the filter (a status word, or text in the label). */
export function selectFilteredRows(state: Pick<UiState, 'plan' | 'study' | 'filterText'>): ConfigRow[] {
  const rows = selectRows(state);
  if (state.filterText.trim() === '') return rows;
  if (filteredMemo && filteredMemo.rows === rows && filteredMemo.filter === state.filterText) return filteredMemo.result;
  const result = rows.filter((r) => rowMatches(r, state.filterText));
  filteredMemo = { rows, filter: state.filterText, result };
  return result;
}

export function selectSelectedRow(state: UiState): ConfigRow | null {
  const rows = selectFilteredRows(state);
  return rows[Math.min(state.selected, rows.length - 1)] ?? null;
}

let layoutMemo: { key: string; layout: Layout } | null = null;

/** Cached per size, so table columns keep their identity and memoised rows stay memoised. */
export function selectLayout(state: Pick<UiState, 'columns' | 'rows' | 'plan'>): Layout {
  const withCi = Boolean(state.plan.execution.target);
  const key = `${state.columns}x${state.rows}x${state.plan.execution.n_cycles}x${withCi}`;
  if (layoutMemo?.key !== key) layoutMemo = { key, layout: computeLayout(state.columns, state.rows, state.plan.execution.n_cycles, withCi) };
  return layoutMemo.layout;
}

export function selectTableRows(state: UiState): number {
  const layout = selectLayout(state);
  return layout.kind === 'full' ? layout.tableRows : 1;
}

export function selectRunningRun(state: UiState): RunSnapshot | null {
  if (state.live && state.study) {
    const run = state.study.runs[state.live.index];
    if (run?.status === 'running') return run;
  }
  return state.study?.runs.find((r) => r.status === 'running') ?? null;
}

export interface HeaderModel {
  name: string;
  hash: string;
  cycle: number;
  nCycles: number;
  /** n_cycles: auto: the most cycles a config may take (shown as "cycle k/≤max"); null for a fixed study. */
  maxCycles: number | null;
  elapsedS: number;
  etaS: number | null;
  counts: StatusCounts;
  state: 'running' | 'paused' | 'pausing' | 'quitting' | 'finished' | 'starting';
  statusWord: string;
}

export function selectHeader(state: UiState): HeaderModel {
  const study = state.study;
  const nCycles = state.plan.execution.n_cycles;
  const startedMs = study ? Date.parse(study.started_at) : state.nowMs;
  const elapsedS = Math.max(0, (state.nowMs - (Number.isFinite(startedMs) ? startedMs : state.nowMs)) / 1000);
  const counts = study?.counts ?? { pending: state.plan.order.length, running: 0, completed: 0, failed: 0, skipped: 0, interrupted: 0 };
  const etaS = state.finished ? 0 : selectEtaS(state);
  const running = selectRunningRun(state);
  const cycle = running?.cycle ?? Math.max(1, ...((study?.runs ?? []).filter((r) => r.status !== 'pending').map((r) => r.cycle)));
  let headerState: HeaderModel['state'] = 'running';
  if (!study) headerState = 'starting';
  else if (state.finished) headerState = 'finished';
  else if (study.quit_requested) headerState = 'quitting';
  else if (study.paused) headerState = running ? 'pausing' : 'paused';
  const statusWord = {
    running: 'running',
    paused: 'PAUSED',
    pausing: 'pausing after this run',
    quitting: 'quitting after this run',
    finished: `finished: ${state.finished?.status ?? ''}`,
    starting: 'starting',
  }[headerState];
  return {
    name: state.plan.study_name,
    hash: state.plan.study_hash,
    cycle,
    nCycles,
    maxCycles: state.plan.execution.target?.max_cycles ?? null,
    elapsedS,
    etaS,
    counts,
    state: headerState,
    statusWord,
  };
}

/**
 * Remaining seconds (src/study/live-eta.ts): the study's own finished runs first, the pre-flight
 * estimate for configs not seen yet; run wall times only, so paused time and the idle time
 * between the sessions of a resumed study never enter it. Before the study starts: the estimate.
 */
export function selectEtaS(state: Pick<UiState, 'plan' | 'study' | 'nowMs'> & Partial<Pick<UiState, 'stopping'>>): number | null {
  const plan = state.plan;
  if (!state.study) return plan.order.length > 0 ? plan.estimate.total_seconds : null;
  const runs = etaRunsOf(state.study.runs, state.nowMs);
  if (plan.execution.target) {
    const stopped = new Set(Object.values(state.stopping ?? {}).filter((c) => c.status === 'stopped').map((c) => c.config_hash));
    runs.push(...expectedRoundRuns(plan.estimate, state.study.runs, stopped));
  }
  return liveEta({ runs, estimate: plan.estimate, execution: plan.execution }).remaining_seconds;
}

export interface PreflightModel {
  name: string;
  hash: string;
  nConfigs: number;
  nCycles: number;
  nRuns: number;
  /** n_cycles: auto: "3–12 cycles (~5 expected)"-style words for the cycles and runs; null for a fixed study. */
  auto: { minCycles: number; maxCycles: number; runs: { expected: number; low: number; high: number } | null } | null;
  byBackend: Array<{ backend: string; configs: number }>;
  skipped: Array<{ label: string; reasons: string[] }>;
  totalS: number;
  lowS: number;
  highS: number;
  finishAtMs: number;
  memory: Array<{ label: string; fit: string; reason: string }>;
  memoryCounts: Record<string, number>;
  warnings: string[];
}

export function selectPreflight(state: UiState): PreflightModel {
  const plan = state.plan;
  const byBackend = new Map<string, number>();
  for (const c of plan.configs) byBackend.set(String(c.config.backend), (byBackend.get(String(c.config.backend)) ?? 0) + 1);
  const labels = new Map(plan.configs.map((c) => [c.config_hash, c.label]));
  const memoryCounts: Record<string, number> = { fits: 0, tight: 0, wont_fit: 0, unknown: 0 };
  for (const pc of plan.estimate.per_config) memoryCounts[pc.memory_fit] = (memoryCounts[pc.memory_fit] ?? 0) + 1;
  // Worst fits first: they are what the user must see before starting.
  const rank: Record<string, number> = { wont_fit: 0, tight: 1, unknown: 2, fits: 3 };
  const memory = [...plan.estimate.per_config]
    .sort((a, b) => (rank[a.memory_fit] ?? 9) - (rank[b.memory_fit] ?? 9))
    .map((pc) => ({ label: labels.get(pc.config_hash) ?? pc.config_hash, fit: pc.memory_fit, reason: pc.memory_reason }));
  return {
    name: plan.study_name,
    hash: plan.study_hash,
    nConfigs: plan.configs.length,
    nCycles: plan.execution.n_cycles,
    nRuns: plan.order.length,
    auto: plan.execution.target
      ? { minCycles: plan.execution.target.min_cycles, maxCycles: plan.execution.target.max_cycles, runs: plan.estimate.runs ?? null }
      : null,
    byBackend: [...byBackend].map(([backend, configs]) => ({ backend, configs })),
    skipped: plan.skipped.map((s) => ({ label: s.label, reasons: s.reasons })),
    totalS: plan.estimate.total_seconds,
    lowS: plan.estimate.low_seconds,
    highS: plan.estimate.high_seconds,
    finishAtMs: state.nowMs + plan.estimate.total_seconds * 1000,
    memory,
    memoryCounts,
    warnings: plan.warnings,
  };
}

export function labelOfRun(state: UiState, index: number): string {
  const planned = state.plan.order[index]?.index === index ? state.plan.order[index] : state.plan.order.find((r) => r.index === index);
  const hash = planned?.config_hash ?? state.study?.runs[index]?.config_hash;
  const config = state.plan.configs.find((c) => c.config_hash === hash);
  const cycle = planned?.cycle ?? state.study?.runs[index]?.cycle;
  return `${config?.label ?? hash ?? `run ${index}`}${cycle !== undefined ? ` c${cycle}` : ''}`;
}
