// Where everything goes, as a pure function of the terminal size (lazygit-style), so every size
// can be a row of a table test. Frames are at most rows − 1 high: in Ink 6.8 a frame exactly
// `rows` high makes Ink clear the whole screen on every frame.
export const MIN_COLUMNS = 50;
export const MIN_ROWS = 12;

export type TableColumnId = 'label' | 'cycles' | 'ci' | 'energy' | 'jPerToken' | 'tokensPerS' | 'duration' | 'flags';

export interface TableColumn {
  id: TableColumnId;
  title: string;
  width: number;
  align: 'left' | 'right';
}

export type Layout =
  | { kind: 'too_small'; columns: number; rows: number; needColumns: number; needRows: number }
  | {
      kind: 'full';
      columns: number;
      /** Height of the frame we draw: rows − 1. */
      frameRows: number;
      headerRows: number;
      /** Table body rows (not counting its title line). */
      tableRows: number;
      liveRows: number;
      logRows: number;
      footerRows: number;
      tableColumns: TableColumn[];
    };

const HEADER_ROWS = 2;
const FOOTER_ROWS = 2; // notice/prompt line + key hints

const OPTIONAL_COLUMNS: TableColumn[] = [
  { id: 'energy', title: 'energy J', width: 9, align: 'right' },
  { id: 'tokensPerS', title: 'tok/s', width: 8, align: 'right' },
  { id: 'jPerToken', title: 'J/tok', width: 8, align: 'right' },
  { id: 'duration', title: 'dur', width: 7, align: 'right' },
  { id: 'flags', title: 'flags', width: 12, align: 'left' },
];
export const METRIC_COLUMN_IDS: readonly TableColumnId[] = OPTIONAL_COLUMNS.map((c) => c.id);
/** n_cycles: auto: the interval of the target metric so far and why a config stopped ("±1.2% met"). */
const CI_COLUMN: TableColumn = { id: 'ci', title: '±CI', width: 11, align: 'left' };
const MIN_LABEL_WIDTH = 16;

export interface TableColumnNeeds {
  /** Widest label the table would like to show whole (its shortest fitting style). */
  labelWidth?: number;
  /** Metric columns that hold a value in some row; the others read all dashes. */
  withData?: ReadonlySet<TableColumnId>;
  /** An n_cycles: auto study: the CI column, kept before every metric column. */
  withCi?: boolean;
}

/**
 * Columns that fit in `columns`, dropped from the least important first; the label takes the rest.
 * Columns that have data come first and may squeeze the label to its minimum; all-dash columns
 * only get room the label does not need.
 */
export function tableColumnsFor(columns: number, nCycles: number, needs: TableColumnNeeds = {}): TableColumn[] {
  const cyclesWidth = Math.max(6, Math.min(nCycles, 20));
  const withData = needs.withData ?? new Set(METRIC_COLUMN_IDS);
  const labelWant = Math.max(MIN_LABEL_WIDTH, needs.labelWidth ?? MIN_LABEL_WIDTH);
  // selection marker (2) + one space between columns
  let budget = columns - 2 - (cyclesWidth + 1);
  const kept = new Set<TableColumnId>();
  if (needs.withCi && budget - (CI_COLUMN.width + 1) >= MIN_LABEL_WIDTH) {
    kept.add(CI_COLUMN.id);
    budget -= CI_COLUMN.width + 1;
  }
  for (const col of OPTIONAL_COLUMNS) {
    if (withData.has(col.id) && budget - (col.width + 1) >= MIN_LABEL_WIDTH) {
      kept.add(col.id);
      budget -= col.width + 1;
    }
  }
  for (const col of OPTIONAL_COLUMNS) {
    if (!kept.has(col.id) && budget - (col.width + 1) >= labelWant) {
      kept.add(col.id);
      budget -= col.width + 1;
    }
  }
  const labelWidth = Math.max(MIN_LABEL_WIDTH, budget);
  const order: TableColumnId[] = ['label', 'cycles', 'ci', 'energy', 'jPerToken', 'tokensPerS', 'duration', 'flags'];
  const all: TableColumn[] = [
    { id: 'label', title: 'config', width: labelWidth, align: 'left' },
    { id: 'cycles', title: 'cycles', width: cyclesWidth, align: 'left' },
    ...[CI_COLUMN, ...OPTIONAL_COLUMNS].filter((c) => kept.has(c.id)),
  ];
  return order.flatMap((id) => all.filter((c) => c.id === id));
}

export function computeLayout(columns: number, rows: number, nCycles = 1, needs: TableColumnNeeds = {}): Layout {
  if (columns < MIN_COLUMNS || rows < MIN_ROWS) {
    return { kind: 'too_small', columns, rows, needColumns: MIN_COLUMNS, needRows: MIN_ROWS };
  }
  const frameRows = rows - 1;
  const body = frameRows - HEADER_ROWS - FOOTER_ROWS;
  // Live panel: 4 lines inside a border when there is room, 2 bare lines on small screens.
  const liveRows = rows >= 30 ? 6 : rows >= 20 ? 5 : 3;
  const logRows = rows >= 40 ? 8 : rows >= 24 ? 4 : 0;
  const tableRows = body - liveRows - logRows - 1; // − table title line
  return {
    kind: 'full',
    columns,
    frameRows,
    headerRows: HEADER_ROWS,
    tableRows,
    liveRows,
    logRows,
    footerRows: FOOTER_ROWS,
    tableColumns: tableColumnsFor(columns, nCycles, needs),
  };
}

/** First visible row so that `selected` stays in view, moving the window as little as possible. */
export function scrollOffset(selected: number, previousOffset: number, visibleRows: number, total: number): number {
  if (total <= visibleRows || visibleRows <= 0) return 0;
  let offset = Math.min(previousOffset, total - visibleRows);
  if (selected < offset) offset = selected;
  if (selected >= offset + visibleRows) offset = selected - visibleRows + 1;
  return Math.max(0, offset);
}
