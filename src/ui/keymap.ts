// One table of key bindings. It drives dispatch (the root input handler), the footer, the help
// screen, the too-small screen and README's key list, so a key can never do something the help
// does not say. Labels that depend on the state are computed from it; a binding that cannot apply
// names the reason, which the footer shows when the key is pressed.
import type { RunnerControls } from '../runner/events.ts';
import { exitCodeOfStatus, labelOfRun, selectRunningRun, selectSelectedRow, selectFilteredRows } from './selectors.ts';
import { CONFIRM_TIMEOUT_MS, type UiAction, type UiState } from './state.ts';

export type Screen = 'preflight' | 'table' | 'detail' | 'help';
/** `run`: this process runs the study (llem run/resume); `watch`: another one does (llem watch). */
export type Mode = 'run' | 'watch';

/** Normalised key names: a printable character as itself, or one of these. */
export type KeyName =
  | 'up'
  | 'down'
  | 'pageup'
  | 'pagedown'
  | 'home'
  | 'end'
  | 'enter'
  | 'escape'
  | 'backspace'
  | 'tab'
  | 'ctrl+c'
  | string;

export interface KeyContext {
  state: UiState;
  /** Clock time of the key press. */
  nowMs: number;
  dispatch(action: UiAction): void;
  /** null before the runner exists (pre-flight) */
  controls: RunnerControls | null;
  start(): void;
  exit(code: number): void;
  abort(): void;
}

export interface KeyBinding {
  id: string;
  keys: KeyName[];
  /** How the keys are written in the footer, help and README. */
  keyLabel: string;
  /** What the key does, for help and README. */
  description: string;
  /** What it does instead in `llem watch`, when that differs. */
  watchDescription?: string;
  /** Short label for the footer and help, from the state it would act on. */
  label(state: UiState): string;
  group: 'move' | 'view' | 'study' | 'app';
  screens: Screen[];
  modes: Mode[];
  /** Screens where the footer's short list names it. */
  footer: Screen[];
  disabledReason(state: UiState): string | null;
  run(ctx: KeyContext): void;
}

export function screenOf(state: UiState): Screen {
  if (state.helpOpen) return 'help';
  if (state.stage !== 'study') return 'preflight';
  return state.view === 'detail' ? 'detail' : 'table';
}

export function modeOf(state: UiState): Mode {
  return state.readOnly ? 'watch' : 'run';
}

export const READ_ONLY = 'read-only: another process runs this study';

/** Why a key of `llem run` does nothing in `llem watch`. */
function readOnlyReason(state: UiState): string {
  return state.stage === 'study' ? READ_ONLY : 'read-only: waiting for the study to start';
}

function studyControlReason(state: UiState): string | null {
  if (state.readOnly) return READ_ONLY;
  if (!state.study) return 'the study has not started';
  if (state.finished) return 'the study is over';
  if (state.aborting) return 'aborting';
  return null;
}

const always = () => null;
const ALL_SCREENS: Screen[] = ['preflight', 'table', 'detail', 'help'];
const STUDY_SCREENS: Screen[] = ['table', 'detail'];
const BOTH: Mode[] = ['run', 'watch'];
const RUN: Mode[] = ['run'];
const fixed = (text: string) => () => text;
/** On the table the move keys move the selection; elsewhere they scroll. */
const moveWord = (onTable: string, elsewhere: string) => (s: UiState) => (screenOf(s) === 'table' ? onTable : elsewhere);

