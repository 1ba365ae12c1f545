// The Ink app rendered in-process over fake streams: frames, keys, sizes, colour, restore.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import type { RunnerEvent } from '../../src/runner/events.ts';
import { runTui, watchStudy } from '../../src/ui/index.ts';
import { renderCount, resetRenderCounts } from '../../src/ui/render-count.ts';
import { at, makePlan, makeSnapshot, ScriptedHandle, withStatus } from './fixtures.ts';
import { asStdin, asStdout, FakeStdin, FakeStdout, showFrameOnTimeout, waitFor } from './harness.ts';

const UTF8_ENV = { TERM: 'xterm-256color', LANG: 'en_US.UTF-8' };
const LEAVE_ALT = '\u001b[?1049l';
const ENTER_ALT = '\u001b[?1049h';
const SHOW_CURSOR = '\u001b[?25h';

interface Session {
  out: FakeStdout;
  inp: FakeStdin;
  handle: ScriptedHandle;
  result: Promise<number>;
  forced: number[];
}

const open: Session[] = [];
afterEach(async () => {
  // never leave a session (timers, listeners) behind a failed test
  for (const s of open.splice(0)) {
    s.handle.end(0);
    // a session still on its pre-flight (a failed assertion) ends only by a key
    s.inp.press('ctrl+c');
    s.inp.press('ctrl+c');
    await s.result.catch(() => undefined);
  }
});

function start(opts: { columns?: number; rows?: number; configs?: number; cycles?: number; env?: NodeJS.ProcessEnv; needsConfirmation?: boolean; createRunner?: () => Promise<ScriptedHandle>; tickMs?: number } = {}): Session {
  const plan = makePlan({ configs: opts.configs ?? 30, cycles: opts.cycles ?? 3 });
  const out = new FakeStdout(opts.columns ?? 100, opts.rows ?? 30);
  const inp = new FakeStdin();
  const handle = new ScriptedHandle(makeSnapshot(plan));
  const forced: number[] = [];
  const result = runTui({
    plan,
    needsConfirmation: opts.needsConfirmation ?? false,
    createRunner: opts.createRunner ?? (async () => handle),
    stdin: asStdin(inp),
    stdout: asStdout(out),
    env: opts.env ?? UTF8_ENV,
    handleSignals: false,
    debugFrames: true,
    forceExit: (code) => forced.push(code),
    ...(opts.tickMs !== undefined ? { tickMs: opts.tickMs } : {}),
  });
  const s = { out, inp, handle, result, forced };
  showFrameOnTimeout(() => out.lastFrame());
  open.push(s);
  return s;
}

async function started(s: Session): Promise<void> {
  await waitFor(() => s.out.lastFrame().includes('Press Enter to start'), 'the pre-flight screen');
  s.inp.press('enter');
  await waitFor(() => s.handle.methods().includes('run'), 'run() to be called');
  await waitFor(() => s.out.lastFrame().includes('cycle 1/'), 'the study screen');
}

function emit(s: Session, ...events: RunnerEvent[]) {
  for (const e of events) s.handle.emit(e);
}

function frameHeight(frame: string): number {
  return frame.replace(/\n+$/, '').split('\n').length;
}

