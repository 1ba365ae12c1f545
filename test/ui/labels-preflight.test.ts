// Labels fitted to a column, the flags column, the layout's all-dash rule, and the pre-flight
// model (runs to go, estimate of what remains, reasons once), as tables.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { RunStatus } from '../../src/runner/events.ts';
import { flagCell } from '../../src/ui/flags.ts';
import { runTui } from '../../src/ui/index.ts';
import { fitLabels, truncateLeft } from '../../src/ui/labels.ts';
import { tableColumnsFor } from '../../src/ui/layout.ts';
import { estimateToGo, preflightLines, preflightModel, resumeWillRun, runsToGo } from '../../src/ui/preflight.ts';
import type { PlanFile } from '../../src/study/types.ts';
import { makePlan, makeSnapshot, ScriptedHandle, withStatus } from './fixtures.ts';
import { asStdin, asStdout, FakeStdin, FakeStdout, waitFor } from './harness.ts';

function planWithLabels(labels: string[]): PlanFile {
  const plan = makePlan({ configs: labels.length, cycles: 1 });
  return { ...plan, configs: plan.configs.map((c, i) => ({ ...c, label: labels[i]! })) };
}

describe('labels fitted to the column keep rows apart', () => {
  const labels = [
    'llamacpp bs=1 warmup.max_prompts=10',
    'llamacpp bs=1 warmup.max_prompts=20',
    'llamacpp bs=12 warmup.max_prompts=10',
    'llamacpp bs=12 warmup.max_prompts=20',
  ];
  const plan = planWithLabels(labels);
  const cases: Array<{ width: number; style: string; title: string; first: string }> = [
    { width: 40, style: 'full', title: 'config', first: 'llamacpp bs=1 warmup.max_prompts=10' },
    { width: 27, style: 'varying', title: 'config (llamacpp)', first: 'bs=1 warmup.max_prompts=10' },
    { width: 20, style: 'short_keys', title: 'config (llamacpp)', first: 'bs=1 max_prompts=10' },
    { width: 16, style: 'values', title: 'bs max_prompts', first: '1  10' },
    { width: 4, style: 'values', title: '…pts', first: '1  10'.slice(-3).padStart(4, '…') },
  ];
  for (const c of cases) {
    test(`${c.width} columns: ${c.style}`, () => {
      const fitted = fitLabels(plan, c.width);
      assert.equal(fitted.style, c.style);
      assert.equal(fitted.title, c.title);
      assert.equal(fitted.text(0), c.first);
      const texts = labels.map((_, i) => fitted.text(i));
      assert.ok(texts.every((t) => t.length <= c.width), texts.join(' | '));
      if (c.width >= 16) assert.equal(new Set(texts).size, labels.length, `rows told apart: ${texts.join(' | ')}`);
    });
  }
  test('cut from the left keeps the end', () => assert.equal(truncateLeft('bs=1 threads=2', 10), '…threads=2'));
});

test('flags as codes that fit: all, or some and a count', () => {
  assert.equal(flagCell(['builtin_model', 'short_window'], 12), 'BM SW');
  assert.equal(flagCell(['builtin_model', 'short_window', 'few_samples', 'energy_divergence', 'thermal_throttle'], 12), 'BM SW FS +2');
  assert.equal(flagCell(['some_new_flag'], 12), 'some_new_flag', 'one flag is shown (and cut by the cell)');
});

describe('all-dash columns give way to the label first', () => {
  test('no data yet at 80 columns: the label keeps what it needs', () => {
    const cols = tableColumnsFor(80, 2, { labelWidth: 40, withData: new Set() });
    assert.ok(cols[0]!.width >= 40, `label ${cols[0]!.width}`);
  });
  test('with data the metric columns come back and the label gives way to its minimum', () => {
    const cols = tableColumnsFor(80, 2, { labelWidth: 40, withData: new Set(['energy', 'tokensPerS', 'jPerToken', 'duration', 'flags']) });
    assert.deepEqual(cols.map((c) => c.id), ['label', 'cycles', 'energy', 'jPerToken', 'tokensPerS', 'duration', 'flags']);
  });
  test('wide terminals keep every column', () => {
    assert.equal(tableColumnsFor(160, 2, { labelWidth: 40, withData: new Set() }).length, 7);
  });
});

