// `llem watch` in tmux over a study that another process runs (`llem run --no-tui` in the
// background, as under nohup): the study screen read-only, controls refused with the reason,
// q leaves with 0 and the terminal restored; the study itself goes on untouched.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { Tmux } from './tmux.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));

test('llem watch follows a study run elsewhere, read-only', { timeout: 300_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'llem-e2e-watch-'));
  const tmux = new Tmux('watch');
  // Runs finish only when the test lets them (one token each, see the fixture's gate): on a loaded
  // machine the study can never end before the watcher has attached and the keys are handled.
  const gateDir = join(tmp, 'gate');
  mkdirSync(gateDir);
  let tokens = 0;
  const letRunsFinish = (n: number) => {
    for (let i = 0; i < n; i++) writeFileSync(join(gateDir, `token-${++tokens}`), '');
  };
  const env = { ...process.env, LLEM_WORKER_ENTRY: join(repo, 'test/runner/fixtures/worker.ts'), FIXTURE_SLEEP_MS: '500', FIXTURE_GATE_DIR: gateDir };
  const runner = spawn(process.execPath, ['bin/llem.js', 'run', join(repo, 'test/e2e/fixtures/tui-study.yaml'), '--out', join(tmp, 'out'), '--no-tui', '--yes'], {
    cwd: repo,
    env,
    detached: true,
    stdio: 'ignore',
  });
  const runnerExit = new Promise<number | null>((resolve) => runner.on('exit', (code) => resolve(code)));
  try {
    const start = Date.now();
    let studyDir = '';
    while (!studyDir) {
      assert.ok(Date.now() - start < 120_000, 'the study dir did not appear');
      const out = join(tmp, 'out');
      const dirs = existsSync(out) ? readdirSync(out) : [];
      if (dirs.length > 0 && existsSync(join(out, dirs[0], 'events.jsonl'))) studyDir = join(out, dirs[0]);
      else await new Promise((r) => setTimeout(r, 200));
    }
    const exitFile = join(tmp, 'watch.exit');
    tmux.start(100, 30, repo);
    tmux.sendLine(`env -u CI node bin/llem.js watch ${studyDir}; echo $? > ${exitFile}`);
    await tmux.waitFor((s) => s.includes('[watching]') && s.includes('cycle '), 'the watch screen', 120_000);
    letRunsFinish(1);
    await tmux.waitFor((s) => s.includes('✓'), 'a completed run seen through the journal', 120_000);
    tmux.keys('p', true);
    await tmux.waitFor((s) => s.includes('read-only: another process runs this study'), 'the read-only reason');
    tmux.keys('q', true);
    const t0 = Date.now();
    while (!existsSync(exitFile) || readFileSync(exitFile, 'utf8').trim() === '') {
      assert.ok(Date.now() - t0 < 30_000, `watch did not exit; screen:\n${tmux.capture()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(readFileSync(exitFile, 'utf8').trim(), '0');
    assert.equal(tmux.display('#{alternate_on}'), '0');
    assert.equal(tmux.display('#{cursor_flag}'), '1');
    // watching never paused the study: it finishes on its own once its runs may
    letRunsFinish(5);
    assert.equal(await runnerExit, 0);
    const manifest = JSON.parse(readFileSync(join(studyDir, 'manifest.json'), 'utf8')) as { status: string };
    assert.equal(manifest.status, 'completed');
  } finally {
    tmux.kill();
    if (runner.exitCode === null && runner.pid) {
      try {
        process.kill(-runner.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await runnerExit;
    }
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('the full-screen llem watch of a study whose runner was killed says so and exits instead of waiting forever', { timeout: 300_000 }, async () => {
  // A journal without study_finished and no runner holding the study: what a SIGKILLed `llem run`
  // leaves. The plain watch already said so; the full-screen one waited forever.
  const { makePlan, tempStudy } = await import('../runner/helpers.ts');
  const t = tempStudy(makePlan([{ fixture_mode: 'ok' }], { nCycles: 1 }));
  const tmux = new Tmux('watch-gone');
  try {
    writeFileSync(join(t.studyDir, 'events.jsonl'), '');
    const exitFile = join(t.root, 'watch.exit');
    tmux.start(100, 30, repo);
    tmux.sendLine(`env -u CI node bin/llem.js watch ${t.studyDir}; echo $? > ${exitFile}`);
    // (the full screen shows the notice for a few seconds only: wait for the exit, not for frames)
    const t0 = Date.now();
    while (!existsSync(exitFile) || readFileSync(exitFile, 'utf8').trim() === '') {
      assert.ok(Date.now() - t0 < 120_000, `watch did not exit; screen:\n${tmux.capture()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // the manifest still says running: not completed (the same code as the plain watch)
    assert.equal(readFileSync(exitFile, 'utf8').trim(), '1');
    assert.equal(tmux.display('#{alternate_on}'), '0');
    assert.match(tmux.capture(), /no runner is running this study \(manifest status: running\).*llem resume/s);
  } finally {
    tmux.kill();
    t.cleanup();
  }
});
