// The help screen as lines: every key of the screen underneath (from the keymap, with why a key
// does nothing now), then a legend for every mark the screens draw and every flag code.
import { RUN_STATUSES, type RunStatus } from '../study-dir/statuses.ts';
import { FLAG_LEGEND } from './flags.ts';
import { padEnd } from './format.ts';
import { helpEntries, modeOf, READ_ONLY, runOnlyKeys, type HelpEntry } from './keymap.ts';
import { wrapText, type StyledLine } from './lines.ts';
import type { UiState } from './state.ts';
import type { Glyphs } from './theme.ts';

/** Where a key's description starts: after "  key     label          ". */
const DESCRIPTION_COLUMN = 2 + 7 + 1 + 15 + 1;

const GROUP_TITLES: Record<HelpEntry['group'], string> = { move: 'Move', view: 'View', study: 'Study', app: 'App' };

/** Each status's mark in the legend, in words: a new status fails to compile until it has its row. */
const STATUS_WORDS: Record<RunStatus, string> = {
  pending: 'pending',
  running: 'running',
  completed: 'completed',
  failed: 'failed',
  skipped: 'skipped',
  interrupted: 'interrupted',
  invalid: 'invalid (measured, judged unusable: measured again)',
};

/**
 * Items joined by two spaces into lines of `width`, an item moved whole to the next line rather
 * than cut (so a mark never ends one line and its word starts the next); an item wider than a
 * line wraps on its own.
 */
function packed(items: string[], width: number, first: string, indent: string): string[] {
  const lines: string[] = [];
  let line: string | null = null;
  for (const item of items) {
    if (line === null) line = first + item;
    else if (line.length + 2 + item.length <= width) line = `${line}  ${item}`;
    else {
      lines.push(line);
      line = indent + item;
    }
  }
  if (line !== null) lines.push(line);
  return lines.flatMap((l) => wrapText(l, width, indent));
}

/** Lines `width` wide: long descriptions wrap under their own column. */
export function helpLines(state: UiState, glyphs: Glyphs, width: number): StyledLine[] {
  const entries = helpEntries(state);
  const lines: StyledLine[] = [{ text: 'Keys (q, Esc or ? closes; ↓/j ↑/k scroll)', bold: true }];
  for (const group of ['move', 'view', 'study', 'app'] as const) {
    const inGroup = entries.filter((e) => e.group === group);
    if (inGroup.length === 0) continue;
    lines.push({ text: GROUP_TITLES[group], bold: true });
    for (const e of inGroup) {
      const text = `  ${padEnd(e.keys, 7)} ${padEnd(e.label, 15)} ${e.description}${e.disabledReason ? ` (now: ${e.disabledReason})` : ''}`;
      for (const line of wrapText(text, width, ' '.repeat(DESCRIPTION_COLUMN))) lines.push({ text: line, dim: e.disabledReason !== null });
    }
  }
  if (modeOf(state) === 'watch') {
    const missing = runOnlyKeys(state);
    if (missing.length > 0) for (const line of wrapText(`  not here: ${missing.join(' ')} (${READ_ONLY})`, width, '    ')) lines.push({ text: line, dim: true });
  }
  const s = glyphs.status;
  const legend = (text: string) => {
    for (const line of wrapText(text, width, '     ')) lines.push({ text: line });
  };
  lines.push({ text: 'Marks', bold: true });
  const statusItems = [...RUN_STATUSES.map((status) => `${s[status]} ${STATUS_WORDS[status]}`), '(cycles column: one mark per cycle)'];
  for (const line of packed(statusItems, width, '  ', '     ')) lines.push({ text: line });
  legend(`  ${glyphs.selected}  the selected row (bold; underlined when there is no colour)`);
  legend(`  ${glyphs.spinner[0]}  the running run is starting, loading or warming up (a still ${glyphs.dot} while it takes its baseline or measures)`);
  legend(`  ${glyphs.spark.join('')}  power of the last samples, lowest to highest shown; a blank is no reading`);
  legend('  –  no value: not measured yet, or not measurable (never zero)');
  legend(`  ${glyphs.ellipsis}  cut to fit; labels are cut from the left, where they tell rows apart`);
  legend(`  [n]  in the pre-flight: reason number n, listed once below the grid`);
  lines.push({ text: 'Flags (flags column; the detail screen names them)', bold: true });
  for (const [code, { short }] of Object.entries(FLAG_LEGEND)) lines.push({ text: `  ${padEnd(short, 3)} ${code}` });
  return lines;
}
