// How much the terminal can show: colour (NO_COLOR, TERM=dumb), Unicode glyphs or ASCII, and
// whether escape sequences such as the alternate screen may be written at all.
export interface Theme {
  color: boolean;
  ascii: boolean;
  /** false for TERM=dumb: no alternate screen, no cursor control beyond what Ink itself writes. */
  escapes: boolean;
}

export function themeFromEnv(env: NodeJS.ProcessEnv = process.env): Theme {
  const term = env.TERM ?? '';
  const dumb = term === 'dumb';
  // https://no-color.org: present and non-empty disables colour.
  const noColor = typeof env.NO_COLOR === 'string' && env.NO_COLOR !== '';
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  const utf8Locale = /utf-?8/i.test(locale);
  const ascii = dumb || env.LLEM_ASCII === '1' || (locale !== '' && !utf8Locale);
  return { color: !dumb && !noColor, ascii, escapes: !dumb };
}

export interface Glyphs {
  spark: string[];
  spinner: string[];
  status: Record<'pending' | 'running' | 'completed' | 'failed' | 'skipped' | 'interrupted', string>;
  selected: string;
  up: string;
  down: string;
  ellipsis: string;
  border: 'round' | 'classic';
  separator: string;
  dot: string;
}

const unicodeGlyphs: Glyphs = {
  spark: ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'],
  spinner: ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'],
  status: { pending: '·', running: '▶', completed: '✓', failed: '✗', skipped: '»', interrupted: '!' },
  selected: '›',
  up: '↑',
  down: '↓',
  ellipsis: '…',
  border: 'round',
  separator: '─',
  dot: '·',
};

const asciiGlyphs: Glyphs = {
  spark: ['_', '.', ',', '-', '~', '=', '*', '#'],
  spinner: ['|', '/', '-', '\\'],
  status: { pending: '.', running: '>', completed: '+', failed: 'x', skipped: 's', interrupted: '!' },
  selected: '>',
  up: '^',
  down: 'v',
  ellipsis: '~',
  border: 'classic',
  separator: '-',
  dot: '-',
};

export function glyphsFor(theme: Theme): Glyphs {
  return theme.ascii ? asciiGlyphs : unicodeGlyphs;
}

const ASCII_REPLACEMENTS: Record<string, string> = { '–': '-', '—': '-', '·': '.', '×': 'x', '…': '~', '°': ' ', '›': '>', '↑': '^', '↓': 'v' };

/** Text for an ASCII-only terminal: the few non-ASCII characters our own strings use, replaced. */
export function toAscii(text: string): string {
  return text.replace(/[–—·×…°›↑↓]/g, (ch) => ASCII_REPLACEMENTS[ch] ?? '?');
}

export const STATUS_COLORS: Record<string, string> = {
  pending: 'gray',
  running: 'cyan',
  completed: 'green',
  failed: 'red',
  skipped: 'yellow',
  interrupted: 'magenta',
};
