// Derived views of UiState. Cached on object identity so that a run that did not change keeps
// its row object and its memoised table row does not re-render.
import { emptyCounts, isRetryable, RUN_STATUSES, type ConfigProgress, type RunSnapshot, type RunStatus, type StatusCounts } from '../study-dir/schema.ts';
import { etaRunsOf, expectedRoundRuns, liveEta } from '../study/live-eta.ts';
import type { PlanFile } from '../study/types.ts';
import { fitLabels } from './labels.ts';
import { computeLayout, METRIC_COLUMN_IDS, type Layout, type TableColumnId } from './layout.ts';
import { preflightModel, runsToGo, type PreflightModel, type RunsToGo } from './preflight.ts';
import { WATCH_EXIT_HOLD_MS, type UiState } from './state.ts';

export interface ConfigRow {
  /** Position of the config in the plan. */
  configIndex: number;
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

export function isRunStatus(word: string): word is RunStatus {
  return (RUN_STATUSES as readonly string[]).includes(word);
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

function buildRow(configIndex: number, label: string, configHash: string, indices: number[], runs: Array<RunSnapshot | undefined>, ci: ConfigProgress | null): ConfigRow {
  const completed = runs.filter((r): r is RunSnapshot => r?.status === 'completed' && r.headline !== null);
  const flags = new Set<string>();
  for (const r of completed) for (const f of r.headline?.flags ?? []) flags.add(f);
  return {
    configIndex,
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
  const rows = state.plan.configs.map((config, configIndex) => {
    const indices = byConfig.get(config.config_hash) ?? [];
    const configRuns = indices.map((i) => runs?.[i]);
    const ci = state.stopping?.[config.config_hash] ?? null;
    const cached = cache.get(config.config_hash);
    if (cached && cached.ci === ci && cached.runs.length === configRuns.length && cached.runs.every((r, k) => r === configRuns[k])) return cached.row;
    const row = buildRow(configIndex, config.label, config.config_hash, indices, configRuns, ci);
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

let dataColumnsMemo: { rows: ConfigRow[]; ids: ReadonlySet<TableColumnId>; key: string } | null = null;

/** Metric columns that hold a value in some row (the others would read all dashes). */
function selectColumnsWithData(state: Pick<UiState, 'plan' | 'study'>): { ids: ReadonlySet<TableColumnId>; key: string } {
  const rows = selectRows(state);
  if (dataColumnsMemo?.rows === rows) return dataColumnsMemo;
  const has: Record<string, boolean> = {};
  for (const r of rows) {
    has.energy ||= r.energyJ !== null;
    has.jPerToken ||= r.jPerToken !== null;
    has.tokensPerS ||= r.tokensPerS !== null;
    has.duration ||= r.durationS !== null;
    has.flags ||= r.flags.length > 0;
  }
  const ids = new Set(METRIC_COLUMN_IDS.filter((id) => has[id]));
  const key = [...ids].join(',');
  // same set as before: keep the old object, so the layout below stays memoised
  dataColumnsMemo = dataColumnsMemo?.key === key ? { ...dataColumnsMemo, rows } : { rows, ids, key };
  return dataColumnsMemo;
}

/** The widest label in its shortest style that is still whole (what the label column would like). */
function labelWidthWanted(plan: PlanFile, columns: number): number {
  const budget = Math.max(16, columns - 10);
  const fitted = fitLabels(plan, budget);
  let widest = fitted.title.length;
  for (let i = 0; i < plan.configs.length; i++) widest = Math.max(widest, fitted.text(i).length);
  return widest;
}

let layoutMemo: { key: string; plan: PlanFile; layout: Layout } | null = null;

/** Cached per size and data columns, so table columns keep their identity and memoised rows stay memoised. */
export function selectLayout(state: Pick<UiState, 'columns' | 'rows' | 'plan' | 'study'>): Layout {
  const data = selectColumnsWithData(state);
  const withCi = Boolean(state.plan.execution.target);
  const key = `${state.columns}x${state.rows}x${state.plan.execution.n_cycles}x${data.key}x${withCi}`;
  if (layoutMemo?.key !== key || layoutMemo.plan !== state.plan) {
    const labelWidth = labelWidthWanted(state.plan, state.columns);
    layoutMemo = {
      key,
      plan: state.plan,
      layout: computeLayout(state.columns, state.rows, state.plan.execution.n_cycles, { labelWidth, withData: data.ids, withCi }),
    };
  }
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
  // the clock stops when the study does (a watch left open must not keep counting)
  const endMs = state.finished ? state.finished.atMs : state.nowMs;
  const elapsedS = Math.max(0, (endMs - (Number.isFinite(startedMs) ? startedMs : endMs)) / 1000);
  const counts = study?.counts ?? { ...emptyCounts(), pending: state.plan.order.length };
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

const newStudyToGo = new WeakMap<PlanFile, RunsToGo>();

/** The pre-flight of this session: every run of a new study, or what a resume has left. */
export function selectPreflight(state: Pick<UiState, 'plan' | 'toGo'>): PreflightModel {
  let toGo = state.toGo;
  if (!toGo) {
    toGo = newStudyToGo.get(state.plan) ?? runsToGo(state.plan, null);
    newStudyToGo.set(state.plan, toGo);
  }
  return preflightModel(state.plan, toGo);
}

const configIndexCache = new WeakMap<PlanFile, Map<string, number>>();

/** Position in the plan of the config with this hash (-1 when the plan has none). */
export function configIndexOf(plan: PlanFile, configHash: string): number {
  let map = configIndexCache.get(plan);
  if (!map) configIndexCache.set(plan, (map = new Map(plan.configs.map((c, i) => [c.config_hash, i]))));
  return map.get(configHash) ?? -1;
}

/** Row (in the filtered table) of the config a run belongs to; null when filtered out. */
export function selectRowOfRun(state: UiState, runIndex: number): number | null {
  const hash = state.study?.runs[runIndex]?.config_hash ?? state.plan.order[runIndex]?.config_hash;
  if (hash === undefined) return null;
  const at = selectFilteredRows(state).findIndex((r) => r.configHash === hash);
  return at === -1 ? null : at;
}

/**
 * `llem watch` after the study ended: milliseconds until it leaves on its own, counted from the
 * end or the user's last key, whichever is later; null while it must stay (study going on, or the
 * user is in the detail, help or filter).
 */
export function selectWatchExitInMs(state: UiState): number | null {
  if (!state.readOnly || !state.finished) return null;
  if (state.view !== 'table' || state.helpOpen || state.filterEditing) return null;
  const since = Math.max(state.finished.atMs, state.lastInputMs);
  return Math.max(0, since + WATCH_EXIT_HOLD_MS - state.nowMs);
}

/** The exit code a finished study stands for (as `llem run` would have exited). */
export function exitCodeOfStatus(status: string): number {
  return status === 'completed' ? 0 : status === 'interrupted' ? 130 : 1;
}

export function labelOfRun(state: UiState, index: number): string {
  const planned = state.plan.order[index]?.index === index ? state.plan.order[index] : state.plan.order.find((r) => r.index === index);
  const hash = planned?.config_hash ?? state.study?.runs[index]?.config_hash;
  const config = state.plan.configs.find((c) => c.config_hash === hash);
  const cycle = planned?.cycle ?? state.study?.runs[index]?.cycle;
  return `${config?.label ?? hash ?? `run ${index}`}${cycle !== undefined ? ` c${cycle}` : ''}`;
}
