// Every way out of a terminal session, in a real terminal (tmux): closing it on the pre-flight
// (nothing may be left waiting), closing it mid-study (the study goes on headless), closing or
// outliving `llem watch`, `--yes`, and terminals that cannot carry the full screen.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pidsMentioning, repo, TerminalCase, terminalWorker, waitUntil } from './terminal-session.ts';

const THREE = { sweep: '{batch_size: [1, 2, 3]}' };

test('closing the terminal on the pre-flight ends llem: nothing left waiting, nothing run', { timeout: 300_000 }, async () => {
  const t = new TerminalCase('hup-preflight', { name: 'e2e-hup-preflight', ...THREE });
  try {
    t.launch(100, 30, `run ${t.yaml} --out ${t.out}`);
    await t.tmux.waitFor((s) => s.includes('Press Enter to start'), 'the pre-flight', 120_000);
    assert.ok(pidsMentioning(t.yaml).length > 0, 'llem is running');
    t.tmux.kill(); // the terminal closes: SIGHUP
    await waitUntil(() => pidsMentioning(t.yaml).length === 0, 'llem to exit after the hangup', 30_000);
    assert.equal(t.studyDir(), null, 'no study was created');
  } finally {
    t.cleanup();
  }
});

test('closing the terminal mid-study: the study runs on headless to its end, then nothing is left', { timeout: 300_000 }, async () => {
  const t = new TerminalCase('hup-study', { name: 'e2e-hup-study', ...THREE });
  try {
    t.launch(100, 30, `run ${t.yaml} --out ${t.out}`, { E2E_SLEEP_MS: '3000' });
    await t.tmux.waitFor((s) => s.includes('Press Enter to start'), 'the pre-flight', 120_000);
    t.tmux.keys('Enter');
    await t.tmux.waitFor((s) => /1 running/.test(s), 'a running run', 90_000);
    t.tmux.kill();
    await waitUntil(() => pidsMentioning(t.tmp).length === 0, 'the study to run to its end', 180_000);
    const m = t.manifest();
    assert.equal(m.status, 'completed');
    assert.deepEqual(m.runs.map((r) => r.status), ['completed', 'completed', 'completed']);
  } finally {
    t.cleanup();
  }
});

/** `llem run --no-tui --yes` in the background, as under nohup; resolves its study dir. */
async function backgroundStudy(t: TerminalCase, sleepMs: number): Promise<{ studyDir: string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ['bin/llem.js', 'run', t.yaml, '--out', t.out, '--no-tui', '--yes'], {
    cwd: repo,
    env: { ...process.env, LLEM_WORKER_ENTRY: terminalWorker, E2E_SLEEP_MS: String(sleepMs) },
    detached: true,
    stdio: 'ignore',
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitUntil(() => t.studyDir() !== null && existsSync(join(t.studyDir()!, 'events.jsonl')), 'the study dir', 120_000);
  return { studyDir: t.studyDir()!, exited };
}

test('llem watch: closing its terminal ends it; the study goes on', { timeout: 300_000 }, async () => {
  const t = new TerminalCase('hup-watch', { name: 'e2e-hup-watch', ...THREE });
  try {
    const { studyDir, exited } = await backgroundStudy(t, 4000);
    t.tmux.start(100, 30, repo);
    t.tmux.sendLine(`env -u CI node bin/llem.js watch ${studyDir}`);
    await t.tmux.waitFor((s) => s.includes('[watching]') && s.includes('cycle '), 'the watch screen', 120_000);
    const watching = () => pidsMentioning(`watch ${studyDir}`);
    assert.ok(watching().length > 0);
    t.tmux.kill();
    await waitUntil(() => watching().length === 0, 'llem watch to exit after the hangup', 30_000);
    assert.equal(await exited, 0, 'the study itself finished');
  } finally {
    t.cleanup();
  }
});

test('llem watch: when the study ends it shows the final state, then leaves with the study code', { timeout: 300_000 }, async () => {
  const t = new TerminalCase('watch-end', { name: 'e2e-watch-end', ...THREE });
  const watchExit = join(t.tmp, 'watch.exit');
  try {
    const { studyDir, exited } = await backgroundStudy(t, 2000);
    t.tmux.start(100, 30, repo);
    t.tmux.sendLine(`env -u CI node bin/llem.js watch ${studyDir}; echo $? > ${watchExit}`);
    await t.tmux.waitFor((s) => s.includes('[watching]') && s.includes('cycle '), 'the watch screen', 120_000);
    assert.equal(await exited, 0);
    const screen = await t.tmux.waitFor((s) => s.includes('finished: completed') && /leaving in \d+ s/.test(s), 'the final state and the countdown', 60_000);
    assert.match(screen, /3 done/);
    const elapsed = /elapsed (\S+)/.exec(screen)?.[1];
    await waitUntil(() => existsSync(watchExit) && readFileSync(watchExit, 'utf8').trim() !== '', 'llem watch to leave on its own', 60_000, () => t.tmux.capture());
    assert.equal(readFileSync(watchExit, 'utf8').trim(), '0');
    assert.equal(t.tmux.display('#{alternate_on}'), '0');
    const after = t.tmux.captureJoined();
    assert.match(after, /llem: study e2e-watch-end completed after (\S+): 3 completed/);
    // the clock stopped with the study: the summary says what the screen said
    assert.equal(/completed after (\S+):/.exec(after)?.[1], elapsed);
  } finally {
    t.cleanup();
  }
});

test('--yes starts at once; the pre-flight stays above on the normal screen', { timeout: 300_000 }, async () => {
  const t = new TerminalCase('yes', { name: 'e2e-yes', ...THREE });
  try {
    t.launch(100, 30, `run ${t.yaml} --out ${t.out} --yes`, { E2E_SLEEP_MS: '20000' });
    // no Enter pressed
    await t.tmux.waitFor((s) => /1 running/.test(s) && s.includes('cycle 1/1'), 'the study screen without Enter', 120_000);
    t.tmux.keys('C-c');
    assert.equal(await t.waitExit('llem to exit after Ctrl+C'), '130');
    const screen = t.tmux.captureJoined();
    const pre = screen.indexOf('llem · e2e-yes');
    const summary = screen.indexOf('llem: study e2e-yes interrupted');
    assert.ok(pre !== -1 && summary > pre, `pre-flight above the summary:\n${screen}`);
    assert.match(screen, /3 configs × 1 cycle = 3 runs/);
    assert.match(screen, /estimate: \S+ \(\S+–\S+\), finishes about \d\d:\d\d/);
  } finally {
    t.cleanup();
  }
});

for (const { name, setup, env } of [
  { name: 'a pty of unknown size (0×0)', setup: 'stty rows 0 cols 0; ', env: {} },
  { name: 'TERM=dumb', setup: '', env: { TERM: 'dumb' } },
]) {
  test(`${name} gets the plain reporter`, { timeout: 300_000 }, async () => {
    const t = new TerminalCase('plain', { name: 'e2e-plain', ...THREE });
    try {
      t.tmux.start(100, 30, repo);
      t.tmux.sendLine(setup + t.command(`run ${t.yaml} --out ${t.out}`, { E2E_SLEEP_MS: '1000', ...env }));
      assert.equal(await t.waitExit('the study to finish', 180_000), '0');
      assert.equal(t.tmux.display('#{alternate_on}'), '0');
      const screen = t.tmux.captureJoined();
      assert.match(screen, /llem: plain output: /);
      assert.match(screen, /\[3\/3\] \S+ completed/);
      assert.doesNotMatch(screen, /Press Enter to start/);
    } finally {
      t.cleanup();
    }
  });
}