describe('runTui', () => {
  test('pre-flight shows the count, estimate, memory fit, skipped and warnings; q cancels with 0', async () => {
    const s = start();
    await waitFor(() => s.out.lastFrame().includes('Press Enter to start'), 'pre-flight');
    let frame = s.out.lastFrame();
    assert.match(frame, /30 configs × 3 cycles = 90 runs/);
    assert.match(frame, /estimate: 1h02m \(50m00s–1h15m\), finishes about \d\d:\d\d/);
    // the grid: one row per config with its swept values, runs, time per run, memory fit, timeout
    assert.match(frame, /backend\s+bs\s+runs\s+per run\s+memory\s+timeout/);
    assert.match(frame, /llamacpp\s+2\s+3\s+10s\s+won't fit \[1\]\s+10m00s/);
    // it scrolls: skipped combinations, the reasons (each once) and warnings are below it
    s.inp.press('G');
    await waitFor(() => s.out.lastFrame().includes('reasons:'), 'the end of the pre-flight');
    frame = s.out.lastFrame();
    assert.match(frame, /vllm bs=64 precision=int2\s+\[2\]/);
    assert.match(frame, /\[1\] needs 90 GiB, 80 GiB free/);
    assert.match(frame, /\[2\] vllm does not support precision int2/);
    assert.match(frame, /fixture warning/);
    s.inp.press('q');
    assert.equal(await s.result, 0);
    assert.deepEqual(s.handle.methods(), [], 'no runner was created');
    assert.match(s.out.all, /cancelled; nothing was run/);
  });

  test('over the confirmation limit Enter asks again', async () => {
    const s = start({ needsConfirmation: true });
    await waitFor(() => s.out.lastFrame().includes('Press Enter'), 'pre-flight');
    s.inp.press('enter');
    await waitFor(() => s.out.lastFrame().includes('press Enter again to start'), 'the question');
    assert.deepEqual(s.handle.methods(), []);
    s.inp.press('enter');
    await waitFor(() => s.handle.methods().includes('run'), 'run');
  });

  test('study screen: rows change status, live panel, log, keys reach the controls', async () => {
    const s = start();
    await started(s);
    const run0 = withStatus(s.handle.snap.runs[0], 'running');
    emit(
      s,
      { type: 'run_status', at, run: run0 },
      { type: 'phase', at, index: 0, phase: 'measure' },
      { type: 'power', at, index: 0, samples: [{ t_ms: 0, power_w: 100, temp_c: 50 }, { t_ms: 100, power_w: 180, temp_c: 52 }], energy_so_far_j: 42 },
      { type: 'log', at, index: 0, line: 'prompt 3/8 done' },
    );
    await waitFor(() => s.out.lastFrame().includes('energy 42.0 J'), 'the live panel');
    let frame = s.out.lastFrame();
    assert.match(frame, /▶··/);
    assert.match(frame, /measure/);
    assert.match(frame, /temp 52°C/);
    assert.match(frame, /prompt 3\/8 done/);
    emit(s, { type: 'run_status', at, run: withStatus(run0, 'completed') });
    await waitFor(() => s.out.lastFrame().includes('1 done'), 'the completed count');
    frame = s.out.lastFrame();
    assert.match(frame, /✓··\s+123/);
    s.inp.press('p');
    await waitFor(() => s.handle.methods().includes('pause'), 'pause()');
    s.inp.press('s');
    await waitFor(() => s.out.lastFrame().includes('no run is running'), 'the reason s cannot apply');
    s.inp.press('ctrl+c');
    assert.equal(await s.result, 130);
    assert.ok(s.handle.methods().includes('abortNow'));
  });

  test('a gap shows its countdown; c cuts it short, s points at c', async () => {
    const s = start();
    await started(s);
    emit(s, { type: 'gap', at, kind: 'cooldown', seconds_left: 90, total_seconds: 120, temp_c: 74 });
    await waitFor(() => /cooldown gap: 1m\d\ds left of 2m00s {2}GPU 74°C/.test(s.out.lastFrame()), 'the gap line');
    s.inp.press('s');
    await waitFor(() => s.out.lastFrame().includes('no run is running (c cuts the gap short)'), 'the reason');
    s.inp.press('c');
    await waitFor(() => s.handle.methods().includes('skipGap'), 'skipGap()');
    emit(s, { type: 'gap_end', at, kind: 'cooldown', cut_short: true });
    await waitFor(() => !s.out.lastFrame().includes('cooldown gap'), 'the gap to end');
  });

  test('the frame is at most rows − 1 high at every size, and a resize reflows', async () => {
    const s = start({ columns: 120, rows: 40 });
    await started(s);
    for (const [columns, rows] of [[120, 40], [80, 24], [60, 15], [200, 60]] as const) {
      s.out.resize(columns, rows);
      await waitFor(() => s.out.lastFrame().split('\n').every((l) => l.length <= columns) && frameHeight(s.out.lastFrame()) === rows - 1, `a ${columns}×${rows} frame`);
      assert.match(s.out.lastFrame(), /cycle 1\/3/);
    }
    s.out.resize(40, 10);
    await waitFor(() => s.out.lastFrame().includes('terminal too small'), 'the too-small screen');
    assert.match(s.out.lastFrame(), /have 40×10, need 50×12/);
    s.out.resize(80, 24);
    await waitFor(() => s.out.lastFrame().includes('cycle 1/3'), 'the study screen again');
  });

  test('detail, help and filter screens', async () => {
    const s = start();
    await started(s);
    const failed = withStatus(withStatus(s.handle.snap.runs[0], 'running'), 'failed');
    emit(s, { type: 'run_status', at, run: failed });
    await waitFor(() => s.out.lastFrame().includes('1 failed'), 'the failure');
    s.inp.press('enter');
    await waitFor(() => s.out.lastFrame().includes('attempt 1: failed ProcessCrash'), 'the detail screen');
    assert.match(s.out.lastFrame(), /child killed by SIGSEGV/);
    assert.match(s.out.lastFrame(), /│ backtrace follows/);
    s.inp.press('r');
    await waitFor(() => s.handle.methods().includes('retry'), 'retry()');
    assert.deepEqual(s.handle.calls.find((c) => c.method === 'retry')?.args, [[0]]);
    s.inp.press('?');
    await waitFor(() => s.out.lastFrame().includes('Keys (q, Esc or ? closes'), 'help');
    assert.match(s.out.lastFrame(), /cut gap\s+cut the current gap or cooldown short \(now: no gap or cooldown in\s+progress\)/);
    s.inp.press('escape');
    await waitFor(() => !s.out.lastFrame().includes('Keys (q, Esc'), 'help to close');
    s.inp.press('escape');
    await waitFor(() => s.out.lastFrame().includes('energy J'), 'the table');
    for (const key of ['/', 'v', 'l', 'l', 'm', 'enter']) s.inp.press(key);
    await waitFor(() => s.out.lastFrame().includes('filter: vllm'), 'the filter');
    assert.match(s.out.lastFrame(), /row 1\/10 \(of 30\)/);
    assert.doesNotMatch(s.out.lastFrame(), /llamacpp bs=1 /);
  });

  test('the terminal is restored exactly once, raw mode off', async () => {
    const s = start();
    await started(s);
    s.inp.press('ctrl+c');
    assert.equal(await s.result, 130);
    const all = s.out.all;
    assert.equal(all.split(ENTER_ALT).length - 1, 1);
    assert.equal(all.split(LEAVE_ALT).length - 1, 1);
    assert.ok(all.lastIndexOf(SHOW_CURSOR) > all.lastIndexOf(LEAVE_ALT) - 1);
    assert.equal(s.inp.rawMode, false);
    assert.equal(s.handle.listenerCount, 0, 'unsubscribed from the runner');
    assert.match(s.out.all, /resume with: llem resume \/tmp\/study-dir/);
  });

  test('a second Ctrl+C forces when the runner does not stop', async () => {
    const s = start();
    await started(s);
    s.handle.abortNow = async () => {
      s.handle.calls.push({ method: 'abortNow', args: [] }); // hangs: never ends run()
    };
    s.inp.press('ctrl+c');
    await waitFor(() => s.out.lastFrame().includes('aborting'), 'the aborting notice');
    s.inp.press('ctrl+c');
    await waitFor(() => s.forced.length > 0, 'the forced exit');
    assert.deepEqual(s.forced, [130]);
    assert.ok(s.out.all.includes(LEAVE_ALT));
  });

  test('a runner that fails to start: terminal restored, error passed on', async () => {
    const s = start({ createRunner: async () => { throw new Error('study is being run by pid 42'); } });
    await waitFor(() => s.out.lastFrame().includes('Press Enter'), 'pre-flight');
    s.inp.press('enter');
    await assert.rejects(s.result, /pid 42/);
    assert.ok(s.out.all.includes(LEAVE_ALT));
    assert.equal(s.inp.rawMode, false);
  });

  test('Ctrl+C while the runner is being created: exit 130, nothing runs', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const s = start({
      createRunner: async () => {
        await gate;
        return s.handle;
      },
    });
    await waitFor(() => s.out.lastFrame().includes('Press Enter'), 'pre-flight');
    s.inp.press('enter');
    await waitFor(() => s.out.lastFrame().includes('starting…'), 'the starting state');
    s.inp.press('ctrl+c');
    assert.equal(await s.result, 130);
    release();
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(s.handle.methods(), [], 'run() never called');
    assert.match(s.out.all, /interrupted before the study started/);
  });

  test('NO_COLOR: no colour codes; TERM=dumb: ASCII and no alternate screen', async () => {
    const s = start({ env: { ...UTF8_ENV, NO_COLOR: '1' } });
    await started(s);
    emit(s, { type: 'run_status', at, run: withStatus(s.handle.snap.runs[0], 'running') });
    await waitFor(() => s.out.lastFrame().includes('1 running'), 'the running run');
    assert.doesNotMatch(s.out.lastRawFrame(), /\u001b\[3\dm/);
    s.inp.press('ctrl+c');
    await s.result;

    const d = start({ env: { TERM: 'dumb', LANG: 'en_US.UTF-8' } });
    await started(d);
    emit(d, { type: 'run_status', at, run: withStatus(d.handle.snap.runs[0], 'running') });
    await waitFor(() => d.out.lastFrame().includes('1 running'), 'the running run');
    const frame = d.out.lastFrame();
    assert.match(frame, />\.\./);
    assert.match(frame, /\+-{10}/);
    assert.doesNotMatch(frame, /[^\x00-\x7f]/);
    assert.doesNotMatch(d.out.lastRawFrame(), /\u001b\[3\dm/);
    assert.ok(!d.out.all.includes(ENTER_ALT));
    d.inp.press('ctrl+c');
    await d.result;
  });

  test('cost of looking: a flood of events is a few publishes, unchanged rows do not re-render', async () => {
    // No clock tick during the count: each tick re-renders the header, and on a loaded machine the
    // waits below can last seconds, so the count would measure the machine instead of the flood.
    const s = start({ configs: 10_000, cycles: 1, tickMs: 3_600_000 });
    await started(s);
    const run0 = withStatus(s.handle.snap.runs[0], 'running');
    emit(s, { type: 'run_status', at, run: run0 });
    await waitFor(() => s.out.lastFrame().includes('1 running'), 'the running run');
    await new Promise((r) => setTimeout(r, 300));
    resetRenderCounts();
    for (let k = 0; k < 500; k++) {
      emit(s, { type: 'power', at, index: 0, samples: [{ t_ms: k, power_w: 100 + (k % 50), temp_c: 60 }], energy_so_far_j: k });
    }
    await waitFor(() => s.out.lastFrame().includes('energy 499 J'), 'the last power sample');
    await new Promise((r) => setTimeout(r, 300));
    // 500 events arrive in one go: the store publishes them together (≤ 10/s), and no table
    // row changed, so none re-renders.
    assert.ok(renderCount('App') <= 3, `App rendered ${renderCount('App')} times`);
    assert.equal(renderCount('TableRow'), 0);
    assert.ok(renderCount('LivePanel') >= 1);
    // Scrolling 10,000 rows renders only the visible slice.
    resetRenderCounts();
    s.inp.press('G');
    await waitFor(() => s.out.lastFrame().includes('row 10000/10000'), 'the last row');
    assert.ok(renderCount('TableRow') <= 2 * 14, `TableRow rendered ${renderCount('TableRow')} times`);
  });
});

describe('watchStudy', () => {
  test('follows the journal read-only; controls say why they cannot apply; q leaves', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llem-watch-'));
    try {
      const plan = makePlan({ configs: 4, cycles: 2 });
      const snap = makeSnapshot(plan, dir);
      await writeFile(join(dir, 'plan.json'), JSON.stringify(plan));
      const line = (e: RunnerEvent) => JSON.stringify(e) + '\n';
      await writeFile(join(dir, 'events.jsonl'), line({ type: 'study_started', at, snapshot: snap }));
      const out = new FakeStdout(100, 30);
      const inp = new FakeStdin();
      const result = watchStudy(dir, { stdin: asStdin(inp), stdout: asStdout(out), env: UTF8_ENV, handleSignals: false, debugFrames: true, pollMs: 50 });
      await waitFor(() => out.lastFrame().includes('[watching]'), 'the study screen');
      // a line written in two pieces is read once whole
      const ev = line({ type: 'run_status', at, run: withStatus(snap.runs[0], 'running') });
      await appendFile(join(dir, 'events.jsonl'), ev.slice(0, 20));
      await new Promise((r) => setTimeout(r, 150));
      await appendFile(join(dir, 'events.jsonl'), ev.slice(20) + 'not json\n');
      await waitFor(() => out.lastFrame().includes('1 running'), 'the run to show as running');
      inp.press('p');
      await waitFor(() => out.lastFrame().includes('read-only'), 'the read-only reason');
      inp.press('q');
      assert.equal(await result, 0);
      assert.ok(out.all.includes(LEAVE_ALT));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a directory without plan.json is an error naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llem-watch-'));
    try {
      await assert.rejects(watchStudy(dir, { handleSignals: false }), /plan\.json: not found/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
