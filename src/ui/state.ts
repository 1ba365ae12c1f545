// The UI's whole state and the actions that change it. Runner events arrive wrapped in
// `{ type: 'runner' }`; everything else comes from keys, the clock and the terminal.
import type { Phase } from '../runner/protocol.ts';
import type { GapKind, RunnerEvent, StatusCounts, StudySnapshot, StudyStatus } from '../runner/events.ts';
import type { ConfigProgress } from '../study-dir/schema.ts';
import type { PlanFile } from '../study/types.ts';

export type Stage = 'preflight' | 'starting' | 'study';
export type View = 'table' | 'detail';
export type ConfirmKind = 'start' | 'skip' | 'quit' | 'retry_all';

export const LOG_CAPACITY = 200;
export const POWER_CAPACITY = 120;

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

export interface UiState {
  plan: PlanFile;
  /** `llem watch`: no controls, q leaves. */
  readOnly: boolean;
  needsConfirmation: boolean;
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
  filterText: string;
  filterEditing: boolean;
  confirm: ConfirmKind | null;
  notice: string | null;
  finished: { status: StudyStatus; counts: StatusCounts } | null;
  /** Ctrl+C was pressed once; the next one forces. */
  aborting: boolean;
  /** n_cycles: auto: where the stopping rule stands per config (config_hash → progress). */
  stopping: Readonly<Record<string, ConfigProgress>>;
}

export type UiAction =
  | { type: 'runner'; event: RunnerEvent }
  | { type: 'snapshot'; snapshot: StudySnapshot }
  | { type: 'resize'; columns: number; rows: number }
  | { type: 'tick'; nowMs: number }
  | { type: 'move'; by: number }
  | { type: 'move_page'; pages: number }
  | { type: 'move_to'; where: 'first' | 'last' }
  | { type: 'open_detail' }
  | { type: 'back' }
  | { type: 'toggle_help' }
  | { type: 'filter_start' }
  | { type: 'filter_input'; text: string }
  | { type: 'filter_backspace' }
  | { type: 'filter_commit' }
  | { type: 'filter_clear' }
  | { type: 'confirm_ask'; what: ConfirmKind }
  | { type: 'confirm_clear' }
  | { type: 'notice'; text: string | null }
  | { type: 'start_requested' }
  | { type: 'abort_requested' };

export function initialState(opts: {
  plan: PlanFile;
  readOnly?: boolean;
  needsConfirmation?: boolean;
  columns: number;
  rows: number;
  nowMs: number;
  stage?: Stage;
}): UiState {
  return {
    plan: opts.plan,
    readOnly: opts.readOnly ?? false,
    needsConfirmation: opts.needsConfirmation ?? false,
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
    filterText: '',
    filterEditing: false,
    confirm: null,
    notice: null,
    finished: null,
    aborting: false,
    stopping: {},
  };
}
