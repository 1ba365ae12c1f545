import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { reducer } from '../../src/ui/reducer.ts';
import { rowMatches, selectEtaS, selectFilteredRows, selectHeader, selectLayout, selectPreflight, selectRows, type ConfigRow } from '../../src/ui/selectors.ts';
import { ciCell } from '../../src/ui/components/table.tsx';
import type { ConfigProgress } from '../../src/study-dir/schema.ts';
import { initialState, type UiAction, type UiState } from '../../src/ui/state.ts';
import { at, makePlan, makeSnapshot, withStatus } from './fixtures.ts';

const plan = makePlan({ configs: 3, cycles: 2 });
const snap = makeSnapshot(plan);

function study(actions: UiAction[] = [], nowMs = Date.parse(at)): UiState {
  const s = reducer(initialState({ plan, columns: 100, rows: 30, nowMs }), { type: 'snapshot', snapshot: snap });
  return actions.reduce(reducer, s);
}
const status = (index: number, run = snap.runs[index], st: 'running' | 'completed' | 'failed' = 'completed'): UiAction => ({
  type: 'runner',
  event: { type: 'run_status', at, run: withStatus(run, st) },
});

describe('selectRows', () => {
  test('one row per config with one status per cycle, means over completed cycles', () => {
    // config 0 runs are 0 (cycle 1) and 3 (cycle 2)
    const rows = selectRows(study([status(0), status(3, snap.runs[3], 'failed')]));
    assert.equal(rows.length, 3);
    assert.deepEqual(rows[0].statuses, ['completed', 'failed']);
    assert.deepEqual(rows[0].runIndices, [0, 3]);
    assert.equal(rows[0].energyJ, 123.4);
    assert.deepEqual(rows[0].flags, ['short_window']);
    assert.deepEqual(rows[0].retryable, [3]);
    assert.deepEqual(rows[1].statuses, ['pending', 'pending']);
    assert.equal(rows[1].energyJ, null);
  });

  test('a row whose runs did not change keeps its identity (memoised table rows do not re-render)', () => {
    const before = study([status(0)]);
    const after = reducer(before, status(1));
    const a = selectRows(before);
    const b = selectRows(after);
    assert.equal(a[0], b[0]);
    assert.equal(a[2], b[2]);
    assert.notEqual(a[1], b[1]);
  });
});

describe('filter', () => {
  const row: ConfigRow = {
    configIndex: 1, configHash: 'h000000000000001', label: 'vllm bs=4 tok=32', statuses: ['completed', 'failed'], runIndices: [1, 4],
    energyJ: null, jPerToken: null, tokensPerS: null, durationS: null, flags: [], retryable: [4], ci: null,
  };
  const cases = [
    ['', true], ['vllm', true], ['VLLM', true], ['bs=4', true], ['bs=8', false],
    ['failed', true], ['completed', true], ['skipped', false], ['pending', false], ['h0000', true],
  ] as const;
  for (const [text, matches] of cases) test(`"${text}" ${matches ? 'matches' : 'does not match'}`, () => assert.equal(rowMatches(row, text), matches));

  test('selectFilteredRows applies it', () => {
    const s = { ...study([status(3, snap.runs[3], 'failed')]), filterText: 'failed' };
    assert.deepEqual(selectFilteredRows(s).map((r) => r.configHash), [plan.configs[0].config_hash]);
  });
});

describe('header', () => {
  test('ETA: the pre-flight before the study starts, then the live ETA of src/study/live-eta.ts', () => {
    const startMs = Date.parse(snap.started_at);
    const before = selectHeader(initialState({ plan, columns: 100, rows: 30, nowMs: startMs }));
    assert.equal(before.etaS, plan.estimate.total_seconds);
    // no run finished: each of the 6 runs at its config's pre-flight estimate (10 s)
    const early = selectHeader(study([], startMs + 100_000));
    assert.equal(early.elapsedS, 100);
    assert.equal(early.etaS, 60);
    // 2 runs finished in 10 s each: the 4 left at 10 s (config 2, not seen, at its estimate × 10/10)
    const later = selectHeader(study([status(0), status(1)], startMs + 100_000));
    assert.equal(later.etaS, 40);
  });

  test('ETA: time spent paused (or between two sessions of a resumed study) does not inflate it', () => {
    const startMs = Date.parse(snap.started_at);
    const soon = selectHeader(study([status(0), status(1)], startMs + 20_000));
    const anHourLater = selectHeader(study([status(0), status(1), { type: 'runner', event: { type: 'paused', at, paused: true } }], startMs + 3_600_000));
    assert.equal(soon.etaS, 40);
    // elapsed ÷ finished × remaining would say 7200 s
    assert.equal(anHourLater.etaS, 40);
  });

  const states: Array<[string, UiAction[], string]> = [
    ['running', [status(0, snap.runs[0], 'running')], 'running'],
    ['paused with a run still going', [status(0, snap.runs[0], 'running'), { type: 'runner', event: { type: 'paused', at, paused: true } }], 'pausing after this run'],
    ['paused', [{ type: 'runner', event: { type: 'paused', at, paused: true } }], 'PAUSED'],
    ['quitting', [{ type: 'runner', event: { type: 'quit_requested', at, requested: true } }], 'quitting after this run'],
    ['finished', [{ type: 'runner', event: { type: 'study_finished', at, status: 'completed', counts: snap.counts } }], 'finished: completed'],
  ];
  for (const [name, actions, word] of states) test(`status word: ${name}`, () => assert.equal(selectHeader(study(actions)).statusWord, word));

  test('cycle k/N follows the running run', () => {
    assert.equal(selectHeader(study([status(4, snap.runs[4], 'running')])).cycle, 2);
  });
});

