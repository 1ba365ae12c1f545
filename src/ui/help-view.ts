// The help screen as lines: every key of the screen underneath (from the keymap, with why a key
// does nothing now), then a legend for every mark the screens draw and every flag code.
import { FLAG_LEGEND } from './flags.ts';
import { padEnd } from './format.ts';
import { helpEntries, modeOf, READ_ONLY, runOnlyKeys, type HelpEntry } from './keymap.ts';
import { wrapText, type StyledLine } from './lines.ts';
import type { UiState } from './state.ts';
import type { Glyphs } from './theme.ts';

/** Where a key's description starts: after "  key     label          ". */
const DESCRIPTION_COLUMN = 2 + 7 + 1 + 15 + 1;

const GROUP_TITLES: Record<HelpEntry['group'], string> = { move: 'Move', view: 'View', study: 'Study', app: 'App' };

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
  legend(`  ${s.pending} pending  ${s.running} running  ${s.completed} completed  ${s.failed} failed  ${s.skipped} skipped  ${s.interrupted} interrupted  (cycles column: one mark per cycle)`);
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
