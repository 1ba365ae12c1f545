import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RunnerControls } from '../../src/runner/events.ts';
import type { Key } from 'ink';
import { keyNamesOf } from '../../src/ui/components/app.tsx';
import { footerHints, handleKey, helpEntries, isPrintable, KEYMAP, runOnlyKeys, screenOf, tooSmallHints, type KeyContext } from '../../src/ui/keymap.ts';
import { reducer } from '../../src/ui/reducer.ts';
import { initialState, type UiAction, type UiState } from '../../src/ui/state.ts';
import { at, makePlan, makeSnapshot, ScriptedHandle, withStatus } from './fixtures.ts';

const plan = makePlan({ configs: 4, cycles: 2, confirmLimit: 5 });

function preflight(extra: Partial<UiState> = {}): UiState {
  return { ...initialState({ plan, columns: 100, rows: 30, nowMs: Date.parse(at) }), ...extra };
}

function study(events: UiAction[] = [], extra: Partial<UiState> = {}): UiState {
  const s = reducer(preflight(), { type: 'snapshot', snapshot: makeSnapshot(plan) });
  return { ...events.reduce(reducer, s), ...extra };
}

const snap = makeSnapshot(plan);
const running0: UiAction = { type: 'runner', event: { type: 'run_status', at, run: withStatus(snap.runs[0], 'running') } };
const failed0: UiAction = { type: 'runner', event: { type: 'run_status', at, run: withStatus(withStatus(snap.runs[0], 'running'), 'failed') } };
const gap: UiAction = { type: 'runner', event: { type: 'gap', at, kind: 'config', seconds_left: 5, total_seconds: 10, temp_c: null } };
const paused: UiAction = { type: 'runner', event: { type: 'paused', at, paused: true } };
const quitRequested: UiAction = { type: 'runner', event: { type: 'quit_requested', at, requested: true } };

interface Outcome {
  calls: string[];
  actions: string[];
  started: number;
  exited: number[];
  aborted: number;
  reason: string | null;
  state: UiState;
}

function press(state: UiState, keys: string[]): Outcome {
  const handle = new ScriptedHandle(snap);
  const out: Outcome = { calls: [], actions: [], started: 0, exited: [], aborted: 0, reason: null, state };
  for (const key of keys) {
    const ctx: KeyContext = {
      state: out.state,
      nowMs: out.state.nowMs,
      dispatch: (a) => {
        out.actions.push(a.type);
        out.state = reducer(out.state, a);
      },
      controls: out.state.stage === 'study' ? (handle as RunnerControls) : null,
      start: () => out.started++,
      exit: (code) => out.exited.push(code),
      abort: () => out.aborted++,
    };
    out.reason = handleKey(key, ctx).disabledReason;
  }
  out.calls = handle.calls.map((c) => (c.args.length ? `${c.method}(${JSON.stringify(c.args)})` : c.method));
  return out;
}

