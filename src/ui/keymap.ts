// One table of key bindings. It drives dispatch (the root input handler), the footer and the
// help overlay, so a key can never do something the help does not say. A binding that cannot
// apply names the reason, which the footer shows when the key is pressed.
import type { RunnerControls } from '../runner/events.ts';
import { labelOfRun, selectRunningRun, selectSelectedRow, selectFilteredRows } from './selectors.ts';
import type { UiAction, UiState } from './state.ts';

export type Screen = 'preflight' | 'table' | 'detail' | 'help';

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
  /** How the keys are written in the footer and help. */
  keyLabel: string;
  label: string;
  group: 'move' | 'view' | 'study' | 'app';
  screens: Screen[];
  /** Shown in the footer's short list. */
  footer: boolean;
  disabledReason(state: UiState): string | null;
  run(ctx: KeyContext): void;
}

export function screenOf(state: UiState): Screen {
  if (state.helpOpen) return 'help';
  if (state.stage !== 'study') return 'preflight';
  return state.view === 'detail' ? 'detail' : 'table';
}

const READ_ONLY = 'read-only: another process runs this study';

function studyControlReason(state: UiState): string | null {
  if (state.readOnly) return READ_ONLY;
  if (!state.study) return 'the study has not started';
  if (state.finished) return 'the study is over';
  if (state.aborting) return 'aborting';
  return null;
}

const always = () => null;
const STUDY_SCREENS: Screen[] = ['table', 'detail'];

