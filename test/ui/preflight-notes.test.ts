// issue 14: the pre-flight of an `n_cycles: auto` study gives the runs it expects as a range and
// states what that rests on (the estimate's notes: history used or why not, the pilot assumption),
// on the full screen and in the plain lines, as `llem plan` does. The notes are the real planner's
// (src/study/estimate.ts estimatePlan over a fixture plan), not text written here.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { estimatePlan } from '../../src/study/estimate.ts';
import type { ExecutionConfig, PlanFile } from '../../src/study/types.ts';
import { truncate } from '../../src/ui/format.ts';
import { runTui } from '../../src/ui/index.ts';
import { preflightLines, preflightModel, runsToGo } from '../../src/ui/preflight.ts';
import { preflightBody, preflightTop } from '../../src/ui/preflight-view.ts';
import { makePlan, makeSnapshot, ScriptedHandle } from './fixtures.ts';
import { asStdin, asStdout, FakeStdin, FakeStdout, showFrameOnTimeout, waitFor } from './harness.ts';

const NOW_MS = Date.parse('2026-11-28T10:00:00');

/** A plan whose estimate (runs expected, notes) is what the planner writes for its execution. */
function plannedWith(configs: number, execution: (base: ExecutionConfig) => ExecutionConfig): PlanFile {
  const fixture = makePlan({ configs, cycles: 3 });
  // llamacpp throughout: the shared fixture's vllm configs have no params for the estimate to read
  const base = { ...fixture, configs: fixture.configs.map((c) => ({ ...c, label: c.label.replace('vllm', 'llamacpp'), config: { ...c.config, backend: 'llamacpp' } })) };
  const exec = execution(base.execution);
  const estimate = estimatePlan(
    { config_count: base.configs.length, cycles: exec.n_cycles, execution: exec, configAt: (i) => base.configs[i]! },
    undefined,
    { now: new Date(NOW_MS), gpuFreeMemoryBytes: null, gpuFreeMemoryReason: 'NVML not loadable', modelBytes: () => 8 * 2 ** 20, machine: null },
  );
  return { ...base, execution: exec, estimate };
}

const autoPlan = (configs: number) =>
  plannedWith(configs, (e) => ({
    ...e,
    target: { metric: 'output_tokens_per_s', ci_half_width: { kind: 'relative', value: 0.03 }, min_cycles: 3, max_cycles: 12, decide: null, notes: [] },
  }));
const fixedPlan = () => plannedWith(3, (e) => e);

/** The full screen's summary as the pre-flight screen draws it at `columns` (cut with an ellipsis). */
function topAt(plan: PlanFile, columns: number): string[] {
  return preflightTop(preflightModel(plan, runsToGo(plan, null)), NOW_MS).map((l) => truncate(l.text, columns));
}
const plainOf = (plan: PlanFile) => preflightLines(preflightModel(plan, runsToGo(plan, null)), NOW_MS);

describe('pre-flight of n_cycles: auto: runs expected and what the estimate assumed', () => {
  const plan = autoPlan(3);
  const runs = plan.estimate.runs!;
  const notes = plan.estimate.notes!;

  test('the planner gives a range of runs and a pilot note (what the screens below must show)', () => {
    assert.ok(runs.low < runs.expected && runs.expected < runs.high, JSON.stringify(runs));
    assert.deepEqual([runs.low, runs.high], [9, 36]);
    assert.ok(notes.some((n) => n.includes('pilot assumption of a 3 % per-cycle CV')), notes.join('\n'));
  });

  test('full screen at 80 columns: ~N runs expected with its range, and every note on its own line, its point kept', () => {
    const top = topAt(plan, 80);
    const expected = `~${runs.expected} runs expected (${runs.low}–${runs.high})`;
    assert.ok(top.some((l) => l.includes(expected)), `"${expected}" within 80 columns:\n${top.join('\n')}`);
    for (const note of notes) {
      const shown = top.filter((l) => l.startsWith(`· ${note.slice(0, 40)}`));
      assert.equal(shown.length, 1, `note "${note}" once, on its own line:\n${top.join('\n')}`);
    }
    assert.ok(top.some((l) => /pilot assumption of a 3 % per-cycle CV/.test(l)), `the pilot assumption survives the cut at 80 columns:\n${top.join('\n')}`);
    assert.ok(top.every((l) => l.length <= 80));
    const body = preflightBody(preflightModel(plan, runsToGo(plan, null)), 80);
    const bodyText = Array.from({ length: body.length }, (_, i) => body.line(i).text).join('\n');
    assert.doesNotMatch(bodyText, /estimate notes:|pilot assumption/, 'not a second time below the grid');
  });

  test('plain lines: the runs expected and each note whole, one line each', () => {
    const lines = plainOf(plan);
    assert.ok(lines.some((l) => l.includes(`~${runs.expected} runs expected (${runs.low}–${runs.high})`)), lines.join('\n'));
    for (const note of notes) assert.equal(lines.filter((l) => l.trim() === `· ${note}`).length, 1, `note "${note}":\n${lines.join('\n')}`);
  });
});

