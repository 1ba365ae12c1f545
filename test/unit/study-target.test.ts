// execution.n_cycles: auto and execution.target: the grammar, positioned errors, defaults that
// adapt, and what plan.json records.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { planStudy } from '../../src/study/plan.ts';
import { cycleTargetSchema } from '../../src/study/target.ts';
import { CPU_HERE } from './history-helpers.ts';
import { inputError, withStudy } from './study-helpers.ts';

const HEAD = 'backend: llamacpp\nmodel: builtin:tiny-random\nsweep:\n  batch_size: [1, 2]\n';

function planYaml(yaml: string, files: Record<string, string> = {}) {
  return withStudy({ 'study.yaml': yaml, ...files }, (dir) => planStudy(join(dir, 'study.yaml'), { gpuFreeMemoryBytes: null }));
}

describe('n_cycles: auto', () => {
  it('plans min_cycles cycles, at most max_cycles, and records the target in plan.json', async () => {
    const plan = await planYaml(`${HEAD}execution:\n  n_cycles: auto\n`);
    assert.equal(plan.cycles, 3);
    assert.equal(plan.run_count, 6);
    assert.equal(plan.max_run_count, 24);
    const file = plan.toPlanFile();
    assert.equal(file.execution.n_cycles, 3);
    assert.equal(file.order.length, 6);
    const t = cycleTargetSchema.parse(JSON.parse(JSON.stringify(file.execution.target)));
    assert.equal(t.metric, 'energy_per_output_token_j');
    assert.deepEqual(t.ci_half_width, { kind: 'relative', value: 0.05 });
    assert.equal(t.min_cycles, 3);
    assert.equal(t.max_cycles, 12);
    assert.equal(t.decide, null);
    assert.ok(t.notes.some((n) => /metric: energy_per_output_token_j \(default\)/.test(n)));
  });

  it('no longer warns that rounds are not wired (the runner runs them)', async () => {
    const plan = await planYaml(`${HEAD}execution:\n  n_cycles: auto\n`);
    assert.ok(!plan.warnings.some((w) => /not wired|stops there/.test(w)), plan.warnings.join('\n'));
  });

  it('a fixed count keeps target null, as before', async () => {
    const plan = await planYaml(`${HEAD}execution:\n  n_cycles: 4\n`);
    assert.equal(plan.execution.target, null);
    assert.equal(plan.max_run_count, 8);
  });

  it('accepts a fraction, a percentage, an absolute value with a unit (converted to the metric unit), and decide: ranking', async () => {
    const cases: Array<[string, unknown]> = [
      ['0.02', { kind: 'relative', value: 0.02 }],
      ['"2%"', { kind: 'relative', value: 0.02 }],
      ['"0.5 mJ"', { kind: 'absolute', value: 0.0005, unit: 'J', as_written: '0.5 mJ' }],
    ];
    for (const [written, expected] of cases) {
      const plan = await planYaml(`${HEAD}execution:\n  n_cycles: auto\n  target:\n    ci_half_width: ${written}\n    decide: ranking\n`);
      assert.deepEqual(plan.execution.target!.ci_half_width, expected, written);
      assert.equal(plan.execution.target!.decide, 'ranking');
    }
    const ms = await planYaml(`${HEAD}execution:\n  n_cycles: auto\n  target:\n    metric: ttft_p50_ms\n    ci_half_width: "0.5 s"\n`);
    assert.deepEqual(ms.execution.target!.ci_half_width, { kind: 'absolute', value: 500, unit: 'ms', as_written: '0.5 s' });
  });

  it('target: without n_cycles means auto (the default 3 would ignore it), and the plan says so', async () => {
    const plan = await planYaml(`${HEAD}execution:\n  target:\n    ci_half_width: 0.03\n`);
    assert.ok(plan.execution.target);
    assert.ok(plan.execution.target.notes.includes('n_cycles: auto (implied by execution.target)'));
  });

  it('defaults adapt to the values the user set, and say so', async () => {
    const high = await planYaml(`${HEAD}execution:\n  n_cycles: auto\n  target:\n    min_cycles: 15\n`);
    assert.equal(high.execution.target!.max_cycles, 15);
    assert.ok(high.execution.target!.notes.some((n) => /max_cycles: 15 \(the default 12 raised to min_cycles\)/.test(n)));
    assert.equal(high.cycles, 15);
    const low = await planYaml(`${HEAD}execution:\n  n_cycles: auto\n  target:\n    max_cycles: 2\n`);
    assert.equal(low.execution.target!.min_cycles, 2);
    assert.ok(low.execution.target!.notes.some((n) => /min_cycles: 2 \(the default 3 lowered to max_cycles\)/.test(n)));
  });

  it('warns when the machine cannot measure the target metric', async () => {
    const plan = await withStudy({ 'study.yaml': `${HEAD}execution:\n  n_cycles: auto\n` }, (dir) => planStudy(join(dir, 'study.yaml'), { gpuFreeMemoryBytes: null, machine: CPU_HERE }));
    assert.ok(plan.warnings.some((w) => /needs GPU energy.*output_tokens_per_s/.test(w)), plan.warnings.join('\n'));
  });
});

