import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { reducer } from '../../src/ui/reducer.ts';
import { initialState, LOG_CAPACITY, POWER_CAPACITY, type UiAction, type UiState } from '../../src/ui/state.ts';
import { at, makePlan, makeSnapshot, withStatus } from './fixtures.ts';

function studyState(configs = 5, cycles = 2, size: [number, number] = [100, 30]): UiState {
  const plan = makePlan({ configs, cycles });
  const s = initialState({ plan, columns: size[0], rows: size[1], nowMs: Date.parse(at) });
  return reducer(s, { type: 'snapshot', snapshot: makeSnapshot(plan) });
}

function apply(state: UiState, actions: UiAction[]): UiState {
  return actions.reduce(reducer, state);
}

describe('reducer: runner events', () => {
  const base = studyState();
  const run0 = base.study!.runs[0];
  const cases: Array<{ name: string; actions: UiAction[]; check: (s: UiState) => void }> = [
    {
      name: 'study_started sets the snapshot and the study stage',
      actions: [],
      check: (s) => {
        const fresh = initialState({ plan: s.plan, columns: 80, rows: 24, nowMs: 0 });
        const next = reducer(fresh, { type: 'runner', event: { type: 'study_started', at, snapshot: s.study! } });
        assert.equal(next.stage, 'study');
        assert.equal(next.study, s.study);
      },
    },
    {
      name: 'run_status running replaces the run, moves counts and opens the live panel',
      actions: [{ type: 'runner', event: { type: 'run_status', at, run: withStatus(run0, 'running') } }],
      check: (s) => {
        assert.equal(s.study!.runs[0].status, 'running');
        assert.equal(s.study!.counts.running, 1);
        assert.equal(s.study!.counts.pending, 9);
        assert.equal(s.live?.index, 0);
      },
    },
    {
      name: 'run_status completed closes the live panel and counts it',
      actions: [
        { type: 'runner', event: { type: 'run_status', at, run: withStatus(run0, 'running') } },
        { type: 'runner', event: { type: 'run_status', at, run: withStatus(withStatus(run0, 'running'), 'completed') } },
      ],
      check: (s) => {
        assert.equal(s.live, null);
        assert.deepEqual([s.study!.counts.completed, s.study!.counts.running, s.study!.counts.pending], [1, 0, 9]);
      },
    },
    {
      name: 'phase then progress fill the live panel',
      actions: [
        { type: 'runner', event: { type: 'phase', at, index: 3, phase: 'warmup' } },
        { type: 'runner', event: { type: 'progress', at, index: 3, phase: 'warmup', done: 4, total: 10, warmup_cv: 0.08 } },
      ],
      check: (s) => assert.deepEqual([s.live?.index, s.live?.phase, s.live?.done, s.live?.total, s.live?.warmupCv], [3, 'warmup', 4, 10, 0.08]),
    },
    {
      name: 'power samples append to a capped buffer and keep the last temperature',
      actions: Array.from({ length: 30 }, (_, k) => ({
        type: 'runner' as const,
        event: {
          type: 'power' as const,
          at,
          index: 0,
          samples: Array.from({ length: 5 }, (_, j) => ({ t_ms: k * 5 + j, power_w: 100 + k, temp_c: j === 4 ? 60 + k : null })),
          energy_so_far_j: k * 10,
        },
      })),
      check: (s) => {
        assert.equal(s.live!.powerW.length, POWER_CAPACITY);
        assert.equal(s.live!.powerW[POWER_CAPACITY - 1], 129);
        assert.equal(s.live!.tempC, 89);
        assert.equal(s.live!.energySoFarJ, 290);
      },
    },
    {
      name: 'log lines are capped and stripped of escape sequences',
      actions: Array.from({ length: LOG_CAPACITY + 5 }, (_, k) => ({ type: 'runner' as const, event: { type: 'log' as const, at, index: 0, line: `\u001b[31mline ${k}\u001b[0m\u0007` } })),
      check: (s) => {
        assert.equal(s.log.length, LOG_CAPACITY);
        assert.equal(s.log[s.log.length - 1], `line ${LOG_CAPACITY + 4}`);
      },
    },
    {
      name: 'a log message of several lines is several log lines',
      actions: [{ type: 'runner', event: { type: 'log', at, index: 0, line: '[warn] energy unavailable; tried:\n  /usr/lib/libnvidia-ml.so.1\r\n  /opt/x.so\n' } }],
      check: (s) => assert.deepEqual(s.log.slice(-3), ['[warn] energy unavailable; tried:', '  /usr/lib/libnvidia-ml.so.1', '  /opt/x.so']),
    },
    {
      name: 'gap and gap_end',
      actions: [{ type: 'runner', event: { type: 'gap', at, kind: 'cooldown', seconds_left: 20, total_seconds: 60, temp_c: 71 } }],
      check: (s) => {
        assert.deepEqual(s.gap, { kind: 'cooldown', secondsLeft: 20, totalSeconds: 60, tempC: 71, sinceMs: s.nowMs });
        assert.equal(reducer(s, { type: 'runner', event: { type: 'gap_end', at, kind: 'cooldown', cut_short: true } }).gap, null);
      },
    },
    {
      name: 'paused and quit_requested flags',
      actions: [
        { type: 'runner', event: { type: 'paused', at, paused: true } },
        { type: 'runner', event: { type: 'quit_requested', at, requested: true } },
      ],
      check: (s) => assert.deepEqual([s.study!.paused, s.study!.status, s.study!.quit_requested], [true, 'paused', true]),
    },
    {
      name: 'warnings go to the warning list and the log',
      actions: [{ type: 'runner', event: { type: 'warning', at, message: 'GPU throttled' } }],
      check: (s) => {
        assert.deepEqual(s.warnings, ['GPU throttled']);
        assert.match(s.log.at(-1)!, /GPU throttled/);
      },
    },
    {
      name: 'study_finished records status and counts',
      actions: [
        { type: 'runner', event: { type: 'study_finished', at, status: 'interrupted', counts: { pending: 9, running: 0, completed: 0, failed: 0, skipped: 0, interrupted: 1 } } },
      ],
      check: (s) => {
        assert.equal(s.finished?.status, 'interrupted');
        assert.equal(s.study!.counts.interrupted, 1);
      },
    },
  ];
  for (const c of cases) test(c.name, () => c.check(apply(base, c.actions)));

  test('events before any snapshot do not crash and keep the state', () => {
    const fresh = initialState({ plan: base.plan, columns: 80, rows: 24, nowMs: 0 });
    assert.equal(reducer(fresh, { type: 'runner', event: { type: 'run_status', at, run: run0 } }), fresh);
  });
});

