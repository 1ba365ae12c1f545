import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { computeLayout, MIN_COLUMNS, MIN_ROWS, scrollOffset } from '../../src/ui/layout.ts';

describe('layout as a function of the terminal size', () => {
  const cases = [
    { size: [80, 24], table: 9, live: 5, log: 4, columns: ['label', 'cycles', 'energy', 'jPerToken', 'tokensPerS', 'duration', 'flags'] },
    { size: [120, 40], table: 20, live: 6, log: 8, columns: ['label', 'cycles', 'energy', 'jPerToken', 'tokensPerS', 'duration', 'flags'] },
    { size: [60, 15], table: 6, live: 3, log: 0, columns: ['label', 'cycles', 'energy', 'jPerToken', 'tokensPerS'] },
    { size: [MIN_COLUMNS, MIN_ROWS], table: 3, live: 3, log: 0, columns: ['label', 'cycles', 'energy', 'tokensPerS'] },
  ] as const;
  for (const c of cases) {
    test(`${c.size[0]}×${c.size[1]}`, () => {
      const [columns, rows] = c.size;
      const layout = computeLayout(columns, rows, 3);
      assert.equal(layout.kind, 'full');
      if (layout.kind !== 'full') return;
      // rows − 1: a frame `rows` high makes Ink 6.8 clear the screen on every frame
      assert.equal(layout.frameRows, rows - 1);
      assert.equal(layout.headerRows + layout.tableRows + 1 + layout.liveRows + layout.logRows + layout.footerRows, rows - 1);
      assert.deepEqual([layout.tableRows, layout.liveRows, layout.logRows], [c.table, c.live, c.log]);
      assert.deepEqual(layout.tableColumns.map((col) => col.id), c.columns);
      const width = 2 + layout.tableColumns.reduce((sum, col) => sum + col.width, 0) + layout.tableColumns.length - 1;
      assert.ok(width <= columns, `table ${width} wider than ${columns}`);
      assert.ok(layout.tableColumns[0].width >= 16);
    });
  }

  const tooSmall = [
    [MIN_COLUMNS - 1, 24],
    [80, MIN_ROWS - 1],
    [20, 5],
  ] as const;
  for (const [columns, rows] of tooSmall) {
    test(`${columns}×${rows} is too small and says what it needs`, () => {
      assert.deepEqual(computeLayout(columns, rows), { kind: 'too_small', columns, rows, needColumns: MIN_COLUMNS, needRows: MIN_ROWS });
    });
  }

  test('many cycles widen the status cells up to 20 columns', () => {
    const layout = computeLayout(120, 40, 50);
    assert.equal(layout.kind === 'full' && layout.tableColumns.find((c) => c.id === 'cycles')?.width, 20);
  });
});

describe('scrollOffset keeps the selection visible, moving as little as possible', () => {
  const cases = [
    { selected: 0, previous: 0, visible: 10, total: 100, offset: 0 },
    { selected: 9, previous: 0, visible: 10, total: 100, offset: 0 },
    { selected: 10, previous: 0, visible: 10, total: 100, offset: 1 },
    { selected: 50, previous: 45, visible: 10, total: 100, offset: 45 },
    { selected: 44, previous: 45, visible: 10, total: 100, offset: 44 },
    { selected: 99, previous: 0, visible: 10, total: 100, offset: 90 },
    { selected: 5, previous: 3, visible: 10, total: 8, offset: 0 },
    { selected: 9999, previous: 0, visible: 20, total: 10000, offset: 9980 },
    { selected: 95, previous: 95, visible: 10, total: 100, offset: 90 },
  ];
  for (const c of cases) {
    test(`selected ${c.selected}, previous ${c.previous}, ${c.visible} of ${c.total} → ${c.offset}`, () => {
      assert.equal(scrollOffset(c.selected, c.previous, c.visible, c.total), c.offset);
    });
  }
});
