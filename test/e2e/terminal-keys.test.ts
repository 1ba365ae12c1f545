// Keys in a real terminal (tmux), each doing what its label says: a skip question that belongs to
// one run, R for every failed and skipped run, Backspace bytes in one read, hints that match the
// keys a screen really has. Ready markers on screen, never fixed sleeps.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { repo, TerminalCase, waitUntil } from './terminal-session.ts';
import { Tmux } from './tmux.ts';

test('s: the skip question names one run, dies with it, expires, and never skips another run', { timeout: 300_000 }, async () => {
  const t = new TerminalCase('skip', { name: 'e2e-skip', sweep: '{batch_size: [1, 2, 3]}' });
  try {
    t.launch(120, 40, `run ${t.yaml} --out ${t.out}`, { E2E_SLEEP_MS: '12000' });
    await t.tmux.waitFor((s) => s.includes('Press Enter to start'), 'the pre-flight', 120_000);
    t.tmux.keys('Enter');
    await t.tmux.waitFor((s) => /bs=1 c1\s+measure/.test(s), 'run bs=1 measuring', 90_000);
    t.tmux.keys('s', true);
    // the question names the run it would skip, by label and run id
    await t.tmux.waitFor((s) => /press s again to skip run 0000-\w+-c1 \(llamacpp bs=1 c1\)/.test(s), 'the question naming run 0000');
    // that run ends without a second s: the question goes with it
    await t.tmux.waitFor((s) => /run 0000-\w+-c1 \(llamacpp bs=1 c1\) ended \(completed\) before the skip was confirmed/.test(s) || /bs=2 c1\s+measure/.test(s), 'run bs=1 to end', 90_000);
    await t.tmux.waitFor((s) => /bs=2 c1\s+measure/.test(s), 'run bs=2 measuring', 90_000);
    let screen = t.tmux.capture();
    assert.doesNotMatch(screen, /press s again/, 'no question left over from run bs=1');
    // one s during run bs=2 asks about bs=2; it skips nothing
    t.tmux.keys('s', true);
    screen = await t.tmux.waitFor((s) => /press s again to skip run 0001-\w+-c1 \(llamacpp bs=2 c1\)/.test(s), 'the question naming run 0001');
    assert.match(screen, /0 skipped/);
    // unanswered, it expires on its own (a few seconds) while bs=2 still runs
    screen = await t.tmux.waitFor((s) => s.includes('not confirmed in time; cancelled'), 'the question to expire', 30_000);
    assert.match(screen, /0 skipped/);
    const code = await t.waitExit('the study to finish', 120_000);
    assert.equal(code, '0');
    assert.deepEqual(t.manifest().runs.map((r) => r.status), ['completed', 'completed', 'completed']);
  } finally {
    t.cleanup();
  }
});

test('R retries the failed and the skipped runs, as its label says', { timeout: 300_000 }, async () => {
  const t = new TerminalCase('retry-all', { name: 'e2e-retry-all', sweep: '{batch_size: [1, 2, 3]}' });
  const fixed = `${t.tmp}/fixed`;
  try {
    t.launch(120, 40, `run ${t.yaml} --out ${t.out}`, { E2E_SLEEP_MS: '6000', E2E_FAIL_BATCH: '1', E2E_FIXED_FILE: fixed });
    await t.tmux.waitFor((s) => s.includes('Press Enter to start'), 'the pre-flight', 120_000);
    t.tmux.keys('Enter');
    await t.tmux.waitFor((s) => /1 failed/.test(s) && /bs=2 c1\s+measure/.test(s), 'bs=1 failed, bs=2 measuring', 90_000);
    t.tmux.keys('s', true);
    await t.tmux.waitFor((s) => s.includes('press s again'), 'the skip question');
    t.tmux.keys('s', true);
    await t.tmux.waitFor((s) => /1 skipped/.test(s) && /bs=3 c1\s+measure/.test(s), 'bs=2 skipped, bs=3 measuring', 90_000);
    writeFileSync(fixed, 'the user fixed it\n');
    t.tmux.keys('R', true);
    await t.tmux.waitFor((s) => s.includes('retrying 2 failed, skipped, interrupted and invalid run(s)'), 'the retry notice');
    const code = await t.waitExit('the study to finish', 150_000);
    assert.equal(code, '0');
    assert.match(t.tmux.captureJoined(), /3 completed, 0 failed, 0 skipped/);
    const runs = t.manifest().runs;
    assert.deepEqual(runs.map((r) => r.status), ['completed', 'completed', 'completed']);
    assert.deepEqual(runs.map((r) => r.attempts.length), [2, 2, 1], 'the failed and the skipped run each got a second attempt');
  } finally {
    t.cleanup();
  }
});

