// The n_cycles: auto stopping rule (src/results/stopping-rule.ts), pure: reasons, the summary's
// own interval, decide: ranking, and a replay with known noise levels.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cyclesForCv, decideRound, type ConfigCycles, type StopReason } from '../../src/results/stopping-rule.ts';
import { describe as describeValues } from '../../src/results/stats.ts';
import { configStatsOptions, DEFAULT_SUMMARY_OPTIONS, summarizeStudy } from '../../src/results/summarize.ts';
import type { CycleTarget } from '../../src/study/target.ts';
import { mulberry32 } from '../../src/prng.ts';
import { makeConfig, makePlan, makeResult, makeSnapshot, type ConfigFixture } from '../results/fixtures.ts';

const SEED = 7;

function target(over: Partial<CycleTarget> = {}): CycleTarget {
  return {
    metric: 'energy_per_output_token_j',
    ci_half_width: { kind: 'relative', value: 0.05 },
    min_cycles: 3,
    max_cycles: 12,
    decide: null,
    notes: [],
    ...over,
  };
}

function cfg(hash: string, values: Array<number | null>, over: Partial<ConfigCycles> = {}): ConfigCycles {
  return { config_hash: hash, values, failed: 0, unfinished: 0, stopped: null, ...over };
}

function one(t: CycleTarget, c: ConfigCycles) {
  return decideRound({ target: t, configs: [c], bootstrapSeed: SEED }).configs[0]!;
}

