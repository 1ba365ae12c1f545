// The pure heart of the UI: (state, action) → state. Runner events, keys, ticks and resizes all
// pass through here, so every behaviour is a row in a table test.
import type { RunnerEvent } from '../runner/events.ts';
import type { ConfigProgress, RunSnapshot, StatusCounts, StudySnapshot } from '../study-dir/schema.ts';
import type { PlanFile, PlannedRun } from '../study/types.ts';
import { appendCapped } from './format.ts';
import { scrollOffset } from './layout.ts';
import { clampScroll } from './lines.ts';
import { scrollContent, scrollViewport } from './scroll.ts';
import { selectFilteredRows, selectRowOfRun, selectRunningRun, selectTableRows } from './selectors.ts';
import { LOG_CAPACITY, POWER_CAPACITY, type LiveRun, type ScrollTarget, type UiAction, type UiState } from './state.ts';

const WARNING_CAPACITY = 50;

/** n_cycles: auto: the plan with a round's runs appended (again: a no-op, a journal read twice). */
function withRound(plan: PlanFile, added: ReadonlyArray<PlannedRun>): PlanFile {
  const fresh = added.filter((r) => r.index >= plan.order.length).sort((a, b) => a.index - b.index);
  if (fresh.length === 0) return plan;
  const nCycles = Math.max(plan.execution.n_cycles, ...fresh.map((r) => r.cycle));
  return { ...plan, order: [...plan.order, ...fresh], execution: { ...plan.execution, n_cycles: nCycles } };
}

/** The recorded stops of a snapshot (a resumed study) as the CI column shows them. */
function stoppingOf(snapshot: StudySnapshot, before: UiState['stopping']): UiState['stopping'] {
  const stops = snapshot.rounds?.stops ?? [];
  if (stops.length === 0) return before;
  const out: Record<string, ConfigProgress> = { ...before };
  for (const { round: _round, at: _at, ...s } of stops) out[s.config_hash] = { ...s, status: 'stopped' };
  return out;
}

function withSelection(state: UiState, selected: number): UiState {
  const total = selectFilteredRows(state).length;
  const clamped = total === 0 ? 0 : Math.max(0, Math.min(total - 1, selected));
  const offset = scrollOffset(clamped, state.offset, selectTableRows(state), total);
  if (clamped === state.selected && offset === state.offset) return state;
  return { ...state, selected: clamped, offset };
}

/** In follow mode the selection sits on the running run's row (when the filter shows it). */
function followRunning(state: UiState): UiState {
  if (!state.follow) return state;
  const running = selectRunningRun(state);
  if (!running) return state;
  const row = selectRowOfRun(state, running.index);
  return row === null ? state : withSelection(state, row);
}

function replaceRun(study: StudySnapshot, run: RunSnapshot): StudySnapshot {
  const previous = study.runs[run.index];
  const runs = study.runs.slice();
  runs[run.index] = run;
  let counts: StatusCounts = study.counts;
  if (!previous || previous.status !== run.status) {
    counts = { ...study.counts };
    if (previous) counts[previous.status] = Math.max(0, counts[previous.status] - 1);
    counts[run.status] += 1;
  }
  return { ...study, runs, counts };
}

function freshLive(index: number, nowMs: number): LiveRun {
  return { index, phase: null, phaseSinceMs: nowMs, done: 0, total: null, warmupCv: null, powerW: [], tempC: null, energySoFarJ: null };
}

/** The live panel follows the run the event is about; a new index starts a fresh panel. */
function liveFor(state: UiState, index: number): LiveRun {
  return state.live && state.live.index === index ? state.live : freshLive(index, state.nowMs);
}

function timeOf(at: string, fallbackMs: number): number {
  const ms = Date.parse(at);
  return Number.isFinite(ms) ? ms : fallbackMs;
}

function applyRunStatus(state: UiState, run: RunSnapshot): UiState {
  if (!state.study) return state;
  const before = state.study.runs[run.index];
  const study = replaceRun(state.study, run);
  let live = state.live;
  let notice = state.notice;
  let confirm = state.confirm;
  if (run.status === 'running') {
    // A new run: what the footer said about the last one ("s: no run is running") is stale.
    if (before?.status !== 'running') notice = null;
    live = liveFor(state, run.index);
  } else if (live && live.index === run.index) {
    live = null;
  }
  // A skip question belongs to one run: when that run ends, nothing is left to confirm.
  if (confirm?.kind === 'skip' && confirm.runIndex === run.index && run.status !== 'running') {
    notice = `${confirm.label} ended (${run.status}) before the skip was confirmed`;
    confirm = null;
  }
  return followRunning({ ...state, study, live, notice, confirm });
}

