// The full-screen pre-flight as lines: a fixed summary on top, then a scrollable grid with one
// row per config (swept values, runs to go, time per run, memory fit, timeout), the skipped
// combinations, and every distinct reason once (rows refer to reasons by number). The estimate's
// notes: in the summary for an auto study, below the grid for a fixed one (preflightTop says why).
import { formatDuration, padEnd, padStart } from './format.ts';
import type { ScrollContent, StyledLine } from './lines.ts';
import { wrapText } from './lines.ts';
import { countLine, estimateLine, FIT_WORDS, memoryLine, type PreflightModel } from './preflight.ts';

export const FIT_COLORS: Record<string, string> = { fits: 'green', tight: 'yellow', wont_fit: 'red', unknown: 'gray' };

interface GridColumn {
  title: string;
  width: number;
  align: 'left' | 'right';
}

const gridCache = new WeakMap<PreflightModel, GridColumn[]>();

function gridColumns(m: PreflightModel): GridColumn[] {
  const cached = gridCache.get(m);
  if (cached) return cached;
  const cols: GridColumn[] = [];
  if (m.columns.length === 0) {
    const widest = m.nConfigs === 0 ? 0 : Math.max(...Array.from({ length: Math.min(m.nConfigs, 1000) }, (_, i) => m.row(i).label.length));
    cols.push({ title: 'config', width: Math.min(60, Math.max(6, widest)), align: 'left' });
  }
  m.columns.forEach((c, k) => {
    const title = c.key === '' ? 'backend' : c.short;
    cols.push({ title, width: Math.min(40, Math.max(title.length, m.columnWidths[k] ?? 0)), align: 'left' });
  });
  cols.push({ title: 'runs', width: 4, align: 'right' }, { title: 'per run', width: 7, align: 'right' }, { title: 'memory', width: 14, align: 'left' }, { title: 'timeout', width: 7, align: 'right' });
  gridCache.set(m, cols);
  return cols;
}

function cells(cols: GridColumn[], values: string[]): string {
  return cols.map((c, k) => (c.align === 'right' ? padStart(values[k] ?? '', c.width) : padEnd(values[k] ?? '', c.width))).join('  ');
}

/**
 * The summary above the grid (not scrolled), its last line the grid's column titles. One line per
 * item, cut at the width by the screen. An auto study's runs expected is a range that rests on the
 * estimate's notes (history or the pilot assumption), so they are here, one line each leading with
 * their point; a fixed study's notes only qualify durations already tagged with their source and
 * sit below the grid (preflightBody), leaving the rows to the grid. Its length varies with the
 * notes: src/ui/scroll.ts sizes the grid's viewport by it.
 */
export function preflightTop(m: PreflightModel, nowMs: number): StyledLine[] {
  const extras = [
    m.skipped.length > 0 ? `${m.skipped.length} skipped` : null,
    m.warnings.length > 0 ? `${m.warnings.length} warning${m.warnings.length === 1 ? '' : 's'}` : null,
  ].filter(Boolean);
  return [
    { text: `llem · ${m.name}  (study ${m.hash.slice(0, 12)})${m.common ? `  · every config: ${m.common}` : ''}`, bold: true },
    { text: `${countLine(m)}  · backends: ${m.byBackend.map((b) => `${b.backend} ${b.configs}`).join(', ') || 'none'}` },
    ...(m.autoCycles ? [{ text: m.autoCycles.text }] : []),
    { text: estimateLine(m, nowMs), bold: true },
    ...(m.autoCycles ? m.estimateNotes.map((note): StyledLine => ({ text: `· ${note}`, color: 'gray' })) : []),
    { text: `${memoryLine(m)}${extras.length ? `  · ${extras.join(', ')} (below)` : ''}` },
    { text: `  ${cells(gridColumns(m), gridColumns(m).map((c) => c.title))}`, bold: true, color: 'blue' },
  ];
}

/** Grid rows, then skipped combinations, reasons and warnings: built line by line as they scroll into view. */
export function preflightBody(m: PreflightModel, width: number): ScrollContent {
  const cols = gridColumns(m);
  const tail: StyledLine[] = [];
  if (!m.autoCycles && m.estimateNotes.length > 0) {
    tail.push({ text: '' }, { text: 'estimate notes:', bold: true });
    for (const note of m.estimateNotes) for (const line of wrapText(`· ${note}`, width - 2, '  ')) tail.push({ text: `  ${line}`, color: 'gray' });
  }
  if (m.skipped.length > 0) {
    tail.push({ text: '' }, { text: `skipped ${m.skipped.length} combination${m.skipped.length === 1 ? '' : 's'} (invalid before anything runs):`, bold: true });
    for (const s of m.skipped) tail.push({ text: `  ${s.label}  ${s.reasons.map((n) => `[${n}]`).join('')}`, color: 'gray' });
  }
  if (m.reasons.length > 0) {
    tail.push({ text: '' }, { text: 'reasons:', bold: true });
    m.reasons.forEach((r, i) => {
      for (const line of wrapText(`[${i + 1}] ${r}`, width - 2, '    ')) tail.push({ text: `  ${line}` });
    });
  }
  if (m.warnings.length > 0) {
    tail.push({ text: '' });
    for (const w of m.warnings) for (const line of wrapText(`warning: ${w}`, width, '  ')) tail.push({ text: line, color: 'yellow' });
  }
  return {
    length: m.nConfigs + tail.length,
    line(i) {
      if (i >= m.nConfigs) return tail[i - m.nConfigs] ?? { text: '' };
      const row = m.row(i);
      const values = m.columns.length === 0 ? [row.label] : row.values.map((v) => v || '–');
      const memory = `${FIT_WORDS[row.fit]}${row.reason !== null ? ` [${row.reason}]` : ''}`;
      const text = `  ${cells(cols, [...values, String(row.runs), formatDuration(row.runS), memory, formatDuration(row.timeoutS)])}`;
      return { text, color: row.fit === 'fits' ? undefined : FIT_COLORS[row.fit] };
    },
  };
}