describe('pre-flight: what is left to go', () => {
  const plan = makePlan({ configs: 3, cycles: 2 }); // runs 0-2 cycle 1, 3-5 cycle 2
  const statuses: RunStatus[] = ['completed', 'failed', 'skipped', 'interrupted', 'running', 'pending'];
  const cases = [
    { name: 'a new study: every run', statuses: null, retryFailed: false, added: 0, total: 6, resumed: false },
    { name: 'resume: interrupted, running and pending', statuses, retryFailed: false, added: 0, total: 3, resumed: true },
    { name: 'resume --retry-failed: and failed and skipped', statuses, retryFailed: true, added: 0, total: 5, resumed: true },
    { name: 'resume --cycles 3: and a cycle of every config', statuses, retryFailed: false, added: 1, total: 6, resumed: true },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const toGo = runsToGo(plan, c.statuses, { willRun: c.statuses ? resumeWillRun(c.retryFailed) : undefined, addedCycles: c.added });
      assert.deepEqual([toGo.total, toGo.resumed], [c.total, c.resumed]);
      assert.equal(Object.values(toGo.perConfig).reduce((a, b) => a + b, 0), c.total);
    });
  }
  test('the estimate of a new study is the plan’s; of a resume, its runs and their share of the gaps', () => {
    const all = runsToGo(plan, null);
    assert.deepEqual(estimateToGo(plan, all), { totalS: 3723, lowS: 3000, highS: 4500 });
    const half = runsToGo(plan, ['completed', 'completed', 'completed', 'pending', 'pending', 'pending']);
    const e = estimateToGo(plan, half);
    // 3 runs × 10 s + half of (3723 − 6 × 10 s) of gaps
    assert.equal(e.totalS, 30 + (3723 - 60) / 2);
  });
  test('every distinct reason once; the plain lines name skipped configs and the finish time', () => {
    const sameReason = { ...plan, estimate: { ...plan.estimate, per_config: plan.estimate.per_config.map((pc) => ({ ...pc, memory_fit: 'unknown' as const, memory_reason: 'NVML not loadable' })) } };
    const m = preflightModel(sameReason, runsToGo(sameReason, null));
    assert.deepEqual(m.reasons, ['NVML not loadable', 'vllm does not support precision int2']);
    assert.deepEqual(m.fitReasons, [{ fit: 'unknown', reasons: [1] }]);
    const text = preflightLines(m, Date.parse('2026-11-28T10:00:00')).join('\n');
    assert.equal(text.split('NVML not loadable').length - 1, 1);
    assert.match(text, /3 configs × 2 cycles = 6 runs/);
    assert.match(text, /skipped 1 combination \(invalid before anything runs\):\n {4}vllm bs=64 precision=int2: vllm does not support precision int2/);
    assert.match(text, /estimate: 1h02m \(50m00s–1h15m\), finishes about 11:02/);
  });
});

