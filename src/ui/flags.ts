// The table's flags column: the validity flags' short codes (src/results/flags.ts, the one table of
// them, shared with `llem results` and its legend) fitted to a cell.
import { shortFlag } from '../results/flags.ts';

export { FLAG_LEGEND, shortFlag as flagShort } from '../results/flags.ts';

/** Codes that fit `width`: "BM SW", or "BM +2" when they do not all fit (one alone is left to the cell to cut). */
export function flagCell(codes: readonly string[], width: number): string {
  const shorts = codes.map(shortFlag);
  const all = shorts.join(' ');
  if (all.length <= width || shorts.length === 1) return all;
  for (let shown = shorts.length - 1; shown >= 0; shown--) {
    const text = [...shorts.slice(0, shown), `+${shorts.length - shown}`].join(' ');
    if (text.length <= width) return text;
  }
  return `${shorts.length}`;
}