function applyRunnerEvent(state: UiState, event: RunnerEvent): UiState {
  switch (event.type) {
    case 'study_started':
      return followRunning({ ...state, stage: 'study', study: event.snapshot, finished: null, stopping: stoppingOf(event.snapshot, state.stopping) });
    case 'stopping': {
      const stopping: Record<string, ConfigProgress> = { ...state.stopping };
      for (const c of event.configs) stopping[c.config_hash] = c;
      return { ...state, stopping, plan: withRound(state.plan, event.added) };
    }
    case 'run_status':
      return applyRunStatus(state, event.run);
    case 'phase': {
      const live = liveFor(state, event.index);
      return { ...state, live: { ...live, phase: event.phase, phaseSinceMs: state.nowMs, done: 0, total: null } };
    }
    case 'progress': {
      const live = liveFor(state, event.index);
      const phaseChanged = live.phase !== event.phase;
      return {
        ...state,
        live: {
          ...live,
          phase: event.phase,
          phaseSinceMs: phaseChanged ? state.nowMs : live.phaseSinceMs,
          done: event.done,
          total: event.total,
          warmupCv: event.warmup_cv ?? live.warmupCv,
        },
      };
    }
    case 'power': {
      const live = liveFor(state, event.index);
      const temps = event.samples.map((s) => s.temp_c).filter((t): t is number => t !== null);
      return {
        ...state,
        live: {
          ...live,
          powerW: appendCapped(live.powerW, event.samples.map((s) => s.power_w), POWER_CAPACITY),
          tempC: temps.length > 0 ? temps[temps.length - 1] : live.tempC,
          energySoFarJ: event.energy_so_far_j ?? live.energySoFarJ,
        },
      };
    }
    case 'log': {
      // Child output may contain control sequences; they must never reach our terminal. A message
      // of several lines is several log lines (one Ink line holding a newline shows as "…").
      const lines = event.line
        .split(/\r?\n/)
        .map((l) => l.replace(/\u001b\[[0-9;?]*[ -/]*[@-~]|[\u0000-\u0008\u000b-\u001f\u007f]/g, ''))
        .filter((l) => l.trim() !== '');
      return lines.length === 0 ? state : { ...state, log: appendCapped(state.log, lines, LOG_CAPACITY) };
    }
    case 'gap':
      return {
        ...state,
        gap: { kind: event.kind, secondsLeft: event.seconds_left, totalSeconds: event.total_seconds, tempC: event.temp_c, sinceMs: state.nowMs },
      };
    case 'gap_end':
      return { ...state, gap: null };
    case 'paused':
      return state.study ? { ...state, study: { ...state.study, paused: event.paused, status: event.paused ? 'paused' : 'running' } } : state;
    case 'quit_requested':
      return state.study ? { ...state, study: { ...state.study, quit_requested: event.requested } } : state;
    case 'warning':
      return {
        ...state,
        warnings: appendCapped(state.warnings, [event.message], WARNING_CAPACITY),
        log: appendCapped(state.log, [`warning: ${event.message}`], LOG_CAPACITY),
      };
    case 'study_finished':
      return {
        ...state,
        live: null,
        gap: null,
        confirm: null,
        finished: { status: event.status, counts: event.counts, atMs: timeOf(event.at, state.nowMs) },
        study: state.study ? { ...state.study, status: event.status, counts: event.counts } : state.study,
      };
  }
}

/** The screen the move keys act on: a scrollable one, or the table (null). */
function scrollTarget(state: UiState): ScrollTarget | null {
  if (state.helpOpen) return 'help';
  if (state.stage !== 'study') return 'preflight';
  return state.view === 'detail' ? 'detail' : null;
}

const SCROLL_FIELD = { preflight: 'preflightScroll', detail: 'detailScroll', help: 'helpScroll' } as const;

function scrollTo(state: UiState, target: ScrollTarget, line: number): UiState {
  const field = SCROLL_FIELD[target];
  const next = clampScroll(line, scrollContent(state, target).length, scrollViewport(state, target));
  return next === state[field] ? state : { ...state, [field]: next };
}

function move(state: UiState, by: (viewport: number) => number, to?: 'first' | 'last'): UiState {
  const target = scrollTarget(state);
  if (target) {
    const current = state[SCROLL_FIELD[target]];
    const line = to === 'first' ? 0 : to === 'last' ? Number.MAX_SAFE_INTEGER : current + by(scrollViewport(state, target));
    return scrollTo(state, target, line);
  }
  const row = to === 'first' ? 0 : to === 'last' ? Number.MAX_SAFE_INTEGER : state.selected + by(selectTableRows(state));
  const moved = withSelection(state, row);
  // the user moved the selection: it stops following the running run
  return moved === state || !moved.follow ? moved : { ...moved, follow: false };
}

function expireConfirmation(state: UiState): UiState {
  const c = state.confirm;
  if (!c || c.kind === 'start' || c.expiresAtMs > state.nowMs) return state;
  const what = c.kind === 'skip' ? `skip of ${c.label}` : 'quit';
  return { ...state, confirm: null, notice: `${what} not confirmed in time; cancelled` };
}

export function reducer(state: UiState, action: UiAction): UiState {
  switch (action.type) {
    case 'runner': {
      const next = applyRunnerEvent(state, action.event);
      return next === state ? state : withSelection(next, next.selected);
    }
    case 'snapshot': {
      let live = state.live;
      const running = action.snapshot.runs.find((r) => r.status === 'running');
      if (running && (!live || live.index !== running.index)) live = freshLive(running.index, state.nowMs);
      if (!running) live = null;
      return followRunning(withSelection({ ...state, stage: 'study', study: action.snapshot, live, stopping: stoppingOf(action.snapshot, state.stopping) }, state.selected));
    }
    case 'resize': {
      if (action.columns === state.columns && action.rows === state.rows) return state;
      return withSelection({ ...state, columns: action.columns, rows: action.rows }, state.selected);
    }
    case 'tick':
      return action.nowMs === state.nowMs ? state : expireConfirmation({ ...state, nowMs: action.nowMs });
    case 'input':
      return { ...state, lastInputMs: action.nowMs };
    case 'move':
      return move(state, () => action.by);
    case 'move_page':
      return move(state, (page) => action.pages * Math.max(1, page - 1));
    case 'move_to':
      return move(state, () => 0, action.where);
    case 'follow_running':
      return followRunning({ ...state, follow: true });
    case 'open_detail':
      return selectFilteredRows(state).length === 0 ? state : { ...state, view: 'detail', helpOpen: false, detailScroll: 0 };
    case 'back':
      if (state.helpOpen) return { ...state, helpOpen: false };
      if (state.view === 'detail') return { ...state, view: 'table' };
      if (state.filterText !== '') return withSelection({ ...state, filterText: '', filterEditing: false, offset: 0 }, 0);
      return state;
    case 'toggle_help':
      return { ...state, helpOpen: !state.helpOpen, helpScroll: 0 };
    case 'filter_start':
      return { ...state, filterEditing: true, view: 'table', helpOpen: false };
    case 'filter_input':
      return withSelection({ ...state, filterText: state.filterText + action.text, offset: 0, follow: false }, 0);
    case 'filter_backspace':
      return withSelection({ ...state, filterText: state.filterText.slice(0, -1), offset: 0 }, 0);
    case 'filter_commit':
      return { ...state, filterEditing: false };
    case 'filter_clear':
      return withSelection({ ...state, filterText: '', filterEditing: false, offset: 0 }, 0);
    case 'confirm_ask':
      return { ...state, confirm: action.confirm };
    case 'confirm_clear':
      return state.confirm === null ? state : { ...state, confirm: null };
    case 'notice':
      return state.notice === action.text ? state : { ...state, notice: action.text };
    case 'run_logs':
      return { ...state, runLogs: { ...state.runLogs, ...action.logs } };
    case 'start_requested':
      return { ...state, stage: 'starting', confirm: null, notice: null };
    case 'abort_requested':
      return { ...state, aborting: true, confirm: null, notice: 'aborting: stopping the current run…' };
  }
}