export const KEYMAP: KeyBinding[] = [
  {
    id: 'start',
    keys: ['enter'],
    keyLabel: 'Enter',
    label: 'start',
    group: 'study',
    screens: ['preflight'],
    footer: true,
    disabledReason: (s) =>
      s.readOnly ? 'read-only: waiting for the study to start' : s.stage === 'starting' ? 'starting…' : s.plan.order.length === 0 ? 'nothing to run' : null,
    run: (ctx) => {
      if (ctx.state.needsConfirmation && ctx.state.confirm !== 'start') {
        ctx.dispatch({ type: 'confirm_ask', what: 'start' });
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
    label: 'cancel',
    group: 'app',
    screens: ['preflight'],
    footer: true,
    disabledReason: (s) => (s.stage === 'starting' ? 'starting…' : null),
    run: (ctx) => ctx.exit(0),
  },
  {
    id: 'down',
    keys: ['down', 'j'],
    keyLabel: '↓/j',
    label: 'down',
    group: 'move',
    screens: STUDY_SCREENS,
    footer: false,
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'move', by: 1 }),
  },
  {
    id: 'up',
    keys: ['up', 'k'],
    keyLabel: '↑/k',
    label: 'up',
    group: 'move',
    screens: STUDY_SCREENS,
    footer: false,
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'move', by: -1 }),
  },
  {
    id: 'page_down',
    keys: ['pagedown'],
    keyLabel: 'PgDn',
    label: 'page down',
    group: 'move',
    screens: ['table'],
    footer: false,
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'move_page', pages: 1 }),
  },
  {
    id: 'page_up',
    keys: ['pageup'],
    keyLabel: 'PgUp',
    label: 'page up',
    group: 'move',
    screens: ['table'],
    footer: false,
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'move_page', pages: -1 }),
  },
  {
    id: 'first',
    keys: ['g', 'home'],
    keyLabel: 'g',
    label: 'first row',
    group: 'move',
    screens: ['table'],
    footer: false,
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'move_to', where: 'first' }),
  },
  {
    id: 'last',
    keys: ['G', 'end'],
    keyLabel: 'G',
    label: 'last row',
    group: 'move',
    screens: ['table'],
    footer: false,
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'move_to', where: 'last' }),
  },
  {
    id: 'detail',
    keys: ['enter'],
    keyLabel: 'Enter',
    label: 'detail',
    group: 'view',
    screens: ['table'],
    footer: true,
    disabledReason: (s) => (selectFilteredRows(s).length === 0 ? 'no row selected' : null),
    run: (ctx) => ctx.dispatch({ type: 'open_detail' }),
  },
  {
    id: 'back',
    keys: ['escape'],
    keyLabel: 'Esc',
    label: 'back',
    group: 'view',
    screens: ['table', 'detail', 'help'],
    footer: true,
    disabledReason: (s) =>
      s.helpOpen || s.view === 'detail' || s.filterText !== '' ? null : 'nothing to go back from',
    run: (ctx) => ctx.dispatch({ type: 'back' }),
  },
  {
    id: 'filter',
    keys: ['/'],
    keyLabel: '/',
    label: 'filter',
    group: 'view',
    screens: ['table'],
    footer: true,
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'filter_start' }),
  },
  {
    id: 'pause',
    keys: ['p'],
    keyLabel: 'p',
    label: 'pause/resume',
    group: 'study',
    screens: STUDY_SCREENS,
    footer: true,
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
    label: 'skip run',
    group: 'study',
    screens: STUDY_SCREENS,
    footer: true,
    disabledReason: (s) =>
      studyControlReason(s) ?? (selectRunningRun(s) ? null : s.gap ? 'no run is running (c cuts the gap short)' : 'no run is running'),
    run: (ctx) => {
      if (ctx.state.confirm !== 'skip') {
        ctx.dispatch({ type: 'confirm_ask', what: 'skip' });
        return;
      }
      ctx.dispatch({ type: 'confirm_clear' });
      ctx.controls?.skipCurrent();
    },
  },
  {
    id: 'cut_gap',
    keys: ['c'],
    keyLabel: 'c',
    label: 'cut gap',
    group: 'study',
    screens: STUDY_SCREENS,
    footer: true,
    disabledReason: (s) => studyControlReason(s) ?? (s.gap ? null : 'no gap or cooldown in progress'),
    run: (ctx) => ctx.controls?.skipGap(),
  },
  {
    id: 'retry',
    keys: ['r'],
    keyLabel: 'r',
    // an invalid run is measured again as a new attempt, its invalid result kept
    label: 'retry/re-measure',
    group: 'study',
    screens: STUDY_SCREENS,
    footer: true,
    disabledReason: (s) =>
      studyControlReason(s) ??
      ((selectSelectedRow(s)?.retryable.length ?? 0) > 0 ? null : 'the selected row has no failed, skipped, interrupted or invalid run'),
    run: (ctx) => {
      const row = selectSelectedRow(ctx.state);
      if (row && row.retryable.length > 0) {
        ctx.controls?.retry(row.retryable);
        const invalid = row.retryable.filter((i) => ctx.state.study?.runs[i]?.status === 'invalid').length;
        ctx.dispatch({ type: 'notice', text: `retrying ${row.retryable.length} run(s) of ${row.label}${invalid ? ` (${invalid} invalid: measured again as a new attempt)` : ''}` });
      }
    },
  },
  {
    id: 'retry_all',
    keys: ['R'],
    keyLabel: 'R',
    label: 'retry all (+invalid)',
    group: 'study',
    screens: STUDY_SCREENS,
    footer: false,
    disabledReason: (s) => {
      const reason = studyControlReason(s);
      if (reason) return reason;
      const c = s.study?.counts;
      return c && c.failed + c.skipped + c.interrupted + c.invalid > 0 ? null : 'no failed, skipped, interrupted or invalid runs';
    },
    run: (ctx) => {
      ctx.controls?.retryAllFailed();
      ctx.dispatch({ type: 'notice', text: 'retrying every failed, skipped, interrupted and invalid run' });
    },
  },
  {
    id: 'quit',
    keys: ['q'],
    keyLabel: 'q',
    label: 'quit after run',
    group: 'app',
    screens: STUDY_SCREENS,
    footer: true,
    disabledReason: (s) => (s.aborting ? 'aborting' : null),
    run: (ctx) => {
      const s = ctx.state;
      if (s.readOnly || s.finished) {
        ctx.exit(0);
        return;
      }
      if (s.study?.quit_requested) {
        ctx.controls?.quitAfterCurrent(false);
        ctx.dispatch({ type: 'notice', text: 'quit cancelled: the study goes on' });
        return;
      }
      if (s.confirm !== 'quit') {
        ctx.dispatch({ type: 'confirm_ask', what: 'quit' });
        return;
      }
      ctx.dispatch({ type: 'confirm_clear' });
      ctx.controls?.quitAfterCurrent(true);
    },
  },
  {
    id: 'abort',
    keys: ['ctrl+c'],
    keyLabel: 'Ctrl+C',
    label: 'abort now',
    group: 'app',
    screens: ['preflight', 'table', 'detail', 'help'],
    footer: false,
    disabledReason: always,
    run: (ctx) => ctx.abort(),
  },
  {
    id: 'help',
    keys: ['?'],
    keyLabel: '?',
    label: 'help',
    group: 'app',
    screens: ['preflight', 'table', 'detail', 'help'],
    footer: true,
    disabledReason: always,
    run: (ctx) => ctx.dispatch({ type: 'toggle_help' }),
  },
];