test('two Backspaces in one read delete two characters of the filter', { timeout: 300_000 }, async () => {
  const t = new TerminalCase('backspace', { name: 'e2e-backspace', sweep: '{batch_size: [1, 2, 3]}' });
  try {
    t.launch(120, 40, `run ${t.yaml} --out ${t.out}`, { E2E_SLEEP_MS: '30000' });
    await t.tmux.waitFor((s) => s.includes('Press Enter to start'), 'the pre-flight', 120_000);
    t.tmux.keys('Enter');
    await t.tmux.waitFor((s) => /1 running/.test(s), 'the study screen', 90_000);
    t.tmux.keys('/', true);
    t.tmux.keys('bs=3xy', true);
    await t.tmux.waitFor((s) => s.includes('filter: bs=3xy_'), 'the typed filter');
    // key repeat over SSH: both DEL bytes reach llem in one read
    t.tmux.keys('\u007f\u007f', true);
    await t.tmux.waitFor((s) => s.includes('filter: bs=3_'), 'two characters deleted');
    t.tmux.keys('Enter');
    const screen = await t.tmux.waitFor((s) => /row 1\/1 \(of 3\)/.test(s), 'the filtered table');
    assert.doesNotMatch(screen, /no rows match/);
    t.tmux.keys('C-c');
    assert.equal(await t.waitExit('llem to exit after Ctrl+C'), '130');
  } finally {
    t.cleanup();
  }
});

test('hints match the keys: the too-small screen, a stale notice, watch mode', { timeout: 300_000 }, async () => {
  const t = new TerminalCase('hints', { name: 'e2e-hints', sweep: '{batch_size: [1, 2, 3, 4, 5]}', configGapS: 8 });
  const watchExit = `${t.tmp}/watch-exit`;
  const watcher = new Tmux('hints-watch');
  try {
    t.launch(120, 40, `run ${t.yaml} --out ${t.out}`, { E2E_SLEEP_MS: '4000' });
    await t.tmux.waitFor((s) => s.includes('Press Enter to start'), 'the pre-flight', 120_000);
    t.tmux.keys('Enter');
    await t.tmux.waitFor((s) => /config gap: \S+ left/.test(s), 'the first config gap', 90_000);
    // s during a gap: the notice says why; it is gone once the next run starts
    t.tmux.keys('s', true);
    await t.tmux.waitFor((s) => s.includes('s: no run is running (c cuts the gap short)'), 'the notice');
    let screen = await t.tmux.waitFor((s) => /bs=2 c1\s+measure/.test(s), 'the next run', 90_000);
    assert.doesNotMatch(screen, /no run is running/, 'the stale notice is cleared when the next run starts');

    // too small: the keys it names work there, and q asks its question there
    t.tmux.resize(40, 10);
    screen = await t.tmux.waitFor((s) => s.includes('terminal too small'), 'the too-small screen');
    assert.match(screen, /q quit after run · Ctrl\+C abort now/);
    assert.doesNotMatch(screen, /q quits/);
    t.tmux.keys('q', true);
    await t.tmux.waitFor((s) => s.includes('quit after the current run? press q'), 'the quit question on the too-small screen');
    t.tmux.keys('x', true);
    await t.tmux.waitFor((s) => s.includes('cancelled'), 'the question cancelled');
    t.tmux.resize(120, 40);

    // watch mode (another terminal): no hint for a key it does not have
    const studyDir = t.studyDir()!;
    watcher.start(120, 40, repo);
    watcher.sendLine(`env -u CI node bin/llem.js watch ${studyDir}; echo $? > ${watchExit}`);
    screen = await watcher.waitFor((s) => s.includes('[watching]') && /config gap: \S+ left/.test(s), 'a gap seen by llem watch', 120_000);
    assert.doesNotMatch(screen, /cuts it short/);
    assert.doesNotMatch(screen, /quit after run/);
    assert.match(screen, /q quit/);
    watcher.keys('?', true);
    screen = await watcher.waitFor((s) => s.includes('Keys (q, Esc or ? closes'), 'the watch help');
    assert.match(screen, /Ctrl\+C\s+quit/);
    assert.match(screen, /not here: p s c r R \(read-only/);
    assert.doesNotMatch(screen, /abort now/);
    watcher.keys('q', true);
    await watcher.waitFor((s) => !s.includes('Keys (q, Esc'), 'the help to close');
    watcher.keys('q', true);
    await waitUntil(() => existsSync(watchExit) && readFileSync(watchExit, 'utf8').trim() === '0', 'llem watch to leave with 0', 30_000, () => watcher.capture());
  } finally {
    watcher.kill();
    t.cleanup();
  }
});