describe('reducer: navigation', () => {
  // 100×30 → 50 configs, table of 14 rows (see layout tests)
  const base = studyState(50, 1);
  const cases: Array<{ name: string; actions: UiAction[]; selected: number; offset: number }> = [
    { name: 'down moves one row', actions: [{ type: 'move', by: 1 }], selected: 1, offset: 0 },
    { name: 'up at the top stays', actions: [{ type: 'move', by: -1 }], selected: 0, offset: 0 },
    { name: 'G goes to the last row and scrolls', actions: [{ type: 'move_to', where: 'last' }], selected: 49, offset: 36 },
    { name: 'g after G goes back to the top', actions: [{ type: 'move_to', where: 'last' }, { type: 'move_to', where: 'first' }], selected: 0, offset: 0 },
    { name: 'page down moves a page less one row', actions: [{ type: 'move_page', pages: 1 }], selected: 13, offset: 0 },
    { name: 'two pages down scrolls the window', actions: [{ type: 'move_page', pages: 2 }], selected: 26, offset: 13 },
    { name: 'moving past the end clamps', actions: [{ type: 'move', by: 1000 }], selected: 49, offset: 36 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const s = apply(base, c.actions);
      assert.deepEqual([s.selected, s.offset], [c.selected, c.offset]);
    });
  }

  test('a smaller terminal keeps the selected row visible', () => {
    const s = apply(base, [{ type: 'move', by: 20 }, { type: 'resize', columns: 80, rows: 24 }]);
    const table = 9; // 80×24 table rows
    assert.ok(s.selected >= s.offset && s.selected < s.offset + table, `selected ${s.selected} offset ${s.offset}`);
  });

  test('filter by text, then by status, then clear', () => {
    let s = apply(base, [{ type: 'filter_start' }, ...[...'bs=1'].map((ch) => ({ type: 'filter_input' as const, text: ch }))]);
    assert.equal(s.filterEditing, true);
    assert.equal(s.filterText, 'bs=1');
    assert.equal(s.selected, 0);
    s = reducer(s, { type: 'filter_commit' });
    assert.equal(s.filterEditing, false);
    s = apply(s, [{ type: 'filter_clear' }, { type: 'filter_start' }, ...[...'failed'].map((ch) => ({ type: 'filter_input' as const, text: ch }))]);
    assert.equal(s.filterText, 'failed');
    s = apply(s, [{ type: 'filter_backspace' }]);
    assert.equal(s.filterText, 'faile');
    s = reducer(s, { type: 'back' });
    assert.equal(s.filterText, '');
  });

  test('detail, help and back', () => {
    let s = apply(base, [{ type: 'open_detail' }]);
    assert.equal(s.view, 'detail');
    s = apply(s, [{ type: 'toggle_help' }]);
    assert.equal(s.helpOpen, true);
    s = apply(s, [{ type: 'back' }]);
    assert.deepEqual([s.helpOpen, s.view], [false, 'detail']);
    s = apply(s, [{ type: 'back' }]);
    assert.equal(s.view, 'table');
  });

  test('actions that change nothing return the same state object (no publish, no render)', () => {
    assert.equal(reducer(base, { type: 'resize', columns: base.columns, rows: base.rows }), base);
    assert.equal(reducer(base, { type: 'tick', nowMs: base.nowMs }), base);
    assert.equal(reducer(base, { type: 'confirm_clear' }), base);
    assert.equal(reducer(base, { type: 'move', by: -1 }), base);
  });
});
