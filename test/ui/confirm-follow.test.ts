// The reducer's rules for the skip question (one run, dies with it, expires), stale notices,
// follow mode, scrolling screens and the clock after the end, as tables over plain actions.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { handleKey, type KeyContext } from '../../src/ui/keymap.ts';
import { reducer } from '../../src/ui/reducer.ts';
import { scrollContent, scrollViewport } from '../../src/ui/scroll.ts';
import { selectHeader, selectWatchExitInMs } from '../../src/ui/selectors.ts';
import { CONFIRM_TIMEOUT_MS, initialState, WATCH_EXIT_HOLD_MS, type UiAction, type UiState } from '../../src/ui/state.ts';
import { at, makePlan, makeSnapshot, ScriptedHandle, withStatus } from './fixtures.ts';

const plan = makePlan({ configs: 30, cycles: 1 });
const snap = makeSnapshot(plan);
const t0 = Date.parse(at);

function study(actions: UiAction[] = [], extra: Partial<UiState> = {}): UiState {
  const s = reducer({ ...initialState({ plan, columns: 100, rows: 30, nowMs: t0 }), ...extra }, { type: 'snapshot', snapshot: snap });
  return actions.reduce(reducer, s);
}
const running = (i: number): UiAction => ({ type: 'runner', event: { type: 'run_status', at, run: withStatus(snap.runs[i], 'running') } });
const completed = (i: number): UiAction => ({ type: 'runner', event: { type: 'run_status', at, run: withStatus(withStatus(snap.runs[i], 'running'), 'completed') } });

function press(state: UiState, keys: string[], nowMs = state.nowMs): { state: UiState; calls: string[] } {
  const handle = new ScriptedHandle(snap);
  let s = state;
  for (const key of keys) {
    const ctx: KeyContext = { state: s, nowMs, dispatch: (a) => (s = reducer(s, a)), controls: handle, start() {}, exit() {}, abort() {} };
    handleKey(key, ctx);
  }
  return { state: s, calls: handle.calls.map((c) => `${c.method}(${c.args.join(',')})`) };
}

describe('the skip question belongs to one run', () => {
  test('it names the run by label and run id', () => {
    const { state } = press(study([running(0)]), ['s']);
    assert.equal(state.confirm?.kind, 'skip');
    assert.match(state.confirm?.kind === 'skip' ? state.confirm.label : '', /^run 0000-h0+-c1 \(llamacpp bs=1 tok=32 c1\)$/);
  });
  test('when that run ends the question goes, saying so; a new run is not skipped by one more s', () => {
    let { state } = press(study([running(0)]), ['s']);
    state = reducer(state, completed(0));
    assert.equal(state.confirm, null);
    assert.match(state.notice ?? '', /ended \(completed\) before the skip was confirmed/);
    state = reducer(state, running(1));
    const second = press(state, ['s']);
    assert.deepEqual(second.calls, [], 'one s on the next run only asks');
    assert.equal(second.state.confirm?.kind === 'skip' && second.state.confirm.runIndex, 1);
    assert.deepEqual(press(second.state, ['s']).calls, ['skipCurrent(1)'], 'the second s skips the run it named');
  });
  test(`it expires after ${CONFIRM_TIMEOUT_MS / 1000} s`, () => {
    let { state } = press(study([running(0)]), ['s']);
    state = reducer(state, { type: 'tick', nowMs: t0 + CONFIRM_TIMEOUT_MS - 1 });
    assert.equal(state.confirm?.kind, 'skip');
    state = reducer(state, { type: 'tick', nowMs: t0 + CONFIRM_TIMEOUT_MS + 1 });
    assert.equal(state.confirm, null);
    assert.match(state.notice ?? '', /not confirmed in time; cancelled/);
    assert.deepEqual(press(state, ['s']).calls, [], 'an s after expiry asks again');
  });
  test('the quit question expires too', () => {
    let { state } = press(study([running(0)]), ['q']);
    assert.equal(state.confirm?.kind, 'quit');
    state = reducer(state, { type: 'tick', nowMs: t0 + CONFIRM_TIMEOUT_MS + 1 });
    assert.equal(state.confirm, null);
  });
});

