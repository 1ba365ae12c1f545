// README's key list is the keymap's: a key added, removed or relabelled fails here until README
// says the same (the message holds the block to paste).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { keysMarkdown, README_KEYS_BEGIN, README_KEYS_END } from '../../src/ui/keymap-doc.ts';

test('README lists exactly the keys of the keymap', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf(README_KEYS_BEGIN);
  const end = readme.indexOf(README_KEYS_END);
  assert.ok(start !== -1 && end > start, `README.md needs the generated block between ${README_KEYS_BEGIN} and ${README_KEYS_END}`);
  const documented = readme.slice(start + README_KEYS_BEGIN.length, end).trim();
  const expected = keysMarkdown();
  assert.equal(documented, expected, `README.md's key list differs from src/ui/keymap.ts; replace the block with:\n${README_KEYS_BEGIN}\n${expected}\n${README_KEYS_END}`);
});
