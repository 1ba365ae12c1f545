// Screens that show what the user needs, in a real terminal (tmux): the pre-flight grid, the
// detail of a failure (full error, attempts, the log's last lines), follow mode, labels and flags
// at 80 columns, the help, and a selection that stays visible without colour.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TerminalCase } from './terminal-session.ts';

test('pre-flight at 80×24: a scrollable grid of configs, skipped ones with reasons, each reason once', { timeout: 300_000 }, async () => {
  const t = new TerminalCase('grid', { name: 'e2e-grid', sweep: '{batch_size: [1, 2, 3, 4, 5, 6], warmup.max_prompts: [1, 10, 20]}', cycles: 2 });
  try {
    t.launch(80, 24, `run ${t.yaml} --out ${t.out}`);
    let screen = await t.tmux.waitFor((s) => s.includes('Press Enter to start'), 'the pre-flight', 120_000);
    assert.match(screen, /12 configs × 2 cycles = 24 runs/);
    assert.match(screen, /bs\s+max_prompts\s+runs\s+per run\s+memory\s+timeout/, 'the grid has its columns');
    assert.match(screen, /^\s+1\s+10\s+2\s+\S+\s+(fits|tight|won't fit|unknown)\b.*\s\d+m\d\ds\s*$/m, 'a row: values, runs, time per run, memory fit, timeout');
    assert.match(screen, /more lines/, 'the rest is a scroll away');
    t.tmux.keys('G', true);
    screen = await t.tmux.waitFor((s) => s.includes('reasons:'), 'the end of the pre-flight');
    assert.match(screen, /skipped 6 combinations/);
    assert.match(screen, /llamacpp bs=6 warmup\.max_prompts=1\s+\[\d\]/);
    const reasonLines = screen.split('\n').filter((l) => /^\s+\[\d+\] /.test(l));
    const skipReason = reasonLines.filter((l) => l.includes('warmup.max_prompts 1 leaves no room for the CV window'));
    assert.equal(skipReason.length, 1, `the skip reason once:\n${screen}`);
    assert.equal(new Set(reasonLines.map((l) => l.replace(/^\s+\[\d+\] /, ''))).size, reasonLines.length, 'no reason twice');
    t.tmux.keys('g', true);
    await t.tmux.waitFor((s) => /^\s+1\s+10\s+2\s/m.test(s), 'back to the top');
    t.tmux.keys('q', true);
    assert.equal(await t.waitExit('llem to leave the pre-flight'), '0');
  } finally {
    t.cleanup();
  }
});

test('detail of a failure: the whole error, the attempts, the last lines of worker.log; the end says how to retry', { timeout: 300_000 }, async () => {
  const t = new TerminalCase('detail', { name: 'e2e-detail', sweep: '{batch_size: [1, 2, 3]}' });
  try {
    t.launch(80, 24, `run ${t.yaml} --out ${t.out}`, { E2E_SLEEP_MS: '120000', E2E_FAIL_BATCH: '1' });
    await t.tmux.waitFor((s) => s.includes('Press Enter to start'), 'the pre-flight', 120_000);
    t.tmux.keys('Enter');
    await t.tmux.waitFor((s) => /1 failed/.test(s) && /1 running/.test(s), 'bs=1 failed, bs=2 running', 90_000);
    t.tmux.keys('g', true);
    t.tmux.keys('Enter');
    let screen = await t.tmux.waitFor((s) => s.includes('attempt 1: failed BackendError'), 'the detail screen');
    assert.match(screen, /backend failed on purpose for batch_size 1/);
    assert.match(screen, /END-OF-ERROR/, 'the error in full, wrapped, not cut');
    screen = await t.tmux.waitFor((s) => s.includes('worker.log, last'), 'the log tail');
    assert.match(screen, /│ fixture: layer \d+\/12 loaded/, "the child's stdout");
    assert.match(screen, /more lines/);
    t.tmux.keys('G', true);
    screen = await t.tmux.waitFor((s) => s.includes('RuntimeError: CUDA error: out of memory (fixture stderr tail)'), 'the bottom of the log');
    assert.match(screen, /r retries this config's 1 failed/);
    // retry it (and skip the long bs=2 so that it runs now): a second attempt, listed under the first
    // while bs=3 runs
    t.tmux.keys('r', true);
    await t.tmux.waitFor((s) => s.includes('retrying 1 run(s)'), 'the retry');
    t.tmux.keys('s', true);
    await t.tmux.waitFor((s) => s.includes('press s again'), 'the skip question');
    t.tmux.keys('s', true);
    t.tmux.keys('g', true);
    screen = await t.tmux.waitFor((s) => s.includes('attempt 2: failed BackendError'), 'the second attempt', 90_000);
    assert.match(screen, /attempt 1: failed BackendError/);
    t.tmux.keys('C-c');
    assert.equal(await t.waitExit('llem to exit'), '130');
    const after = t.tmux.captureJoined();
    assert.match(after, new RegExp(`retry the 1 failed and 1 skipped run\\(s\\) with: llem resume ${t.studyDir()!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} --retry-failed`));
  } finally {
    t.cleanup();
  }
});

test('at 80 columns: follow mode and f, labels told apart, flag codes, a help that scrolls and closes with q', { timeout: 300_000 }, async () => {
  const t = new TerminalCase('follow', { name: 'e2e-follow', sweep: '{batch_size: [1, 2, 3, 4, 5, 6, 7], warmup.max_prompts: [10, 20]}' });
  const runningRow = (s: string) => s.split('\n').find((l) => l.includes('▶')) ?? '';
  try {
    t.launch(80, 24, `run ${t.yaml} --out ${t.out}`, { E2E_SLEEP_MS: '2000' });
    await t.tmux.waitFor((s) => s.includes('Press Enter to start'), 'the pre-flight', 120_000);
    t.tmux.keys('Enter');
    // the first row completes: the metric columns fill and squeeze the label column
    let screen = await t.tmux.waitFor((s) => /[1-9] done/.test(s), 'a completed run', 90_000);
    assert.match(screen, /bs=1 max_prompts=10/);
    assert.match(screen, /bs=1 max_prompts=20/);
    assert.match(screen, /BM SW/, 'flags as codes');
    // follow mode: far below the first page, the selection is on the running row
    screen = await t.tmux.waitFor((s) => /bs=6 max_prompts=10/.test(runningRow(s)), 'a run below the first page', 120_000);
    assert.match(runningRow(screen), /›/, `the selection follows the running run:\n${screen}`);
    assert.match(screen, /· following/);
    // moving stops following; f jumps back and follows again
    t.tmux.keys('k', true);
    screen = await t.tmux.waitFor((s) => !runningRow(s).includes('›') && runningRow(s) !== '', 'the selection to stay where the user put it', 60_000);
    assert.doesNotMatch(screen, /· following/);
    t.tmux.keys('f', true);
    screen = await t.tmux.waitFor((s) => runningRow(s).includes('›'), 'f: back on the running row', 60_000);
    // help: scrolls to a legend of every mark and flag code, q closes it
    t.tmux.keys('?', true);
    await t.tmux.waitFor((s) => s.includes('Keys (q, Esc or ? closes'), 'the help');
    t.tmux.keys('G', true);
    screen = await t.tmux.waitFor((s) => s.includes('BM  builtin_model'), 'the end of the help');
    assert.match(screen, /SW\s+short_window/);
    t.tmux.keys('q', true);
    await t.tmux.waitFor((s) => !s.includes('builtin_model') && /cycle 1\/1/.test(s), 'q to close the help');
    t.tmux.keys('C-c');
    assert.equal(await t.waitExit('llem to exit'), '130');
  } finally {
    t.cleanup();
  }
});

test('NO_COLOR: the selected row is still marked (bold and underlined)', { timeout: 300_000 }, async () => {
  const t = new TerminalCase('nocolor', { name: 'e2e-nocolor', sweep: '{batch_size: [1, 2, 3]}' });
  try {
    t.launch(100, 30, `run ${t.yaml} --out ${t.out}`, { E2E_SLEEP_MS: '30000', NO_COLOR: '1' });
    await t.tmux.waitFor((s) => s.includes('Press Enter to start'), 'the pre-flight', 120_000);
    t.tmux.keys('Enter');
    await t.tmux.waitFor((s) => /1 running/.test(s), 'the study screen', 90_000);
    const raw = t.tmux.captureAttributes();
    const selected = raw.split('\n').find((l) => l.includes('›')) ?? '';
    assert.doesNotMatch(raw, /\u001b\[(3[0-8]|9[0-7])(;\d+)*m/, 'no colour at all');
    assert.match(selected, /\u001b\[(?:[0-9;]*;)?4(?:;[0-9;]*)?m/, `the selected row is underlined: ${JSON.stringify(selected)}`);
    t.tmux.keys('C-c');
    assert.equal(await t.waitExit('llem to exit'), '130');
  } finally {
    t.cleanup();
  }
});
