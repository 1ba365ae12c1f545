// Pure formatting helpers: durations, numbers with units, sparklines, truncation.
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** Compact number: 3 significant digits, k/M suffixes above 10,000. */
export function formatNumber(value: number | null | undefined, unit = ''): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  let text: string;
  if (abs >= 1e7) text = `${(value / 1e6).toFixed(1)}M`;
  else if (abs >= 1e4) text = `${(value / 1e3).toFixed(1)}k`;
  else if (abs >= 100) text = value.toFixed(0);
  else if (abs >= 10) text = value.toFixed(1);
  else if (abs >= 1) text = value.toFixed(2);
  else if (abs === 0) text = '0';
  else if (abs >= 0.001) text = value.toFixed(3);
  else text = value.toExponential(1);
  return unit ? `${text}${unit}` : text;
}

export function formatClock(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** Cut to `width` columns (our strings are single-width), marking the cut with `ellipsis`. */
export function truncate(text: string, width: number, ellipsis = '…'): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  if (width === 1) return ellipsis;
  return text.slice(0, width - 1) + ellipsis;
}

export function padEnd(text: string, width: number, ellipsis = '…'): string {
  return truncate(text, width, ellipsis).padEnd(width);
}

export function padStart(text: string, width: number, ellipsis = '…'): string {
  return truncate(text, width, ellipsis).padStart(width);
}

/**
 * Last `width` values as bar glyphs scaled between the minimum and maximum shown; null (no
 * reading) is a blank, so a missing meter never looks like zero power.
 */
export function sparkline(values: ReadonlyArray<number | null>, width: number, bars: string[]): string {
  const shown = values.slice(-width);
  const numbers = shown.filter((v): v is number => v !== null && Number.isFinite(v));
  if (numbers.length === 0) return ' '.repeat(Math.min(width, shown.length));
  const lo = Math.min(...numbers);
  const hi = Math.max(...numbers);
  const span = hi - lo;
  return shown
    .map((v) => {
      if (v === null || !Number.isFinite(v)) return ' ';
      const level = span === 0 ? Math.floor((bars.length - 1) / 2) : Math.round(((v - lo) / span) * (bars.length - 1));
      return bars[level];
    })
    .join('');
}

/** Append to a capped array without mutating it: the newest `cap` items survive. */
export function appendCapped<T>(items: readonly T[], added: readonly T[], cap: number): T[] {
  if (added.length >= cap) return added.slice(added.length - cap);
  const keep = Math.max(0, items.length + added.length - cap);
  return [...items.slice(keep), ...added];
}

/** Local time of day with seconds, for attempt start times. */
export function formatTime(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  return `${formatClock(ms)}:${String(d.getSeconds()).padStart(2, '0')}`;
}