export const KEYMAP: KeyBinding[] = [
  {
    id: 'start',
    keys: ['enter'],
    keyLabel: 'Enter',
    description: 'start the study (pre-flight)',
    label: fixed('start'),
    group: 'study',
    screens: ['preflight'],
    modes: RUN,
    footer: ['preflight'],
    disabledReason: (s) => (s.stage === 'starting' ? 'starting…' : s.plan.order.length === 0 && !s.toGo?.total ? 'nothing to run' : null),
    run: (ctx) => {
      if (ctx.state.needsConfirmation && ctx.state.confirm?.kind !== 'start') {
        ctx.dispatch({ type: 'confirm_ask', confirm: { kind: 'start' } });
        return;
      }
      ctx.dispatch({ type: 'confirm_clear' });
      ctx.start();
    },
  },
  {
    id: 'cancel',
    keys: ['q'],
    keyLabel: 'q',
    description: 'leave the pre-flight without running anything',
    watchDescription: 'leave',
    label: (s) => (s.readOnly ? 'quit' : 'cancel'),
    group: 'app',
    screens: ['preflight'],
    modes: BOTH,
    footer: ['preflight'],
    disabledReason: (s) => (s.stage === 'starting' ? 'starting…' : null),
    run: (ctx) => ctx.exit(0),
  },
  {
    id: 'down',
    keys: ['down', 'j'],
    keyLabel: '↓/j',
    description: 'next row (scrolls the pre-flight, detail and help)',
    label: moveWord('down', 'scroll'),
    group: 'move',
    screens: ALL_SCREENS,
    modes: BOTH,
    footer: ['preflight', 'detail', 'help'],
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'move', by: 1 }),
  },
  {
    id: 'up',
    keys: ['up', 'k'],
    keyLabel: '↑/k',
    description: 'previous row (scrolls back)',
    label: moveWord('up', 'scroll up'),
    group: 'move',
    screens: ALL_SCREENS,
    modes: BOTH,
    footer: [],
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'move', by: -1 }),
  },
  {
    id: 'page_down',
    keys: ['pagedown'],
    keyLabel: 'PgDn',
    description: 'a page down',
    label: fixed('page down'),
    group: 'move',
    screens: ALL_SCREENS,
    modes: BOTH,
    footer: [],
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'move_page', pages: 1 }),
  },
  {
    id: 'page_up',
    keys: ['pageup'],
    keyLabel: 'PgUp',
    description: 'a page up',
    label: fixed('page up'),
    group: 'move',
    screens: ALL_SCREENS,
    modes: BOTH,
    footer: [],
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'move_page', pages: -1 }),
  },
  {
    id: 'first',
    keys: ['g', 'home'],
    keyLabel: 'g',
    description: 'first row (top)',
    label: moveWord('first row', 'top'),
    group: 'move',
    screens: ALL_SCREENS,
    modes: BOTH,
    footer: [],
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'move_to', where: 'first' }),
  },
  {
    id: 'last',
    keys: ['G', 'end'],
    keyLabel: 'G',
    description: 'last row (bottom)',
    label: moveWord('last row', 'bottom'),
    group: 'move',
    screens: ALL_SCREENS,
    modes: BOTH,
    footer: [],
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'move_to', where: 'last' }),
  },
  {
    id: 'follow',
    keys: ['f'],
    keyLabel: 'f',
    description: 'jump to the running run and follow it (until you move); between runs, follow the next',
    label: (s) => (s.follow ? 'following' : 'follow running'),
    group: 'move',
    screens: ['table'],
    modes: BOTH,
    footer: ['table'],
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'follow_running' }),
  },
  {
    id: 'detail',
    keys: ['enter'],
    keyLabel: 'Enter',
    description: 'detail of the selected config: errors, attempts, log tail',
    label: fixed('detail'),
    group: 'view',
    screens: ['table'],
    modes: BOTH,
    footer: ['table'],
    disabledReason: (s) => (selectFilteredRows(s).length === 0 ? 'no row selected' : null),
    run: (ctx) => ctx.dispatch({ type: 'open_detail' }),
  },
  {
    id: 'back',
    keys: ['escape'],
    keyLabel: 'Esc',
    description: 'back: close the detail or help, clear the filter',
    label: (s) => (s.helpOpen ? 'close' : s.view === 'detail' ? 'back' : 'clear filter'),
    group: 'view',
    screens: ['table', 'detail', 'help'],
    modes: BOTH,
    footer: ['table', 'detail', 'help'],
    disabledReason: (s) => (s.helpOpen || s.view === 'detail' || s.filterText !== '' ? null : 'nothing to go back from'),
    run: (ctx) => ctx.dispatch({ type: 'back' }),
  },
  {
    id: 'filter',
    keys: ['/'],
    keyLabel: '/',
    description: 'filter rows by a status word (failed, running …) or label text',
    label: fixed('filter'),
    group: 'view',
    screens: ['table'],
    modes: BOTH,
    footer: ['table'],
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'filter_start' }),
  },
  {
    id: 'pause',
    keys: ['p'],
    keyLabel: 'p',
    description: 'pause after the current run / resume (never mid-measurement)',
    label: (s) => (s.study?.paused ? 'resume' : 'pause'),
    group: 'study',
    screens: STUDY_SCREENS,
    modes: RUN,
    footer: ['table', 'detail'],
    disabledReason: studyControlReason,
    run: (ctx) => {
      if (ctx.state.study?.paused) ctx.controls?.resume();
      else ctx.controls?.pause();
    },
  },
  {
    id: 'skip',
    keys: ['s'],
    keyLabel: 's',
    description: 'skip the running run (asks first, naming it)',
    label: fixed('skip run'),
    group: 'study',
    screens: STUDY_SCREENS,
    modes: RUN,
    footer: ['table', 'detail'],
    disabledReason: (s) =>
      studyControlReason(s) ?? (selectRunningRun(s) ? null : s.gap ? 'no run is running (c cuts the gap short)' : 'no run is running'),
    run: (ctx) => {
      const running = selectRunningRun(ctx.state);
      if (!running) return;
      const pending = ctx.state.confirm;
      if (pending?.kind === 'skip' && pending.runIndex === running.index) {
        ctx.dispatch({ type: 'confirm_clear' });
        ctx.controls?.skipCurrent(running.index);
        ctx.dispatch({ type: 'notice', text: `skipping ${pending.label}` });
        return;
      }
      ctx.dispatch({
        type: 'confirm_ask',
        confirm: { kind: 'skip', runIndex: running.index, label: `run ${running.run_id} (${labelOfRun(ctx.state, running.index)})`, expiresAtMs: ctx.nowMs + CONFIRM_TIMEOUT_MS },
      });
    },
  },
  {
    id: 'cut_gap',
    keys: ['c'],
    keyLabel: 'c',
    description: 'cut the current gap or cooldown short',
    label: (s) => (s.gap?.kind === 'cooldown' ? 'cut cooldown' : 'cut gap'),
    group: 'study',
    screens: STUDY_SCREENS,
    modes: RUN,
    footer: ['table', 'detail'],
    disabledReason: (s) => studyControlReason(s) ?? (s.gap ? null : 'no gap or cooldown in progress'),
    run: (ctx) => ctx.controls?.skipGap(),
  },
  {
    id: 'retry',
    keys: ['r'],
    keyLabel: 'r',
    description: "retry the selected config's failed, skipped and interrupted runs",
    label: fixed('retry row'),
    group: 'study',
    screens: STUDY_SCREENS,
    modes: RUN,
    footer: ['table', 'detail'],
    disabledReason: (s) =>
      studyControlReason(s) ?? ((selectSelectedRow(s)?.retryable.length ?? 0) > 0 ? null : 'the selected row has no failed, skipped or interrupted run'),
    run: (ctx) => {
      const row = selectSelectedRow(ctx.state);
      if (row && row.retryable.length > 0) {
        ctx.controls?.retry(row.retryable);
        ctx.dispatch({ type: 'notice', text: `retrying ${row.retryable.length} run(s) of ${row.label}` });
      }
    },
  },
  {
    id: 'retry_all',
    keys: ['R'],
    keyLabel: 'R',
    description: 'retry every failed, skipped and interrupted run',
    label: fixed('retry all'),
    group: 'study',
    screens: STUDY_SCREENS,
    modes: RUN,
    footer: [],
    disabledReason: (s) => {
      const reason = studyControlReason(s);
      if (reason) return reason;
      const c = s.study?.counts;
      return c && c.failed + c.skipped + c.interrupted > 0 ? null : 'no failed, skipped or interrupted runs';
    },
    run: (ctx) => {
      const c = ctx.state.study?.counts;
      const n = c ? c.failed + c.skipped + c.interrupted : 0;
      ctx.controls?.retryAll();
      ctx.dispatch({ type: 'notice', text: `retrying ${n} failed, skipped and interrupted run(s)` });
    },
  },
  {
    id: 'quit',
    keys: ['q'],
    keyLabel: 'q',
    description: 'quit after the current run (asks first); once the study is over, leave',
    watchDescription: 'leave (the study goes on)',
    label: (s) => (s.readOnly || s.finished ? 'quit' : s.study?.quit_requested ? 'cancel quit' : 'quit after run'),
    group: 'app',
    screens: STUDY_SCREENS,
    modes: BOTH,
    footer: ['table', 'detail'],
    disabledReason: (s) => (s.aborting ? 'aborting' : null),
    run: (ctx) => {
      const s = ctx.state;
      if (s.readOnly || s.finished) {
        ctx.exit(s.finished ? exitCodeOfStatus(s.finished.status) : 0);
        return;
      }
      if (s.study?.quit_requested) {
        ctx.controls?.quitAfterCurrent(false);
        ctx.dispatch({ type: 'notice', text: 'quit cancelled: the study goes on' });
        return;
      }
      if (s.confirm?.kind !== 'quit') {
        ctx.dispatch({ type: 'confirm_ask', confirm: { kind: 'quit', expiresAtMs: ctx.nowMs + CONFIRM_TIMEOUT_MS } });
        return;
      }
      ctx.dispatch({ type: 'confirm_clear' });
      ctx.controls?.quitAfterCurrent(true);
    },
  },
  {
    id: 'close_help',
    keys: ['q'],
    keyLabel: 'q',
    description: 'close the help',
    label: fixed('close'),
    group: 'app',
    screens: ['help'],
    modes: BOTH,
    footer: [],
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'toggle_help' }),
  },
  {
    id: 'abort',
    keys: ['ctrl+c'],
    keyLabel: 'Ctrl+C',
    description: 'abort now: kill the running run (marked interrupted), exit 130; twice forces; on the pre-flight, cancel',
    watchDescription: 'leave (the study goes on)',
    label: (s) => (s.readOnly ? 'quit' : s.stage !== 'study' ? 'cancel' : 'abort now'),
    group: 'app',
    screens: ALL_SCREENS,
    modes: BOTH,
    footer: [],
    disabledReason: always,
    run: (ctx) => ctx.abort(),
  },
  {
    id: 'help',
    keys: ['?'],
    keyLabel: '?',
    description: 'help: every key of the screen, and what each mark means',
    label: (s) => (s.helpOpen ? 'close help' : 'help'),
    group: 'app',
    screens: ALL_SCREENS,
    modes: BOTH,
    footer: ALL_SCREENS,
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'toggle_help' }),
  },
];

