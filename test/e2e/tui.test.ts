// The TUI in a real terminal: tmux runs `llem run` (CI unset: with CI=true Ink draws no live
// frames) on a study whose runs use the fixture worker. We read the screen with capture-pane.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { Tmux } from './tmux.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const studyYaml = join(repo, 'test/e2e/fixtures/tui-study.yaml');
const workerEntry = join(repo, 'test/runner/fixtures/worker.ts');

function processesMentioning(text: string): string[] {
  try {
    return execFileSync('pgrep', ['-af', text], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

test('llem run in tmux: pre-flight, start, pause, skip, retry, resize, Ctrl+C → 130 with the terminal restored', { timeout: 300_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'llem-e2e-tui-'));
  const tmux = new Tmux('tui');
  // A run finishes only when the test lets it (one token each, see the fixture's gate): on a
  // loaded machine the study can never end, or a run finish, before the key that needs it.
  const gateDir = join(tmp, 'gate');
  mkdirSync(gateDir);
  let tokens = 0;
  const letOneRunFinish = () => writeFileSync(join(gateDir, `token-${++tokens}`), '');
  try {
    tmux.start(100, 30, repo);
    const sttyBefore = join(tmp, 'stty.before');
    const sttyAfter = join(tmp, 'stty.after');
    const exitFile = join(tmp, 'exit');
    tmux.sendLine(
      `stty -g > ${sttyBefore}; env -u CI LLEM_WORKER_ENTRY=${workerEntry} FIXTURE_SLEEP_MS=1000 FIXTURE_GATE_DIR=${gateDir} ` +
        `node bin/llem.js run ${studyYaml} --out ${join(tmp, 'out')}; echo $? > ${exitFile}; stty -g > ${sttyAfter}`,
    );

    // Ready marker: the pre-flight screen, with the run count and the estimate.
    let screen = await tmux.waitFor((s) => s.includes('Press Enter to start'), 'the pre-flight screen', 120_000);
    assert.match(screen, /3 configs × 2 cycles = 6 runs/);
    assert.match(screen, /estimate: \S+ \(\S+–\S+\), finishes about \d\d:\d\d/);
    assert.equal(tmux.display('#{alternate_on}'), '1');

    tmux.keys('Enter');
    await tmux.waitFor((s) => /cycle 1\/2/.test(s) && /1 running/.test(s), 'the study screen with a running run', 60_000);
    letOneRunFinish();
    await tmux.waitFor((s) => /[1-9] done/.test(s) && s.includes('✓'), 'a row to change to completed', 90_000);

    // p: pause after the current run; the study then sits with nothing running.
    await tmux.waitFor((s) => s.includes('1 running'), 'the next run', 60_000);
    tmux.keys('p', true);
    await tmux.waitFor((s) => s.includes('pausing after this run'), 'the pause to register', 60_000);
    letOneRunFinish();
    await tmux.waitFor((s) => s.includes('PAUSED') && s.includes('0 running'), 'the pause to take effect', 90_000);
    const doneWhilePaused = /(\d+) done/.exec(tmux.capture())?.[1];
    await new Promise((r) => setTimeout(r, 3000));
    screen = tmux.capture();
    assert.match(screen, /0 running/);
    assert.equal(/(\d+) done/.exec(screen)?.[1], doneWhilePaused, 'nothing ran while paused');

    // p again resumes; s s skips the run that starts.
    tmux.keys('p', true);
    await tmux.waitFor((s) => s.includes('1 running'), 'a run after resuming', 60_000);
    tmux.keys('s', true);
    await tmux.waitFor((s) => s.includes('press s again to skip'), 'the skip confirmation');
    tmux.keys('s', true);
    await tmux.waitFor((s) => s.includes('1 skipped'), 'the skipped run', 60_000);

    // r on the skipped row: filter to it, then retry.
    tmux.keys('/', true);
    tmux.keys('skipped', true);
    tmux.keys('Enter');
    await tmux.waitFor((s) => /row 1\/1 \(of 3\)/.test(s), 'the filter to the skipped row');
    tmux.keys('r', true);
    await tmux.waitFor((s) => s.includes('retrying 1 run(s)') && s.includes('0 skipped'), 'the retry', 60_000);
    tmux.keys('Escape');

    // Resize mid-run: one frame, at most rows − 1 lines, nothing wider than the window.
    tmux.resize(80, 24);
    screen = await tmux.waitFor((s) => s.split('\n').length >= 24 && /llem · e2e-tui/.test(s) && s.split('\n')[2]?.includes('config'), 'the reflowed frame');
    const lines = screen.replace(/\n$/, '').split('\n');
    assert.equal(lines.filter((l) => l.startsWith('llem · e2e-tui')).length, 1, 'no ghost header from the old size');
    assert.ok(lines.every((l) => l.length <= 80), 'no line wider than 80 columns');
    assert.equal(lines[lines.length - 1].trim(), '', 'the last row stays empty (frame is rows − 1 high)');

    // Ctrl+C with a run going: the child is killed and marked UserInterrupted, exit 130.
    await tmux.waitFor((s) => s.includes('1 running'), 'a running run to interrupt', 90_000);
    tmux.keys('C-c');
    const start = Date.now();
    while (!existsSync(exitFile) || readFileSync(exitFile, 'utf8').trim() === '') {
      assert.ok(Date.now() - start < 60_000, `llem did not exit after Ctrl+C; screen:\n${tmux.capture()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(readFileSync(exitFile, 'utf8').trim(), '130');
    const [studyDir] = readdirSync(join(tmp, 'out')).map((d) => join(tmp, 'out', d));
    const manifest = JSON.parse(readFileSync(join(studyDir, 'manifest.json'), 'utf8')) as {
      runs: Array<{ status: string; error_type: string | null; attempts: Array<{ pid: number | null }> }>;
    };
    const interrupted = manifest.runs.filter((r) => r.status === 'interrupted');
    assert.equal(interrupted.length, 1);
    assert.equal(interrupted[0].error_type, 'UserInterrupted');
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(processesMentioning(tmp).filter((p) => !p.includes('bash') && !p.includes('tmux')), [], 'no child process left');

    // The terminal is as it was: same stty settings, main screen, cursor visible, prompt usable.
    await tmux.waitFor(() => existsSync(sttyAfter) && readFileSync(sttyAfter, 'utf8').trim() !== '', 'stty -g after exit');
    assert.equal(readFileSync(sttyAfter, 'utf8'), readFileSync(sttyBefore, 'utf8'));
    assert.equal(tmux.display('#{alternate_on}'), '0');
    assert.equal(tmux.display('#{cursor_flag}'), '1');
    screen = tmux.captureJoined();
    assert.match(screen, /llem: study e2e-tui interrupted/);
    assert.match(screen, new RegExp(`Results in ${studyDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    tmux.sendLine('echo prompt-$((40 + 2))');
    await tmux.waitFor((s) => s.includes('prompt-42'), 'the shell prompt to answer');
  } finally {
    tmux.kill();
    rmSync(tmp, { recursive: true, force: true });
  }
});