describe('pre-flight of a fixed n_cycles', () => {
  const plan = fixedPlan();
  const m = preflightModel(plan, runsToGo(plan, null));
  const body = (width: number) => {
    const content = preflightBody(m, width);
    return Array.from({ length: content.length }, (_, i) => content.line(i).text);
  };
  test('no runs expected, no pilot note, on either screen', () => {
    assert.deepEqual(plan.estimate.runs, { expected: 9, low: 9, high: 9 }, 'a fixed study records its planned count as runs');
    for (const text of [topAt(plan, 80).join('\n'), body(80).join('\n'), plainOf(plan).join('\n')]) {
      assert.doesNotMatch(text, /runs expected/);
      assert.doesNotMatch(text, /pilot/);
      assert.doesNotMatch(text, /n_cycles: auto/);
    }
  });
  test("its notes: whole in the plain lines; on the full screen below the grid, the summary's rows left to it", () => {
    assert.deepEqual(plan.estimate.notes, ['machine unknown: run history not used']);
    assert.ok(plainOf(plan).some((l) => l.trim() === '· machine unknown: run history not used'), plainOf(plan).join('\n'));
    assert.ok(!topAt(plan, 80).some((l) => l.includes('machine unknown')), topAt(plan, 80).join('\n'));
    const lines = body(80);
    const heading = lines.indexOf('estimate notes:');
    assert.ok(heading >= plan.configs.length, `after the ${plan.configs.length} grid rows:\n${lines.join('\n')}`);
    assert.equal(lines[heading + 1], '  · machine unknown: run history not used');
  });
});

const open: Array<{ inp: FakeStdin; result: Promise<number> }> = [];
afterEach(async () => {
  for (const s of open.splice(0)) {
    s.inp.press('q');
    await s.result.catch(() => undefined);
  }
});

test('the full screen at 80×24: the notes take their lines and the grid scrolls under them; the prompt stays on screen', async () => {
  const plan = autoPlan(30);
  const out = new FakeStdout(80, 24);
  const inp = new FakeStdin();
  const handle = new ScriptedHandle(makeSnapshot(plan));
  const result = runTui({
    plan,
    needsConfirmation: false,
    createRunner: async () => handle,
    stdin: asStdin(inp),
    stdout: asStdout(out),
    env: { TERM: 'xterm-256color', LANG: 'en_US.UTF-8' },
    handleSignals: false,
    debugFrames: true,
  });
  open.push({ inp, result });
  showFrameOnTimeout(() => out.lastFrame());
  await waitFor(() => out.lastFrame().includes('Press Enter to start'), 'the pre-flight');
  let frame = out.lastFrame();
  assert.match(frame, /pilot assumption of a 3 % per-cycle CV/);
  assert.match(frame, /runs expected/);
  // the bottom of the scroll: the summary still on top, the last body line and the prompt drawn
  // (a viewport sized for a summary without the notes pushes the title off the screen)
  inp.press('G');
  await waitFor(() => out.lastFrame().includes('fixture warning'), 'the end of the pre-flight');
  frame = out.lastFrame();
  assert.match(frame, /^llem · fixture-study /, `the summary's title on the first row:\n${frame}`);
  assert.match(frame, /Press Enter to start/, `the prompt under the scrolled body:\n${frame}`);
  assert.ok(frame.replace(/\n+$/, '').split('\n').length <= 24, `the frame fits 24 rows:\n${frame}`);
});