export function bindingFor(state: UiState, key: KeyName): KeyBinding | null {
  const screen = screenOf(state);
  const mode = modeOf(state);
  const onScreen = KEYMAP.filter((b) => b.screens.includes(screen) && b.keys.includes(key));
  // a key of the other mode still answers (with the reason it does nothing here)
  return onScreen.find((b) => b.modes.includes(mode)) ?? onScreen[0] ?? null;
}

export interface KeyOutcome {
  binding: KeyBinding | null;
  /** Why the key did nothing, when it did nothing. */
  disabledReason: string | null;
}

/** A character typed into the filter: printable, never DEL or another control byte. */
export function isPrintable(key: KeyName): boolean {
  if ([...key].length !== 1) return false;
  const code = key.codePointAt(0)!;
  return code >= 0x20 && code !== 0x7f && !(code >= 0x80 && code <= 0x9f);
}

/**
 * The root dispatcher: filter editing and confirmations take priority, then the keymap. Any key
 * other than the confirming one cancels a pending confirmation.
 */
export function handleKey(key: KeyName, ctx: KeyContext): KeyOutcome {
  const state = ctx.state;
  if (state.filterEditing) {
    if (key === 'enter') ctx.dispatch({ type: 'filter_commit' });
    else if (key === 'escape') ctx.dispatch({ type: 'filter_clear' });
    else if (key === 'backspace') ctx.dispatch({ type: 'filter_backspace' });
    else if (key === 'ctrl+c') ctx.abort();
    else if (isPrintable(key)) ctx.dispatch({ type: 'filter_input', text: key });
    return { binding: null, disabledReason: null };
  }
  const binding = bindingFor(state, key);
  if (state.confirm !== null) {
    if (!binding || binding.id !== state.confirm.kind) {
      ctx.dispatch({ type: 'confirm_clear' });
      ctx.dispatch({ type: 'notice', text: 'cancelled' });
      if (key !== 'ctrl+c') return { binding: null, disabledReason: null };
    }
  }
  if (!binding) return { binding: null, disabledReason: null };
  const reason = binding.modes.includes(modeOf(state)) ? binding.disabledReason(state) : readOnlyReason(state);
  if (reason !== null) {
    ctx.dispatch({ type: 'notice', text: `${binding.keyLabel}: ${reason}` });
    return { binding, disabledReason: reason };
  }
  if (state.notice !== null && binding.group !== 'move') ctx.dispatch({ type: 'notice', text: null });
  binding.run(ctx);
  return { binding, disabledReason: null };
}