describe('keymap: what each key does in each state', () => {
  const cases: Array<{ name: string; state: () => UiState; keys: string[]; expect: Partial<Pick<Outcome, 'calls' | 'started' | 'exited' | 'aborted' | 'reason'>>; check?: (o: Outcome) => void }> = [
    { name: 'pre-flight Enter starts', state: () => preflight(), keys: ['enter'], expect: { started: 1 } },
    { name: 'pre-flight Enter over the limit asks first', state: () => preflight({ needsConfirmation: true }), keys: ['enter'], expect: { started: 0 }, check: (o) => assert.equal(o.state.confirm?.kind, 'start') },
    { name: 'pre-flight Enter twice over the limit starts', state: () => preflight({ needsConfirmation: true }), keys: ['enter', 'enter'], expect: { started: 1 } },
    { name: 'pre-flight Enter, other key cancels the question', state: () => preflight({ needsConfirmation: true }), keys: ['enter', 'x', 'enter'], expect: { started: 0 }, check: (o) => assert.equal(o.state.confirm?.kind, 'start') },
    { name: 'pre-flight q cancels with 0', state: () => preflight(), keys: ['q'], expect: { exited: [0] } },
    { name: 'pre-flight Ctrl+C aborts', state: () => preflight(), keys: ['ctrl+c'], expect: { aborted: 1 } },
    { name: 'pre-flight p means nothing', state: () => preflight(), keys: ['p'], expect: { calls: [], reason: null } },
    { name: 'watch: Enter is refused, read-only', state: () => preflight({ readOnly: true }), keys: ['enter'], expect: { started: 0, reason: 'read-only: waiting for the study to start' } },
    { name: 'p pauses', state: () => study([running0]), keys: ['p'], expect: { calls: ['pause'] } },
    { name: 'p resumes when paused', state: () => study([paused]), keys: ['p'], expect: { calls: ['resume'] } },
    { name: 's asks, s again skips', state: () => study([running0]), keys: ['s', 's'], expect: { calls: ['skipCurrent([0])'] } },
    { name: 's then another key cancels the skip', state: () => study([running0]), keys: ['s', 'j', 's'], expect: { calls: [] }, check: (o) => assert.equal(o.state.confirm?.kind, 'skip') },
    { name: 's with no running run says why', state: () => study([]), keys: ['s'], expect: { calls: [], reason: 'no run is running' } },
    { name: 's during a gap points at c', state: () => study([gap]), keys: ['s'], expect: { reason: 'no run is running (c cuts the gap short)' } },
    { name: 'c cuts a gap short', state: () => study([gap]), keys: ['c'], expect: { calls: ['skipGap'] } },
    { name: 'c without a gap says why', state: () => study([running0]), keys: ['c'], expect: { calls: [], reason: 'no gap or cooldown in progress' } },
    { name: 'r retries the failed runs of the selected row', state: () => study([failed0]), keys: ['r'], expect: { calls: ['retry([[0]])'] } },
    { name: 'r on a row without failures says why', state: () => study([failed0]), keys: ['j', 'r'], expect: { calls: [], reason: 'the selected row has no failed, skipped, interrupted or invalid run' } },
    { name: 'R retries all', state: () => study([failed0]), keys: ['R'], expect: { calls: ['retryAll'] } },
    { name: 'R with nothing failed says why', state: () => study([running0]), keys: ['R'], expect: { calls: [], reason: 'no failed, skipped, interrupted or invalid runs' } },
    { name: 'q asks, q again requests the quit', state: () => study([running0]), keys: ['q', 'q'], expect: { calls: ['quitAfterCurrent([true])'] } },
    { name: 'q while a quit is requested cancels it', state: () => study([running0, quitRequested]), keys: ['q'], expect: { calls: ['quitAfterCurrent([false])'] } },
    { name: 'Ctrl+C aborts, even during a question', state: () => study([running0]), keys: ['s', 'ctrl+c'], expect: { aborted: 1, calls: [] } },
    { name: 'watch: q leaves at once', state: () => study([running0], { readOnly: true }), keys: ['q'], expect: { exited: [0], calls: [] } },
    { name: 'watch: p is refused, read-only', state: () => study([running0], { readOnly: true }), keys: ['p'], expect: { calls: [], reason: 'read-only: another process runs this study' } },
    { name: 'after the study finished, p says so', state: () => study([{ type: 'runner', event: { type: 'study_finished', at, status: 'completed', counts: snap.counts } }]), keys: ['p'], expect: { reason: 'the study is over' } },
    { name: 'Enter opens the detail, Esc goes back', state: () => study(), keys: ['enter', 'escape'], expect: {}, check: (o) => assert.deepEqual(o.actions, ['open_detail', 'back']) },
    { name: 'j/k and arrows move', state: () => study(), keys: ['j', 'down', 'down', 'k'], expect: {}, check: (o) => assert.equal(o.state.selected, 2) },
    { name: '/ types a filter until Enter', state: () => study(), keys: ['/', 'b', 's', '=', '2', 'enter', 'q'], expect: {}, check: (o) => {
      assert.equal(o.state.filterText, 'bs=2');
      assert.equal(o.state.filterEditing, false);
      assert.equal(o.state.confirm?.kind, 'quit'); // q after Enter is a key again, not filter text
    } },
    { name: '? opens help, q closes it (and does not quit)', state: () => study(), keys: ['?', 'q'], expect: { exited: [], calls: [] }, check: (o) => assert.deepEqual([o.state.helpOpen, o.state.confirm], [false, null]) },
    { name: '? opens help, Esc closes it', state: () => study(), keys: ['?', 'escape'], expect: {}, check: (o) => assert.equal(o.state.helpOpen, false) },
    { name: '? opens help, ? closes it', state: () => study(), keys: ['?', '?'], expect: {}, check: (o) => assert.equal(o.state.helpOpen, false) },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const o = press(c.state(), c.keys);
      for (const [k, v] of Object.entries(c.expect)) assert.deepEqual(o[k as keyof Outcome], v, k);
      c.check?.(o);
    });
  }
});

describe('keymap table', () => {
  test('no key is bound twice on one screen', () => {
    for (const screen of ['preflight', 'table', 'detail', 'help'] as const) {
      const seen = new Map<string, string>();
      for (const b of KEYMAP.filter((x) => x.screens.includes(screen))) {
        for (const k of b.keys) {
          assert.ok(!seen.has(k), `${screen}: ${k} bound to ${seen.get(k)} and ${b.id}`);
          seen.set(k, b.id);
        }
      }
    }
  });

  test('the footer lists only keys that apply now, and fits the width', () => {
    const running = study([running0]);
    const hints = footerHints(running, 200);
    assert.match(hints, /p pause/);
    assert.match(hints, /s skip run/);
    assert.doesNotMatch(hints, /c cut gap/);
    assert.match(footerHints(study([gap]), 200), /c cut gap/);
    assert.match(footerHints(study([paused]), 200), /p resume/);
    assert.ok(footerHints(running, 40).length <= 40);
    assert.match(footerHints(preflight(), 80), /Enter start/);
  });

  test('help lists every binding of the screen below, with the reason a key is off', () => {
    const s = study([gap], { helpOpen: true });
    assert.equal(screenOf(s), 'help');
    const entries = helpEntries(s);
    const skip = entries.find((e) => e.label === 'skip run');
    assert.equal(skip?.disabledReason, 'no run is running (c cuts the gap short)');
    assert.equal(entries.find((e) => e.label === 'cut gap')?.disabledReason, null);
    assert.equal(entries.length, KEYMAP.filter((b) => b.screens.includes('table')).length);
  });
});

