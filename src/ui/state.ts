// The UI's whole state and the actions that change it. Runner events arrive wrapped in
// `{ type: 'runner' }`; everything else comes from keys, the clock and the terminal.
import type { Phase } from '../runner/protocol.ts';
import type { GapKind, RunnerEvent } from '../runner/events.ts';
import type { ConfigProgress, StatusCounts, StudySnapshot, StudyStatus } from '../study-dir/schema.ts';
import type { PlanFile } from '../study/types.ts';
import type { RunsToGo } from './preflight.ts';

export type Stage = 'preflight' | 'starting' | 'study';
export type View = 'table' | 'detail';

/**
 * A question waiting for its confirming key. A skip names the one run it would skip: it is
 * dropped when that run ends; both it and the quit question expire.
 */
export type Confirm =
  | { kind: 'start' }
  | { kind: 'skip'; runIndex: number; /** "run <run id> (<config label> c<cycle>)" */ label: string; expiresAtMs: number }
  | { kind: 'quit'; expiresAtMs: number };
export type ConfirmKind = Confirm['kind'];

/**
 * Phases in which the parent keeps still: no spinner, redraws at most every 2 s, so the parent's
 * CPU stays out of what the baseline and the energy meter see.
 */
export const QUIET_PHASES: ReadonlySet<Phase> = new Set(['baseline', 'measure']);

export const LOG_CAPACITY = 200;
export const POWER_CAPACITY = 120;
/** How long a skip or quit question waits for its second key. */
export const CONFIRM_TIMEOUT_MS = 5000;
/** `llem watch`: how long the final state stays on screen, once the user has stopped pressing keys. */
export const WATCH_EXIT_HOLD_MS = 5000;

export interface LiveRun {
  index: number;
  phase: Phase | null;
  phaseSinceMs: number;
  done: number;
  total: number | null;
  warmupCv: number | null;
  powerW: Array<number | null>;
  tempC: number | null;
  energySoFarJ: number | null;
}

export interface GapState {
  kind: GapKind;
  secondsLeft: number;
  totalSeconds: number;
  tempC: number | null;
  /** Clock time of the event, so the countdown runs between the runner's updates. */
  sinceMs: number;
}

/** The tail of one attempt's worker.log (the child's stdout and stderr), read from disk. */
export interface RunLogTail {
  lines: string[];
  /** Why the file could not be read (a Slurm study on another machine, a removed dir). */
  error: string | null;
}

export interface UiState {
  plan: PlanFile;
  /** `llem watch`: no controls, q leaves. */
  readOnly: boolean;
  needsConfirmation: boolean;
  /** What the pre-flight counts: every run of a new study, what is left of a resumed one. */
  toGo: RunsToGo | null;
  stage: Stage;
  view: View;
  helpOpen: boolean;
  columns: number;
  rows: number;
  nowMs: number;
  study: StudySnapshot | null;
  live: LiveRun | null;
  gap: GapState | null;
  log: string[];
  warnings: string[];
  /** Row index in the filtered table. */
  selected: number;
  offset: number;
  /** The selection follows the running run until the user moves it. */
  follow: boolean;
  /** First line shown of the scrollable pre-flight, detail and help screens. */
  preflightScroll: number;
  detailScroll: number;
  helpScroll: number;
  filterText: string;
  filterEditing: boolean;
  confirm: Confirm | null;
  notice: string | null;
  finished: { status: StudyStatus; counts: StatusCounts; atMs: number } | null;
  /** Clock time of the last key, so `llem watch` does not leave under a user who is reading. */
  lastInputMs: number;
  /** Ctrl+C was pressed once; the next one forces. */
  aborting: boolean;
  /** worker.log tails by run dir (relative to the study dir), for the detail screen. */
  runLogs: Record<string, RunLogTail>;
  /** n_cycles: auto: where the stopping rule stands per config (config_hash → progress). */
  stopping: Readonly<Record<string, ConfigProgress>>;
}

export type ScrollTarget = 'preflight' | 'detail' | 'help';

export type UiAction =
  | { type: 'runner'; event: RunnerEvent }
  | { type: 'snapshot'; snapshot: StudySnapshot }
  | { type: 'resize'; columns: number; rows: number }
  | { type: 'tick'; nowMs: number }
  | { type: 'input'; nowMs: number }
  | { type: 'move'; by: number }
  | { type: 'move_page'; pages: number }
  | { type: 'move_to'; where: 'first' | 'last' }
  | { type: 'follow_running' }
  | { type: 'open_detail' }
  | { type: 'back' }
  | { type: 'toggle_help' }
  | { type: 'filter_start' }
  | { type: 'filter_input'; text: string }
  | { type: 'filter_backspace' }
  | { type: 'filter_commit' }
  | { type: 'filter_clear' }
  | { type: 'confirm_ask'; confirm: Confirm }
  | { type: 'confirm_clear' }
  | { type: 'notice'; text: string | null }
  | { type: 'run_logs'; logs: Record<string, RunLogTail> }
  | { type: 'start_requested' }
  | { type: 'abort_requested' };

export function initialState(opts: {
  plan: PlanFile;
  readOnly?: boolean;
  needsConfirmation?: boolean;
  toGo?: RunsToGo | null;
  columns: number;
  rows: number;
  nowMs: number;
  stage?: Stage;
}): UiState {
  return {
    plan: opts.plan,
    readOnly: opts.readOnly ?? false,
    needsConfirmation: opts.needsConfirmation ?? false,
    toGo: opts.toGo ?? null,
    stage: opts.stage ?? 'preflight',
    view: 'table',
    helpOpen: false,
    columns: opts.columns,
    rows: opts.rows,
    nowMs: opts.nowMs,
    study: null,
    live: null,
    gap: null,
    log: [],
    warnings: [],
    selected: 0,
    offset: 0,
    follow: true,
    preflightScroll: 0,
    detailScroll: 0,
    helpScroll: 0,
    filterText: '',
    filterEditing: false,
    confirm: null,
    notice: null,
    finished: null,
    lastInputMs: 0,
    aborting: false,
    runLogs: {},
    stopping: {},
  };
}
