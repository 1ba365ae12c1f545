// Config labels ("llamacpp bs=4 tok=32", from the study grammar) taken apart into the parts that
// vary between configs, so that narrow tables show what tells rows apart instead of cutting it
// off at the end. Shared by the pre-flight grid (one column per swept key) and the study table.
import type { PlanFile } from '../study/types.ts';

/** One swept key (or, for `key` ''), the leading words such as the backend. */
export interface LabelColumn {
  key: string;
  /** The key's last dotted segment: `warmup.max_prompts` → `max_prompts`. */
  short: string;
}

export interface LabelSet {
  /** Words every config shares (the backend of a one-backend study), said once in a title. */
  common: string;
  /** Parts that differ between configs, in order of first appearance. */
  columns: LabelColumn[];
  /** Per config (plan order), the value of each column ('' when the config lacks it). */
  cells: string[][];
  /** Per column, the widest value. */
  widths: number[];
}

interface Token {
  key: string;
  value: string;
}

function tokensOf(label: string): Token[] {
  const words = label.split(' ').filter((w) => w !== '');
  const head: string[] = [];
  const out: Token[] = [];
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq > 0) out.push({ key: word.slice(0, eq), value: word.slice(eq + 1) });
    else head.push(word);
  }
  if (head.length > 0) out.unshift({ key: '', value: head.join(' ') });
  return out;
}

const cache = new WeakMap<PlanFile, LabelSet>();

export function labelSetOf(plan: PlanFile): LabelSet {
  const cached = cache.get(plan);
  if (cached) return cached;
  const parsed = plan.configs.map((c) => new Map(tokensOf(c.label).map((t) => [t.key, t.value])));
  const keys: string[] = [];
  const seen = new Set<string>();
  for (const tokens of parsed) {
    for (const key of tokens.keys()) {
      if (!seen.has(key)) {
        seen.add(key);
        keys.push(key);
      }
    }
  }
  // A key is common when every config has it with the same value (one config: nothing varies,
  // but then the whole label is the thing to show).
  const commonParts: string[] = [];
  const varying: string[] = [];
  for (const key of keys) {
    const first = parsed[0]?.get(key);
    const same = parsed.length > 1 && first !== undefined && parsed.every((t) => t.get(key) === first);
    if (same) commonParts.push(key === '' ? first : `${key}=${first}`);
    else varying.push(key);
  }
  const columns = varying.map((key) => ({ key, short: key.split('.').pop() ?? key }));
  const cells = parsed.map((t) => varying.map((key) => t.get(key) ?? ''));
  const widths = varying.map((_, k) => Math.max(0, ...cells.map((row) => row[k]!.length)));
  const set: LabelSet = { common: commonParts.join(' '), columns, cells, widths };
  cache.set(plan, set);
  return set;
}

/** How labels are written so that they fit: the first style whose widest label fits wins. */
export type LabelStyle = 'full' | 'varying' | 'short_keys' | 'values';

export interface FittedLabels {
  style: LabelStyle;
  /** Column title: says what the dropped words were, or names the value columns. */
  title: string;
  /** The label of config `index` (plan order), at most `width` wide. */
  text(index: number): string;
}

function joinParts(set: LabelSet, cells: string[], keyOf: (c: LabelColumn) => string): string {
  const parts: string[] = [];
  set.columns.forEach((col, k) => {
    const value = cells[k]!;
    if (value === '') return;
    parts.push(col.key === '' ? value : `${keyOf(col)}=${value}`);
  });
  return parts.join(' ');
}

/** Left-cut: the end of a label is what tells neighbours apart (bs=1 … threads=2 vs threads=4). */
export function truncateLeft(text: string, width: number, ellipsis = '…'): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  if (width === 1) return ellipsis;
  return ellipsis + text.slice(text.length - width + 1);
}

const fitCache = new WeakMap<PlanFile, Map<number, FittedLabels>>();

/** Labels for a column `width` wide: drop the shared words, then shorten keys, then values only. */
export function fitLabels(plan: PlanFile, width: number): FittedLabels {
  let byWidth = fitCache.get(plan);
  if (!byWidth) fitCache.set(plan, (byWidth = new Map()));
  const cached = byWidth.get(width);
  if (cached) return cached;
  const set = labelSetOf(plan);
  const full = (i: number) => plan.configs[i]?.label ?? '';
  const varying = (i: number) => joinParts(set, set.cells[i] ?? [], (c) => c.key) || full(i);
  const shortKeys = (i: number) => joinParts(set, set.cells[i] ?? [], (c) => c.short) || full(i);
  const valueWidths = set.columns.map((c, k) => Math.max(set.widths[k]!, c.short.length));
  const values = (i: number) =>
    set.columns.length === 0 ? full(i) : (set.cells[i] ?? []).map((v, k) => (v === '' ? '–' : v).padEnd(valueWidths[k]!)).join(' ').trimEnd();
  const widest = (f: (i: number) => string) => Math.max(0, ...plan.configs.map((_, i) => f(i).length));
  const withCommon = set.common ? `config (${set.common})` : 'config';
  let fitted: FittedLabels;
  if (widest(full) <= width || set.columns.length === 0) {
    fitted = { style: 'full', title: 'config', text: (i) => truncateLeft(full(i), width) };
  } else if (widest(varying) <= width) {
    fitted = { style: 'varying', title: withCommon, text: varying };
  } else if (widest(shortKeys) <= width) {
    fitted = { style: 'short_keys', title: withCommon, text: shortKeys };
  } else {
    const title = set.columns.map((c, k) => (c.key === '' ? '' : c.short).padEnd(valueWidths[k]!)).join(' ').trimEnd();
    fitted = { style: 'values', title: truncateLeft(title, width), text: (i) => truncateLeft(values(i), width) };
  }
  if (byWidth.size > 20) byWidth.clear();
  byWidth.set(width, fitted);
  return fitted;
}
