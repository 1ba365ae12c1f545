import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { RunnerEvent } from '../../src/runner/events.ts';
import { appendCapped, formatDuration, formatNumber, sparkline, truncate } from '../../src/ui/format.ts';
import { followJournal, parseJournalLine } from '../../src/ui/journal.ts';
import { initialState } from '../../src/ui/state.ts';
import { createUiStore } from '../../src/ui/store.ts';
import { themeFromEnv, toAscii } from '../../src/ui/theme.ts';
import { at, makePlan } from './fixtures.ts';

describe('store', () => {
  test('many dispatches make one publish; state is current at once; flush publishes now', async () => {
    const plan = makePlan({ configs: 3, cycles: 1 });
    const store = createUiStore(initialState({ plan, columns: 80, rows: 24, nowMs: 0 }), { minPublishIntervalMs: 50 });
    let heard = 0;
    store.subscribe(() => heard++);
    for (let k = 1; k <= 100; k++) store.dispatch({ type: 'tick', nowMs: k });
    assert.equal(store.getState().nowMs, 100);
    assert.equal(store.getPublished().nowMs, 0);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(heard, 1);
    assert.equal(store.getPublished().nowMs, 100);
    store.dispatch({ type: 'tick', nowMs: 101 });
    store.flush();
    assert.equal(heard, 2);
    store.dispatch({ type: 'tick', nowMs: 101 }); // no change: nothing to publish
    store.flush();
    assert.equal(heard, 2);
    store.dispose();
  });
});

describe('journal', () => {
  test('parseJournalLine accepts runner events only', () => {
    assert.equal(parseJournalLine(JSON.stringify({ type: 'paused', at, paused: true }))?.type, 'paused');
    assert.equal(parseJournalLine('{"type":"nonsense"}'), null);
    assert.equal(parseJournalLine('{"type":"paus'), null);
    assert.equal(parseJournalLine(''), null);
  });

  test('follows appends, holds torn lines, counts bad ones, restarts after truncation', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llem-journal-'));
    const path = join(dir, 'events.jsonl');
    const seen: RunnerEvent[] = [];
    const follower = followJournal(path, (e) => seen.push(e), { pollMs: 60_000 });
    try {
      await follower.poll(); // no file yet
      const paused = JSON.stringify({ type: 'paused', at, paused: true });
      await writeFile(path, paused + '\ngarbage\n' + paused.slice(0, 10));
      await follower.poll();
      assert.equal(seen.length, 1);
      assert.equal(follower.badLines, 1);
      await appendFile(path, paused.slice(10) + '\n');
      await follower.poll();
      assert.equal(seen.length, 2);
      await writeFile(path, JSON.stringify({ type: 'quit_requested', at, requested: true }) + '\n');
      await follower.poll();
      assert.deepEqual(seen.map((e) => e.type), ['paused', 'paused', 'quit_requested']);
    } finally {
      follower.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('format and theme', () => {
  const durations: Array<[number | null, string]> = [[null, '–'], [0, '0s'], [59.4, '59s'], [61, '1m01s'], [3723, '1h02m'], [200_000, '2d07h']];
  for (const [s, text] of durations) test(`formatDuration(${s}) = ${text}`, () => assert.equal(formatDuration(s), text));
  const numbers: Array<[number | null, string]> = [[null, '–'], [0, '0'], [0.1234, '0.123'], [1.234, '1.23'], [12.34, '12.3'], [123.4, '123'], [12_345, '12.3k'], [12_345_678, '12.3M']];
  for (const [n, text] of numbers) test(`formatNumber(${n}) = ${text}`, () => assert.equal(formatNumber(n), text));
  test('sparkline scales between min and max, a missing reading is a blank', () => {
    assert.equal(sparkline([0, 7, null, 3.5], 10, ['0', '1', '2', '3', '4', '5', '6', '7']), '07 4');
    assert.equal(sparkline([5, 5], 10, ['a', 'b', 'c']), 'bb');
    assert.equal(sparkline([1, 2, 3, 4], 2, ['a', 'b']), 'ab');
  });
  test('truncate and appendCapped', () => {
    assert.equal(truncate('abcdef', 4), 'abc…');
    assert.equal(truncate('abc', 4), 'abc');
    assert.deepEqual(appendCapped([1, 2, 3], [4, 5], 4), [2, 3, 4, 5]);
    assert.deepEqual(appendCapped([1], [2, 3, 4, 5, 6], 3), [4, 5, 6]);
  });
  const themes: Array<[NodeJS.ProcessEnv, { color: boolean; ascii: boolean; escapes: boolean }]> = [
    [{ TERM: 'xterm', LANG: 'en_US.UTF-8' }, { color: true, ascii: false, escapes: true }],
    [{ TERM: 'xterm', LANG: 'en_US.UTF-8', NO_COLOR: '1' }, { color: false, ascii: false, escapes: true }],
    [{ TERM: 'xterm', LANG: 'en_US.UTF-8', NO_COLOR: '' }, { color: true, ascii: false, escapes: true }],
    [{ TERM: 'dumb', LANG: 'en_US.UTF-8' }, { color: false, ascii: true, escapes: false }],
    [{ TERM: 'xterm', LANG: 'C' }, { color: true, ascii: true, escapes: true }],
    [{ TERM: 'xterm', LANG: 'en_US.UTF-8', LLEM_ASCII: '1' }, { color: true, ascii: true, escapes: true }],
  ];
  for (const [env, theme] of themes) test(`theme for ${JSON.stringify(env)}`, () => assert.deepEqual(themeFromEnv(env), theme));
  test('toAscii replaces our non-ASCII characters', () => assert.equal(toAscii('a · b – 3×4 …'), 'a . b - 3x4 ~'));
});