describe('n_cycles / target bad input names file:line:col and the field', () => {
  const table: Array<{ name: string; exec: string; expect: RegExp }> = [
    { name: 'n_cycles neither a count nor auto', exec: '  n_cycles: aut\n', expect: /study\.yaml:6:13: execution\.n_cycles: expected number or "auto", got "aut"/ },
    { name: 'a bare number of 1 or more', exec: '  n_cycles: auto\n  target:\n    ci_half_width: 2\n', expect: /study\.yaml:8:20: execution\.target\.ci_half_width: expected a fraction of the mean below 1.*write its unit, e\.g\. "2 J"/ },
    { name: 'a quoted bare number', exec: '  n_cycles: auto\n  target:\n    ci_half_width: "0.02"\n', expect: /execution\.target\.ci_half_width: .*quoted, so it is text/ },
    { name: 'an unknown unit', exec: '  n_cycles: auto\n  target:\n    ci_half_width: "5 furlongs"\n', expect: /study\.yaml:8:20: execution\.target\.ci_half_width: expected a percentage or a unit \(J, mJ, .*\), got unknown unit "furlongs"/ },
    { name: 'a unit that does not fit the default metric says it is the default', exec: '  n_cycles: auto\n  target:\n    ci_half_width: "5 ms"\n', expect: /study\.yaml:8:20: execution\.target\.ci_half_width: unit "ms" does not fit metric energy_per_output_token_j \(measured in J, the default metric\): expected one of J, mJ/ },
    { name: 'an unknown metric with did-you-mean', exec: '  n_cycles: auto\n  target:\n    metric: energy_per_outut_token_j\n', expect: /study\.yaml:8:13: execution\.target\.metric: expected one of .*got "energy_per_outut_token_j" \(did you mean "energy_per_output_token_j"\?\)/ },
    { name: 'min above max, both set', exec: '  n_cycles: auto\n  target:\n    min_cycles: 8\n    max_cycles: 4\n', expect: /study\.yaml:8:17: execution\.target\.min_cycles: min_cycles 8 exceeds max_cycles 4/ },
    { name: 'min below two', exec: '  n_cycles: auto\n  target:\n    min_cycles: 1\n', expect: /execution\.target\.min_cycles: expected a number >= 2, got 1/ },
    { name: 'a target with a fixed count', exec: '  n_cycles: 5\n  target:\n    ci_half_width: 0.02\n', expect: /study\.yaml:7:3: execution\.target: only used with n_cycles: auto, but execution\.n_cycles is 5/ },
    { name: 'an unknown target field', exec: '  n_cycles: auto\n  target:\n    max_cycle: 5\n', expect: /study\.yaml:8:5: execution\.target\.max_cycle: unknown field "max_cycle" \(did you mean "max_cycles"\?\)/ },
    { name: 'an unknown decide', exec: '  n_cycles: auto\n  target:\n    decide: frontier\n', expect: /execution\.target\.decide: expected one of ranking, got "frontier"/ },
  ];
  for (const row of table) {
    it(row.name, async () => {
      const err = await inputError(planYaml(`${HEAD}execution:\n${row.exec}`));
      assert.match(err.message, row.expect);
    });
  }

  it('a cross-file conflict points into the file that wrote the field', async () => {
    const err = await inputError(
      planYaml(`base: base.yaml\n${HEAD}execution:\n  target:\n    metric: output_tokens_per_s\n`, {
        'base.yaml': 'execution:\n  n_cycles: auto\n  target:\n    ci_half_width: "3 J"\n',
      }),
    );
    assert.match(err.message, /base\.yaml:4:20: execution\.target\.ci_half_width: unit "J" does not fit metric output_tokens_per_s \(measured in tok\/s\): expected one of tok\/s or a percentage/);
  });
});