export function bindingFor(state: UiState, key: KeyName): KeyBinding | null {
  const screen = screenOf(state);
  return KEYMAP.find((b) => b.screens.includes(screen) && b.keys.includes(key)) ?? null;
}

export interface KeyOutcome {
  binding: KeyBinding | null;
  /** Why the key did nothing, when it did nothing. */
  disabledReason: string | null;
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
    else if (key.length === 1 && key >= ' ') ctx.dispatch({ type: 'filter_input', text: key });
    return { binding: null, disabledReason: null };
  }
  const binding = bindingFor(state, key);
  if (state.confirm !== null) {
    const confirming = confirmBindingId(state.confirm);
    if (!binding || binding.id !== confirming) {
      ctx.dispatch({ type: 'confirm_clear' });
      ctx.dispatch({ type: 'notice', text: 'cancelled' });
      if (key !== 'ctrl+c') return { binding: null, disabledReason: null };
    }
  }
  if (!binding) return { binding: null, disabledReason: null };
  const reason = binding.disabledReason(state);
  if (reason !== null) {
    ctx.dispatch({ type: 'notice', text: `${binding.keyLabel}: ${reason}` });
    return { binding, disabledReason: reason };
  }
  if (state.notice !== null && binding.group !== 'move') ctx.dispatch({ type: 'notice', text: null });
  binding.run(ctx);
  return { binding, disabledReason: null };
}

function confirmBindingId(kind: NonNullable<UiState['confirm']>): string {
  return kind === 'retry_all' ? 'retry_all' : kind;
}

/** The question the footer asks while a confirmation is pending. */
export function confirmPrompt(state: UiState): string | null {
  switch (state.confirm) {
    case 'start':
      return `${state.plan.order.length} runs is over the confirmation limit (${state.plan.execution.max_runs_without_confirmation}): press Enter again to start, any other key to cancel`;
    case 'skip': {
      const running = selectRunningRun(state);
      return `skip ${running ? labelOfRun(state, running.index) : 'the current run'}? press s again to skip, any other key to cancel`;
    }
    case 'quit':
      return 'quit after the current run? press q again to confirm, any other key to cancel';
    case 'retry_all':
      return 'retry every failed run? press R again';
    case null:
      return null;
  }
}

/** Footer hints for the current screen: enabled bindings first, as many as fit. */
export function footerHints(state: UiState, columns: number): string {
  const screen = screenOf(state);
  const parts: string[] = [];
  for (const b of KEYMAP) {
    if (!b.footer || !b.screens.includes(screen)) continue;
    if (b.disabledReason(state) !== null) continue;
    let label = b.label;
    if (b.id === 'pause' && state.study?.paused) label = 'resume';
    if (b.id === 'quit' && (state.readOnly || state.finished)) label = 'quit';
    if (b.id === 'quit' && state.study?.quit_requested) label = 'cancel quit';
    parts.push(`${b.keyLabel} ${label}`);
  }
  let line = '';
  for (const part of parts) {
    const next = line === '' ? part : `${line}  ${part}`;
    if (next.length > columns) break;
    line = next;
  }
  return line;
}

export interface HelpEntry {
  keys: string;
  label: string;
  group: KeyBinding['group'];
  disabledReason: string | null;
}

/** Every binding of the screen under the help overlay (or pre-flight), grouped. */
export function helpEntries(state: UiState): HelpEntry[] {
  const under: UiState = { ...state, helpOpen: false };
  const screen = screenOf(under);
  const seen = new Set<string>();
  const out: HelpEntry[] = [];
  for (const b of KEYMAP) {
    if (!b.screens.includes(screen) || seen.has(b.id)) continue;
    seen.add(b.id);
    out.push({ keys: b.keyLabel, label: b.label, group: b.group, disabledReason: b.disabledReason(under) });
  }
  return out;
}