test('a notice about the last run is cleared when the next run starts', () => {
  const { state } = press(study(), ['s']);
  assert.equal(state.notice, 's: no run is running');
  assert.equal(reducer(state, running(0)).notice, null);
});

describe('follow mode', () => {
  test('the selection follows the running run, scrolling to it', () => {
    const s = study([running(25)]);
    assert.deepEqual([s.selected, s.follow], [25, true]);
    assert.ok(s.offset <= 25 && s.offset + 14 > 25);
  });
  test('moving stops following; f jumps back and follows again', () => {
    let s = study([running(3)]);
    s = reducer(s, { type: 'move', by: -1 });
    assert.deepEqual([s.selected, s.follow], [2, false]);
    s = reducer(s, completed(3));
    s = reducer(s, running(4));
    assert.equal(s.selected, 2, 'stays where the user put it');
    s = press(s, ['f']).state;
    assert.deepEqual([s.selected, s.follow], [4, true]);
    s = reducer(s, running(5));
    assert.equal(s.selected, 5);
  });
});

describe('scrolling screens clamp to their content', () => {
  for (const target of ['help', 'detail'] as const) {
    test(target, () => {
      let s = study([running(0)], { rows: 14, columns: 60 });
      s = reducer(s, target === 'help' ? { type: 'toggle_help' } : { type: 'open_detail' });
      s = reducer(s, { type: 'move_to', where: 'last' });
      const field = target === 'help' ? s.helpScroll : s.detailScroll;
      const expected = Math.max(0, scrollContent(s, target).length - scrollViewport(s, target));
      assert.equal(field, expected);
      if (target === 'help') assert.ok(expected > 0, 'the help is longer than 14 rows');
      s = reducer(s, { type: 'move', by: -1 });
      assert.equal(target === 'help' ? s.helpScroll : s.detailScroll, Math.max(0, expected - 1));
    });
  }
  test('pre-flight', () => {
    let s = initialState({ plan, columns: 80, rows: 24, nowMs: t0 });
    s = reducer(s, { type: 'move_page', pages: 1 });
    assert.ok(s.preflightScroll > 0);
    s = reducer(s, { type: 'move_to', where: 'last' });
    assert.equal(s.preflightScroll, scrollContent(s, 'preflight').length - scrollViewport(s, 'preflight'));
  });
});

describe('the end of a study', () => {
  const startedMs = Date.parse(snap.started_at);
  const finished: UiAction = { type: 'runner', event: { type: 'study_finished', at: new Date(startedMs + 60_000).toISOString(), status: 'completed', counts: snap.counts } };
  test('the clock stops: elapsed is the time to the end, however long the screen stays', () => {
    const s = reducer(study([finished]), { type: 'tick', nowMs: t0 + 3_600_000 });
    assert.equal(selectHeader(s).elapsedS, 60);
  });
  test('watch: leaves after the hold, counted from the last key; stays in the detail', () => {
    let s = study([finished], { readOnly: true });
    const end = startedMs + 60_000;
    s = reducer(s, { type: 'tick', nowMs: end + 1000 });
    assert.equal(selectWatchExitInMs(s), WATCH_EXIT_HOLD_MS - 1000);
    s = reducer(s, { type: 'input', nowMs: end + 4000 });
    s = reducer(s, { type: 'tick', nowMs: end + WATCH_EXIT_HOLD_MS + 100 });
    assert.ok((selectWatchExitInMs(s) ?? 0) > 0, 'a key resets the hold');
    s = reducer(s, { type: 'tick', nowMs: end + 4000 + WATCH_EXIT_HOLD_MS });
    assert.equal(selectWatchExitInMs(s), 0);
    assert.equal(selectWatchExitInMs(reducer(s, { type: 'open_detail' })), null);
    assert.equal(selectWatchExitInMs({ ...s, readOnly: false }), null, 'llem run leaves when run() resolves, not by this');
  });
});