/** The question the footer asks while a confirmation is pending. */
export function confirmPrompt(state: UiState): string | null {
  const c = state.confirm;
  if (!c) return null;
  // state.nowMs is the last tick (up to a second old): never count above the timeout itself
  const secondsLeft = (expiresAtMs: number) => Math.max(0, Math.min(CONFIRM_TIMEOUT_MS / 1000, Math.ceil((expiresAtMs - state.nowMs) / 1000)));
  switch (c.kind) {
    case 'start':
      return `${state.plan.order.length} runs is over the confirmation limit (${state.plan.execution.max_runs_without_confirmation}): press Enter again to start, any other key to cancel`;
    case 'skip':
      // the instruction first: on a narrow terminal the end of the line is cut
      return `press s again to skip ${c.label}; any other key cancels (${secondsLeft(c.expiresAtMs)} s)`;
    case 'quit':
      return `quit after the current run? press q again to confirm, any other key to cancel (${secondsLeft(c.expiresAtMs)} s)`;
  }
}

/** Bindings of this screen and mode, each once, in table order. */
export function bindingsOf(state: UiState, screen: Screen = screenOf(state)): KeyBinding[] {
  const mode = modeOf(state);
  return KEYMAP.filter((b) => b.screens.includes(screen) && b.modes.includes(mode));
}