/** Seeded standard normal (Box–Muller over mulberry32). */
function normals(seed: number): () => number {
  const rand = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

describe('stopping rule: reasons', () => {
  it('a quiet config stops at min_cycles with target_met; a noisy one continues', () => {
    const quiet = one(target(), cfg('q', [1.0, 1.005, 0.998]));
    assert.equal(quiet.status, 'stopped');
    assert.equal(quiet.reason, 'target_met');
    assert.ok(quiet.half_width! <= quiet.target_half_width!);
    const noisy = one(target(), cfg('n', [1.0, 1.3, 0.8]));
    assert.equal(noisy.status, 'continue');
    assert.equal(noisy.reason, null);
    assert.match(noisy.detail, /against/);
  });

  it('never stops below min_cycles, even with identical values', () => {
    const d = one(target(), cfg('x', [2, 2]));
    assert.equal(d.status, 'continue');
    assert.equal(one(target(), cfg('x', [2, 2, 2])).reason, 'target_met');
  });

  it('stops at max_cycles when the interval is still too wide, counting failed cycles in the budget', () => {
    const values = [1, 1.5, 0.7, 1.2, 0.9, 1.4, 0.6, 1.1, 1.3, 0.8, 1.0];
    const d = one(target(), cfg('w', values, { failed: 1 }));
    assert.equal(d.cycles, 12);
    assert.equal(d.reason, 'max_cycles');
    assert.equal(one(target(), cfg('w', values)).status, 'continue', '11 cycles < max 12');
  });

  it('failed: no valid value after min_cycles, or fewer than two at max_cycles', () => {
    const none = one(target(), cfg('f', [], { failed: 3 }));
    assert.equal(none.reason, 'failed');
    assert.match(none.detail, /3 failed or invalid/);
    const noMetric = one(target(), cfg('g', [null, null, null]));
    assert.equal(noMetric.reason, 'failed');
    assert.match(noMetric.detail, /3 without the metric/);
    assert.equal(one(target(), cfg('h', [], { failed: 2 })).status, 'continue', 'below min_cycles: not yet');
    const oneValue = one(target({ max_cycles: 4 }), cfg('i', [1], { failed: 3 }));
    assert.equal(oneValue.reason, 'failed');
  });

  it('waits while cycles of the round are unfinished, and keeps a recorded stop', () => {
    assert.equal(one(target(), cfg('w', [1, 1.4, 0.7], { unfinished: 1 })).status, 'waiting');
    const kept = one(target(), cfg('k', [1, 1.4, 0.7], { stopped: 'decided' }));
    assert.equal(kept.status, 'stopped');
    assert.equal(kept.reason, 'decided');
  });

  it('an absolute half-width is in the metric unit, whatever the mean', () => {
    const abs = target({ ci_half_width: { kind: 'absolute', value: 0.01, unit: 'J', as_written: '10 mJ' } });
    assert.equal(one(abs, cfg('a', [10.0, 10.002, 9.998])).reason, 'target_met');
    assert.equal(one(abs, cfg('b', [10.0, 10.2, 9.8])).status, 'continue', '±5 % of 10 J is 0.5 J > 10 mJ');
  });

  it('next_round lists exactly the configs that continue; done when all stopped', () => {
    const r = decideRound({ target: target(), bootstrapSeed: SEED, configs: [cfg('q', [1, 1, 1]), cfg('n', [1, 1.5, 0.6]), cfg('f', [], { failed: 3 })] });
    assert.deepEqual(r.next_round, ['n']);
    assert.equal(r.done, false);
    assert.deepEqual(r.configs.map((c) => c.reason), ['target_met', null, 'failed']);
    const all = decideRound({ target: target(), bootstrapSeed: SEED, configs: [cfg('q', [1, 1, 1])] });
    assert.equal(all.done, true);
    assert.deepEqual(all.next_round, []);
  });
});

describe('stopping rule: the summary interval', () => {
  it('uses the intervals summary.json publishes for the same runs (both must be within the target)', () => {
    const configs: ConfigFixture[] = [
      { hash: 'aaaa000000000001', label: 'a', config: makeConfig({ batch_size: 1 }) },
      { hash: 'bbbb000000000002', label: 'b', config: makeConfig({ batch_size: 2 }) },
    ];
    const plan = makePlan(configs, 5);
    const gen = normals(3);
    const results = plan.order.map((o) =>
      makeResult(configs.find((c) => c.hash === o.config_hash)!, o.index, o.cycle, { energy_per_output_token_j: (o.config_hash.startsWith('a') ? 0.5 : 0.8) * (1 + 0.04 * gen()) }),
    );
    const summary = summarizeStudy({ plan, snapshot: makeSnapshot(plan, new Map()), results, now: '2026-01-01T00:00:00Z' });
    const decisions = decideRound({
      target: target({ ci_half_width: { kind: 'relative', value: 0.01 } }),
      bootstrapSeed: plan.cycle_seed,
      configs: configs.map((c) => cfg(c.hash, results.filter((r) => r.config_hash === c.hash).sort((x, y) => x.cycle - y.cycle).map((r) => r.metrics.energy_per_output_token_j))),
    });
    for (const d of decisions.configs) {
      const m = summary.configs.find((c) => c.config_hash === d.config_hash)!.metrics.energy_per_output_token_j!;
      const t = m.ci95_t!;
      const b = m.ci95_bootstrap!;
      assert.equal(d.mean, m.mean);
      assert.deepEqual(d.interval, [Math.min(t[0], b[0]), Math.max(t[1], b[1])]);
      assert.equal(d.half_width, Math.max((t[1] - t[0]) / 2, (b[1] - b[0]) / 2));
    }
  });
});

describe('stopping rule: decide: ranking', () => {
  it('stops configs whose interval is clear of their neighbours as decided; overlapping ones continue', () => {
    const t = target({ ci_half_width: { kind: 'relative', value: 0.001 }, decide: 'ranking' });
    const r = decideRound({
      target: t,
      bootstrapSeed: SEED,
      configs: [cfg('low', [1.0, 1.02, 0.98]), cfg('midA', [2.0, 2.1, 1.9]), cfg('midB', [2.05, 2.15, 1.95]), cfg('high', [5.0, 5.1, 4.9])],
    });
    const by = Object.fromEntries(r.configs.map((c) => [c.config_hash, c]));
    assert.equal(by.low!.reason, 'decided');
    assert.equal(by.high!.reason, 'decided');
    assert.equal(by.midA!.status, 'continue');
    assert.equal(by.midB!.status, 'continue');
    assert.deepEqual(r.next_round.sort(), ['midA', 'midB']);
  });

  it('without decide, the same configs all continue (the target is tight)', () => {
    const r = decideRound({ target: target({ ci_half_width: { kind: 'relative', value: 0.001 } }), bootstrapSeed: SEED, configs: [cfg('low', [1.0, 1.02, 0.98]), cfg('high', [5.0, 5.1, 4.9])] });
    assert.deepEqual(r.next_round, ['low', 'high']);
  });
});

describe('stopping rule: replay with known noise levels', () => {
  // 20 configs per replay around known true means, CVs 0.5–2 %, target ±2 %, min 3, max 12.
  const CVS = [0.005, 0.01, 0.015, 0.02];
  const K = 20;
  const REPLAYS = 100;
  const t = target({ ci_half_width: { kind: 'relative', value: 0.02 } });
  const truths = (rand: () => number) => Array.from({ length: K }, (_, k) => ({ hash: `c${String(k).padStart(2, '0')}`, mean: 0.5 + rand(), cv: CVS[k % CVS.length]! }));

  it('≥ 95 % reach the target, the published interval covers the true mean, in fewer cycles than a fixed n_cycles', () => {
    let met = 0;
    let configs = 0;
    let coveredT = 0;
    let coveredBootstrap = 0;
    let adaptiveCycles = 0;
    const reasons = new Map<StopReason, number>();
    for (let r = 0; r < REPLAYS; r++) {
      const rand = mulberry32(1000 + r);
      const gen = normals(2000 + r);
      const truth = truths(rand);
      const values = truth.map((c) => Array.from({ length: t.min_cycles }, () => c.mean * (1 + c.cv * gen())));
      const stopped = new Map<string, StopReason>();
      for (let round = 0; ; round++) {
        assert.ok(round <= t.max_cycles, 'the rule ends within max_cycles rounds');
        const d = decideRound({ target: t, bootstrapSeed: SEED, configs: truth.map((c, k) => cfg(c.hash, values[k]!, { stopped: stopped.get(c.hash) ?? null })) });
        for (const c of d.configs) if (c.reason) stopped.set(c.config_hash, c.reason);
        if (d.done) break;
        for (const h of d.next_round) {
          const k = truth.findIndex((c) => c.hash === h);
          values[k]!.push(truth[k]!.mean * (1 + truth[k]!.cv * gen()));
        }
      }
      truth.forEach((c, k) => {
        configs++;
        adaptiveCycles += values[k]!.length;
        const reason = stopped.get(c.hash)!;
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        if (reason === 'target_met') met++;
        const s = describeValues(values[k]!, configStatsOptions(DEFAULT_SUMMARY_OPTIONS, SEED, c.hash));
        if (s.ci_t![0] <= c.mean && c.mean <= s.ci_t![1]) coveredT++;
        if (s.ci_bootstrap![0] <= c.mean && c.mean <= s.ci_bootstrap![1]) coveredBootstrap++;
      });
    }

    // The smallest fixed n_cycles that gives ≥ 95 % of the same kind of configs the same half-width.
    let fixedN = 0;
    for (let n = t.min_cycles; n <= t.max_cycles && !fixedN; n++) {
      let ok = 0;
      let total = 0;
      for (let r = 0; r < REPLAYS; r++) {
        const rand = mulberry32(5000 + r);
        const gen = normals(6000 + r);
        for (const c of truths(rand)) {
          const s = describeValues(Array.from({ length: n }, () => c.mean * (1 + c.cv * gen())), configStatsOptions(DEFAULT_SUMMARY_OPTIONS, SEED, c.hash));
          const hw = Math.max((s.ci_t![1] - s.ci_t![0]) / 2, (s.ci_bootstrap![1] - s.ci_bootstrap![0]) / 2);
          total++;
          if (hw <= t.ci_half_width.value * Math.abs(s.mean!)) ok++;
        }
      }
      if (ok / total >= 0.95) fixedN = n;
    }
    const report = {
      configs,
      target_met: met / configs,
      coverage_t: coveredT / configs,
      coverage_bootstrap: coveredBootstrap / configs,
      adaptive_cycles_per_replay: adaptiveCycles / REPLAYS,
      fixed_n_cycles: fixedN,
      fixed_cycles_per_replay: fixedN * K,
      reasons: Object.fromEntries(reasons),
    };
    console.log(`replay: ${JSON.stringify(report)}`);
    assert.ok(report.target_met >= 0.95, `target met by ${report.target_met}`);
    // Nominal 95 %; stopping on the interval itself costs a little (optional stopping), and 2000
    // configs carry ±0.5 % of Monte Carlo error. The t interval is the one that decides.
    assert.ok(report.coverage_t >= 0.92, `t-interval coverage ${report.coverage_t}`);
    assert.ok(fixedN > 0, 'some fixed n reaches the target for 95 % of configs');
    assert.ok(adaptiveCycles / REPLAYS < fixedN * K, `adaptive ${adaptiveCycles / REPLAYS} < fixed ${fixedN * K}`);
  });

  it('cyclesForCv: more noise needs more cycles, within [min, max]', () => {
    assert.equal(cyclesForCv(0.001, 0.02, 3, 12), 3);
    const a = cyclesForCv(0.01, 0.02, 3, 12);
    const b = cyclesForCv(0.02, 0.02, 3, 12);
    assert.ok(a < b, `${a} < ${b}`);
    assert.equal(cyclesForCv(0.5, 0.02, 3, 12), 12);
  });
});