describe('keys in one read, and what each mode offers', () => {
  const inkKey = (over: Partial<Key> = {}): Key =>
    ({ upArrow: false, downArrow: false, leftArrow: false, rightArrow: false, pageDown: false, pageUp: false, home: false, end: false, return: false, escape: false, ctrl: false, shift: false, tab: false, backspace: false, delete: false, meta: false, super: false, hyper: false, capsLock: false, numLock: false, ...over }) as Key;
  const table: Array<[string, string[]]> = [
    ['\u007f\u007f', ['backspace', 'backspace']],
    ['ab\u007f', ['a', 'b', 'backspace']],
    ['\b\b', ['backspace', 'backspace']],
    ['x\r', ['x', 'enter']],
    ['a\u0001b\u0085', ['a', 'b']],
    ['é', ['é']],
  ];
  for (const [input, names] of table) {
    test(`one read of ${JSON.stringify(input)} is ${names.join(', ')}`, () => assert.deepEqual(keyNamesOf(input, inkKey()), names));
  }
  test('DEL and other control bytes never reach the filter text', () => {
    const o = press(study(), ['/', 'b', 's', '\u007f', '\u0085', 'backspace']);
    assert.equal(o.state.filterText, 'b');
    assert.equal(isPrintable('\u007f'), false);
    assert.equal(isPrintable('x'), true);
  });
  test('watch: help and footer have no key of the run mode; q and Ctrl+C are labelled as leaving', () => {
    const s = study([running0], { readOnly: true });
    const keys = helpEntries(s).map((e) => e.keys);
    for (const k of ['p', 's', 'c', 'r', 'R']) assert.ok(!keys.includes(k), `${k} in the watch help`);
    assert.equal(helpEntries(s).find((e) => e.keys === 'q')?.label, 'quit');
    assert.equal(helpEntries(s).find((e) => e.keys === 'Ctrl+C')?.label, 'quit');
    assert.doesNotMatch(footerHints(s, 200), /quit after run|pause|skip/);
    assert.deepEqual(runOnlyKeys(s), ['p', 's', 'c', 'r', 'R']);
  });
  test('the too-small screen names the ways out that work now', () => {
    assert.equal(tooSmallHints(study([running0])), 'q quit after run · Ctrl+C abort now');
    assert.equal(tooSmallHints(study([running0], { readOnly: true })), 'q quit · Ctrl+C quit');
    assert.equal(tooSmallHints(preflight()), 'q cancel · Ctrl+C cancel');
  });
  test('R says how many runs it retries', () => {
    const o = press(study([failed0]), ['R']);
    assert.equal(o.state.notice, 'retrying 1 failed, skipped, interrupted and invalid run(s)');
  });
});

describe('r on a row holding an invalid run: measured again', () => {
  // config 1's runs are 1 (cycle 1) and 5 (cycle 2)
  const ended = (index: number, status: 'invalid' | 'failed' | 'completed'): UiAction => ({
    type: 'runner',
    event: { type: 'run_status', at, run: withStatus(withStatus(snap.runs[index]!, 'running'), status) },
  });
  const label = plan.configs[1]!.label;
  const retryLabel = (s: UiState) => helpEntries(s).find((e) => e.keys === 'r')?.label;

  test('only the invalid run: retry gets its index, the key reads re-measure, the notice names it invalid', () => {
    const s = study([ended(1, 'invalid'), ended(5, 'completed')], { selected: 1 });
    assert.equal(retryLabel(s), 're-measure row');
    assert.match(footerHints(s, 200), /r re-measure row/);
    const o = press(s, ['r']);
    assert.deepEqual(o.calls, ['retry([[1]])']);
    assert.equal(o.reason, null);
    assert.equal(o.state.notice, `retrying 1 run(s) of ${label} (1 invalid: measured again as a new attempt)`);
  });

  test('an invalid and a failed run: both retried, the notice counts the invalid one', () => {
    const o = press(study([ended(1, 'invalid'), ended(5, 'failed')], { selected: 1 }), ['r']);
    assert.deepEqual(o.calls, ['retry([[1,5]])']);
    assert.equal(o.state.notice, `retrying 2 run(s) of ${label} (1 invalid: measured again as a new attempt)`);
  });

  test('a row with failed runs only: retry row, and the notice says nothing of invalid runs', () => {
    const s = study([ended(1, 'failed')], { selected: 1 });
    assert.equal(retryLabel(s), 'retry row');
    const o = press(s, ['r']);
    assert.deepEqual(o.calls, ['retry([[1]])']);
    assert.equal(o.state.notice, `retrying 1 run(s) of ${label}`);
  });
});
