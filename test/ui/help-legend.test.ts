// The help screen's legend names every mark a run can show (one per RunStatus, `invalid` included)
// and every flag short code, in both glyph sets, at 80 columns as on a wide terminal.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FLAG_CODES } from '../../src/results/schema.ts';
import { RUN_STATUSES } from '../../src/study-dir/statuses.ts';
import { FLAG_LEGEND } from '../../src/ui/flags.ts';
import { helpLines } from '../../src/ui/help-view.ts';
import { initialState } from '../../src/ui/state.ts';
import { glyphsFor } from '../../src/ui/theme.ts';
import { makePlan } from './fixtures.ts';

const state = initialState({ plan: makePlan({ configs: 3, cycles: 2 }), columns: 80, rows: 30, nowMs: 0 });

/** The lines of one titled section of the help (up to the next bold title). */
function section(width: number, ascii: boolean, title: string): string[] {
  const lines = helpLines(state, glyphsFor({ color: true, ascii, escapes: true }), width);
  const start = lines.findIndex((l) => l.bold && l.text.startsWith(title));
  assert.ok(start >= 0, `a "${title}" section`);
  const end = lines.findIndex((l, i) => i > start && l.bold);
  return lines.slice(start + 1, end < 0 ? undefined : end).map((l) => l.text);
}

for (const ascii of [false, true]) {
  const glyphs = glyphsFor({ color: true, ascii, escapes: true });
  describe(`help legend, ${ascii ? 'ASCII' : 'Unicode'} glyphs`, () => {
    test('the status marks are distinct', () => {
      const marks = RUN_STATUSES.map((st) => glyphs.status[st]);
      assert.equal(new Set(marks).size, marks.length, marks.join(' '));
    });
    for (const width of [80, 200]) {
      test(`every status: its mark and its word on one line (${width} columns)`, () => {
        const marks = section(width, ascii, 'Marks');
        for (const status of RUN_STATUSES) {
          const item = `${glyphs.status[status]} ${status}`;
          assert.ok(
            marks.some((l) => l.includes(`  ${item}`)),
            `"${item}" in the legend:\n${marks.join('\n')}`,
          );
        }
        assert.ok(marks.every((l) => l.length <= width), `fits ${width} columns:\n${marks.join('\n')}`);
      });
      test(`every flag code: its short code and its name (${width} columns)`, () => {
        const flags = section(width, ascii, 'Flags');
        assert.equal(flags.length, FLAG_CODES.length, flags.join('\n'));
        const shorts = FLAG_CODES.map((code) => FLAG_LEGEND[code].short);
        assert.equal(new Set(shorts).size, shorts.length, `short codes are distinct: ${shorts.join(' ')}`);
        for (const code of FLAG_CODES) {
          const row = new RegExp(`^ {2}${FLAG_LEGEND[code].short} +${code}$`);
          assert.equal(flags.filter((l) => row.test(l)).length, 1, `${code}:\n${flags.join('\n')}`);
        }
      });
    }
  });
}