/** Footer hints for the current screen: keys that apply now, as many as fit. */
export function footerHints(state: UiState, columns: number): string {
  const screen = screenOf(state);
  const parts: string[] = [];
  for (const b of bindingsOf(state, screen)) {
    if (!b.footer.includes(screen)) continue;
    if (b.disabledReason(state) !== null) continue;
    if (b.id === 'follow' && state.follow) continue;
    parts.push(`${b.keyLabel} ${b.label(state)}`);
  }
  // `? help` is where every other key is explained: it keeps its place at the end
  const help = parts.find((p) => p.startsWith('? '));
  const rest = parts.filter((p) => p !== help);
  let line = '';
  for (const part of rest) {
    const next = line === '' ? part : `${line}  ${part}`;
    if (next.length + (help ? help.length + 2 : 0) > columns) break;
    line = next;
  }
  if (help && line.length + help.length + 2 <= columns) line = line === '' ? help : `${line}  ${help}`;
  return line;
}

/** The way out that really works now, for the too-small screen (no other key is shown there). */
export function tooSmallHints(state: UiState): string {
  const parts: string[] = [];
  for (const b of bindingsOf(state)) {
    if (b.group !== 'app' || b.id === 'help' || b.disabledReason(state) !== null) continue;
    parts.push(`${b.keyLabel} ${b.label(state)}`);
  }
  return parts.join(' · ');
}

export interface HelpEntry {
  keys: string;
  label: string;
  description: string;
  group: KeyBinding['group'];
  disabledReason: string | null;
}

/** Every binding of the screen under the help (or pre-flight) in this mode, grouped. */
export function helpEntries(state: UiState): HelpEntry[] {
  const under: UiState = { ...state, helpOpen: false };
  const watching = modeOf(under) === 'watch';
  return bindingsOf(under).map((b) => ({
    keys: b.keyLabel,
    label: b.label(under),
    description: (watching ? b.watchDescription : undefined) ?? b.description,
    group: b.group,
    disabledReason: b.disabledReason(under),
  }));
}

/** Keys of the run mode that watch mode does not have (named once in the watch help). */
export function runOnlyKeys(state: UiState): string[] {
  const screen = screenOf({ ...state, helpOpen: false });
  const seen = new Set<string>();
  for (const b of KEYMAP) if (b.screens.includes(screen) && !b.modes.includes('watch')) seen.add(b.keyLabel);
  return [...seen];
}

/** The key of binding `id` when it works now (for hints inside screens), else null. */
export function usableKey(state: UiState, id: string): string | null {
  const b = KEYMAP.find((x) => x.id === id);
  if (!b || !b.modes.includes(modeOf(state)) || b.disabledReason(state) !== null) return null;
  return b.keyLabel;
}
