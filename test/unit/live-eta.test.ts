// The live ETA (src/study/live-eta.ts) on synthetic studies: after 10 % of the runs its predicted
// remaining time is within 20 % of the actual (MAPE), it ignores paused time, and it falls back
// to the pre-flight estimate before anything finished.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { liveEta, type EtaRun } from '../../src/study/live-eta.ts';
import { runPosition } from '../../src/study/order.ts';
import type { CycleOrder } from '../../src/study/types.ts';
import { mulberry32 } from '../../src/prng.ts';

interface Synthetic {
  runs: Array<{ config_hash: string; cycle: number; wall: number }>;
  estimate: { per_config: Array<{ config_hash: string; run_seconds: number }> };
  execution: { config_gap_seconds: number; cycle_gap_seconds: number; cycle_order: CycleOrder; cooldown: null };
}

/** A study of `configs` × `cycles` runs with seeded true durations, run-to-run noise, and a
 * pre-flight estimate off by `bias` overall and by a per-config factor in [1/spread, spread]. */
function synthetic(seed: number, configs: number, cycles: number, order: CycleOrder, bias: number, spread: number): Synthetic {
  const rand = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const truth = Array.from({ length: configs }, (_, i) => ({ hash: `c${i}`, mean: 5 + 55 * rand() }));
  const estimate = truth.map((t) => ({ config_hash: t.hash, run_seconds: t.mean * bias * Math.pow(spread, 2 * rand() - 1) }));
  const runs = Array.from({ length: configs * cycles }, (_, k) => {
    const p = runPosition(k, configs, cycles, order, seed);
    const t = truth[p.configIndex]!;
    return { config_hash: t.hash, cycle: p.cycle, wall: Math.max(0.5, t.mean * (1 + 0.1 * normal())) };
  });
  return { runs, estimate: { per_config: estimate }, execution: { config_gap_seconds: 2, cycle_gap_seconds: 10, cycle_order: order, cooldown: null } };
}

function gapBefore(s: Synthetic, k: number): number {
  if (k === 0) return 0;
  return s.execution.cycle_order !== 'sequential' && s.runs[k]!.cycle !== s.runs[k - 1]!.cycle ? s.execution.cycle_gap_seconds : s.execution.config_gap_seconds;
}

/** The state after `done` runs finished: done runs carry their wall, the rest are pending. */
function stateAfter(s: Synthetic, done: number): EtaRun[] {
  return s.runs.map((r, k) => ({ config_hash: r.config_hash, cycle: r.cycle, status: k < done ? 'completed' : 'pending', wall_seconds: k < done ? r.wall : null, ended_at_ms: k < done ? k : null }));
}

/** Actual remaining seconds after `done` runs: the rest's walls and the gaps before them. */
function actualRemaining(s: Synthetic, done: number): number {
  let sum = 0;
  for (let k = done; k < s.runs.length; k++) sum += s.runs[k]!.wall + gapBefore(s, k);
  return sum;
}

/** Mean absolute percentage error of the predicted remaining time from 10 % to 90 % of the runs. */
function mape(s: Synthetic, predict: (done: number) => number): number {
  const n = s.runs.length;
  const errors: number[] = [];
  for (let done = Math.ceil(n * 0.1); done <= Math.floor(n * 0.9); done++) {
    const actual = actualRemaining(s, done);
    errors.push(Math.abs(predict(done) - actual) / actual);
  }
  return errors.reduce((a, b) => a + b, 0) / errors.length;
}

describe('live ETA', () => {
  it('shuffled study, pre-flight 3× off and ±2× per config: MAPE after 10 % of runs within 20 %', () => {
    const results: number[] = [];
    for (let seed = 1; seed <= 10; seed++) {
      const s = synthetic(seed, 10, 10, 'shuffled', 3, 2);
      results.push(mape(s, (done) => liveEta({ runs: stateAfter(s, done), estimate: s.estimate, execution: s.execution }).remaining_seconds));
    }
    const worst = Math.max(...results);
    console.log(`live ETA MAPE (shuffled, 10 seeds): worst ${(worst * 100).toFixed(1)} %, mean ${((results.reduce((a, b) => a + b, 0) / results.length) * 100).toFixed(1)} %`);
    assert.ok(worst < 0.2, `worst MAPE ${worst}`);
  });

  it('sequential study (unseen configs until late), pre-flight 3× off overall: calibrated, MAPE within 20 %', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const s = synthetic(seed, 10, 10, 'sequential', 3, 1.15);
      const m = mape(s, (done) => liveEta({ runs: stateAfter(s, done), estimate: s.estimate, execution: s.execution }).remaining_seconds);
      assert.ok(m < 0.2, `seed ${seed}: MAPE ${m}`);
    }
  });

  it('paused time never enters it; elapsed ÷ finished × remaining balloons with a pause', () => {
    const s = synthetic(3, 8, 5, 'shuffled', 1, 1);
    const done = 12;
    const runs = stateAfter(s, done);
    const eta = liveEta({ runs, estimate: s.estimate, execution: s.execution }).remaining_seconds;
    // the same runs, finished with an hour's pause between them (ended_at moves, walls do not)
    const paused = runs.map((r, k) => ({ ...r, ended_at_ms: k < done ? k + (k >= 6 ? 3_600_000 : 0) : null }));
    assert.equal(liveEta({ runs: paused, estimate: s.estimate, execution: s.execution }).remaining_seconds, eta);
    const actual = actualRemaining(s, done);
    const elapsed = s.runs.slice(0, done).reduce((a, r) => a + r.wall, 0) + 3600;
    const naive = (elapsed / done) * (s.runs.length - done);
    assert.ok(Math.abs(eta - actual) / actual < 0.2, `eta ${eta} vs actual ${actual}`);
    assert.ok(naive > actual * 2, `the old formula balloons: ${naive} vs ${actual}`);
  });

  it('before any run finished it is the pre-flight estimate; a running run counts what is left of it', () => {
    const s = synthetic(5, 4, 2, 'interleaved', 1, 1);
    const fresh = liveEta({ runs: stateAfter(s, 0), estimate: s.estimate, execution: s.execution });
    assert.equal(fresh.source, 'estimate');
    const sumEstimates = s.runs.reduce((a, r) => a + s.estimate.per_config.find((c) => c.config_hash === r.config_hash)!.run_seconds, 0);
    const gaps = s.runs.reduce((a, _, k) => a + gapBefore(s, k), 0);
    assert.ok(Math.abs(fresh.remaining_seconds - (sumEstimates + gaps)) < 1e-6);
    const runs = stateAfter(s, 4);
    const first = runs[4]!;
    runs[4] = { ...first, status: 'running', wall_seconds: 1 };
    const mid = liveEta({ runs, estimate: s.estimate, execution: s.execution });
    assert.equal(mid.source, 'study');
    // the same state with run 4 still pending: its gap is behind it now, and 1 s of it is done
    const idle = liveEta({ runs: stateAfter(s, 4), estimate: s.estimate, execution: s.execution });
    assert.ok(Math.abs(idle.remaining_seconds - mid.remaining_seconds - 1 - gapBefore(s, 4)) < 1e-6, `${idle.remaining_seconds} vs ${mid.remaining_seconds}`);
    // past its prediction a running run is nearly done, not done
    runs[4] = { ...first, status: 'running', wall_seconds: 1e6 };
    const over = liveEta({ runs, estimate: s.estimate, execution: s.execution }).remaining_seconds;
    runs[4] = { ...first, status: 'skipped', wall_seconds: null };
    assert.ok(over > liveEta({ runs, estimate: s.estimate, execution: s.execution }).remaining_seconds);
  });
});