test('resume in the full screen: the pre-flight counts what remains, and --yes starts at once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'llem-resume-preflight-'));
  try {
    const plan = makePlan({ configs: 3, cycles: 2 });
    await writeFile(join(dir, 'plan.json'), JSON.stringify(plan));
    const snap = makeSnapshot(plan, dir);
    snap.runs = snap.runs.map((r, i) => (i < 2 ? withStatus(withStatus(r, 'running'), 'completed') : r));
    for (const startAtOnce of [false, true]) {
      const handle = new ScriptedHandle(snap);
      const out = new FakeStdout(100, 30);
      const inp = new FakeStdin();
      const result = runTui({ runner: handle, studyDir: dir, resume: {}, startAtOnce, stdin: asStdin(inp), stdout: asStdout(out), env: { TERM: 'xterm-256color', LANG: 'en_US.UTF-8' }, handleSignals: false, debugFrames: true });
      if (!startAtOnce) {
        await waitFor(() => out.lastFrame().includes('Press Enter to start'), 'the pre-flight');
        assert.match(out.lastFrame(), /4 of 6 runs to go \(2 completed; 3 configs × 2 cycles\)/);
        assert.deepEqual(handle.methods(), [], 'waits for Enter');
        inp.press('enter');
      }
      await waitFor(() => handle.methods().includes('run'), 'run()');
      if (startAtOnce) {
        const all = out.all;
        assert.match(all, /4 of 6 runs to go \(2 completed; 3 configs × 2 cycles\)/, 'the pre-flight on the normal screen');
        assert.ok(all.indexOf('runs to go') < all.indexOf('\u001b[?1049h'), 'written before the full screen opens');
      }
      handle.end(0);
      assert.equal(await result, 0);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

describe('the pre-flight reads what the planner recorded', () => {
  const base = makePlan({ configs: 3, cycles: 2 });
  const plan: PlanFile = {
    ...base,
    execution: { ...base.execution, experiment_timeout_seconds: null },
    estimate: { ...base.estimate, source: 'history', per_config: base.estimate.per_config.map((pc, i) => ({ ...pc, timeout_seconds: 300 + 60 * i })) },
  };
  test("each config's timeout is the plan's timeout_seconds; a resume's override wins; an older plan without it says nothing", () => {
    const m = preflightModel(plan, runsToGo(plan, null));
    assert.deepEqual([0, 1, 2].map((i) => m.row(i).timeoutS), [300, 360, 420]);
    const resumed = preflightModel(plan, runsToGo(plan, ['completed', 'pending', 'pending', 'pending', 'pending', 'pending'], { timeoutOverrideS: 1234 }));
    assert.deepEqual([0, 1, 2].map((i) => resumed.row(i).timeoutS), [1234, 1234, 1234]);
    const older: PlanFile = { ...plan, estimate: { ...plan.estimate, per_config: base.estimate.per_config } };
    assert.equal(preflightModel(older, runsToGo(older, null)).row(0).timeoutS, null);
  });
  test('the estimate names its source; n_cycles: auto says how far it may go', () => {
    const auto: PlanFile = {
      ...plan,
      execution: {
        ...plan.execution,
        target: { metric: 'energy_per_output_token_j', ci_half_width: { kind: 'relative', value: 0.05 }, min_cycles: 2, max_cycles: 10, decide: null, notes: [] },
      },
    };
    const text = preflightLines(preflightModel(auto, runsToGo(auto, null)), Date.parse('2026-11-28T10:00:00')).join('\n');
    assert.match(text, /estimate: 1h02m \(50m00s–1h15m\), finishes about 11:02 {2}\[from history\]/);
    assert.match(text, /3 configs × 2 cycles = 6 runs \(n_cycles: auto, up to 10 cycles, 30 runs\)/);
    assert.match(text, /n_cycles: auto — up to 30 runs; 2–10 cycles per config, until the interval of energy_per_output_token_j is within ±5 % of the mean/);
    const fixed = preflightLines(preflightModel(plan, runsToGo(plan, null)), Date.parse('2026-11-28T10:00:00')).join('\n');
    assert.doesNotMatch(fixed, /n_cycles: auto/);
  });
});

test("resume in the full screen: the grid shows the timeout the resume's --experiment-timeout sets", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'llem-resume-timeout-'));
  try {
    const plan = makePlan({ configs: 3, cycles: 2 });
    await writeFile(join(dir, 'plan.json'), JSON.stringify(plan));
    const handle = new ScriptedHandle(makeSnapshot(plan, dir));
    const out = new FakeStdout(100, 30);
    const inp = new FakeStdin();
    const result = runTui({ runner: handle, studyDir: dir, resume: { experimentTimeoutSeconds: 1234 }, stdin: asStdin(inp), stdout: asStdout(out), env: { TERM: 'xterm-256color', LANG: 'en_US.UTF-8' }, handleSignals: false, debugFrames: true });
    try {
      await waitFor(() => out.lastFrame().includes('Press Enter to start'), 'the pre-flight');
      const frame = out.lastFrame();
      assert.equal(frame.split('20m34s').length - 1, 3, frame);
      assert.doesNotMatch(frame, /10m00s/);
    } finally {
      inp.press('q');
      assert.equal(await result, 0);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