describe('pre-flight model', () => {
  test('counts, backends, skipped, memory counts, estimate of a new study', () => {
    const nowMs = Date.parse('2026-11-28T10:00:00Z');
    const m = selectPreflight(initialState({ plan, columns: 80, rows: 24, nowMs }));
    assert.deepEqual([m.nConfigs, m.nCycles, m.toGo.total, m.toGo.resumed], [3, 2, 6, false]);
    assert.deepEqual(m.byBackend, [{ backend: 'llamacpp', configs: 2 }, { backend: 'vllm', configs: 1 }]);
    assert.equal(m.skipped.length, 1);
    assert.deepEqual(m.fitReasons, [{ fit: 'wont_fit', reasons: [1] }]);
    assert.equal(m.reasons[0], 'needs 90 GiB, 80 GiB free');
    assert.equal(m.memoryCounts.wont_fit, 1);
    assert.equal(m.estimate.totalS, plan.estimate.total_seconds);
  });
});

describe('n_cycles: auto', () => {
  const target = { metric: 'energy_per_output_token_j' as const, ci_half_width: { kind: 'relative' as const, value: 0.05 }, min_cycles: 2, max_cycles: 6, decide: null, notes: [] };
  const autoPlan = { ...plan, execution: { ...plan.execution, target } };
  const autoState = (actions: UiAction[] = []) =>
    actions.reduce(reducer, reducer(initialState({ plan: autoPlan, columns: 120, rows: 30, nowMs: Date.parse(at) }), { type: 'snapshot', snapshot: makeSnapshot(autoPlan) }));
  const progress = (hash: string, over: Partial<ConfigProgress> = {}): ConfigProgress => ({
    config_hash: hash, status: 'continue', reason: null, cycles: 2, n: 2, mean: 0.5, half_width: 0.04, relative_half_width: 0.08, target_half_width: 0.025, detail: '', ...over,
  });
  const [h0, h1] = plan.configs.map((c) => c.config_hash) as [string, string];
  const round: UiAction = {
    type: 'runner',
    event: {
      type: 'stopping', at, round: 1,
      configs: [progress(h0, { status: 'stopped', reason: 'target_met', relative_half_width: 0.012 }), progress(h1)],
      added: [{ index: 6, config_hash: h1, cycle: 3 }],
    },
  };

  test('the CI column: the interval so far as ± % of the mean, then why the config stopped', () => {
    const mid = autoState([{ type: 'runner', event: { type: 'stopping', at, round: null, configs: [progress(h1)], added: [] } }]);
    assert.equal(ciCell(selectRows(mid)[1]!.ci), '±8.0%');
    assert.equal(ciCell(selectRows(mid)[0]!.ci), '–', 'no cycle of it ended yet');
    const after = reducer(mid, round);
    assert.equal(ciCell(selectRows(after)[0]!.ci), '±1.2% met');
    assert.equal(ciCell({ ...progress(h0), status: 'stopped', reason: 'max_cycles', relative_half_width: 0.2 }), '±20% max');
    assert.equal(ciCell({ ...progress(h0), status: 'stopped', reason: 'failed', relative_half_width: null }), 'failed');
    const columnsOf = (s: UiState) => {
      const layout = selectLayout(s);
      return layout.kind === 'full' ? layout.tableColumns.map((c) => c.id) : [];
    };
    assert.ok(columnsOf(after).includes('ci'), 'the column is laid out');
    assert.ok(!columnsOf(study()).includes('ci'), 'a fixed study has none');
  });

  test('a round extends the plan with the runs it appended (once, however often the journal is read)', () => {
    const after = reducer(reducer(autoState(), round), round);
    assert.equal(after.plan.order.length, 7);
    assert.equal(after.plan.execution.n_cycles, 3);
    assert.deepEqual(selectRows(after)[1]!.runIndices, [1, 4, 6]);
    assert.equal(selectHeader(after).maxCycles, 6);
  });

  test('a resumed study shows its recorded stops at once', () => {
    const snapshot = {
      ...makeSnapshot(autoPlan),
      rounds: { decided: 1, stops: [{ ...progress(h0), reason: 'target_met' as const, round: 1, at }].map(({ status: _s, ...s }) => s) },
    };
    const s = reducer(initialState({ plan: autoPlan, columns: 120, rows: 30, nowMs: Date.parse(at) }), { type: 'snapshot', snapshot });
    assert.equal(selectRows(s)[0]!.ci!.reason, 'target_met');
  });

  test('the ETA counts the cycles a config still measuring is expected to add', () => {
    const estimate = { ...autoPlan.estimate, per_config: autoPlan.estimate.per_config.map((c) => ({ ...c, cycles: { expected: 4, low: 2, high: 6 } })) };
    const withExpected = { ...autoPlan, estimate };
    const s = reducer(initialState({ plan: withExpected, columns: 120, rows: 30, nowMs: Date.parse(at) }), { type: 'snapshot', snapshot: makeSnapshot(withExpected) });
    // 6 planned runs + 3 configs × 2 expected cycles more, 10 s each
    assert.equal(selectEtaS(s), 120);
    const stopped = reducer(s, { type: 'runner', event: { type: 'stopping', at, round: 1, configs: [progress(h0, { status: 'stopped', reason: 'target_met' })], added: [] } });
    assert.equal(selectEtaS(stopped), 100);
  });
});
