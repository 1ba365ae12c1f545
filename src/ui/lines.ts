// Screens that scroll (pre-flight grid, detail, help) are lists of styled lines built by pure
// functions of the state, so the reducer can clamp a scroll position and tests can read a screen
// without rendering it. Colours are names; components decide whether to draw them (NO_COLOR).

export interface StyledLine {
  text: string;
  color?: string;
  bold?: boolean;
  dim?: boolean;
}

/** A scrollable list, possibly too long to build whole (a 10,000-config pre-flight): lines on demand. */
export interface ScrollContent {
  length: number;
  line(index: number): StyledLine;
}

export function contentOf(lines: StyledLine[]): ScrollContent {
  return { length: lines.length, line: (i) => lines[i] ?? { text: '' } };
}

/** Hard wrap to `width` columns, at spaces where there are some; `indent` starts continuation lines. */
export function wrapText(text: string, width: number, indent = ''): string[] {
  const out: string[] = [];
  for (const paragraph of text.split('\n')) {
    let rest = paragraph;
    let prefix = '';
    if (rest === '') {
      out.push('');
      continue;
    }
    while (rest.length > 0) {
      const room = Math.max(1, width - prefix.length);
      if (rest.length <= room) {
        out.push(prefix + rest);
        break;
      }
      let cut = rest.lastIndexOf(' ', room);
      if (cut <= room / 3) cut = room;
      out.push(prefix + rest.slice(0, cut).trimEnd());
      rest = rest.slice(cut).trimStart();
      prefix = indent;
    }
  }
  return out;
}

/** Clamp a first-visible-line so that the view is never scrolled past its end. */
export function clampScroll(scroll: number, length: number, viewport: number): number {
  return Math.max(0, Math.min(scroll, length - Math.max(1, viewport)));
}
