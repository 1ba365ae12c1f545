// README's key list, generated from the keymap (test/ui/readme-keys.test.ts holds README to it),
// so the documentation can never promise a key the interface does not have.
import { KEYMAP, type Screen } from './keymap.ts';

const SCREEN_NAMES: Record<Screen, string> = { preflight: 'pre-flight', table: 'table', detail: 'detail', help: 'help' };

export const README_KEYS_BEGIN = '<!-- keys:begin (generated from src/ui/keymap.ts by keysMarkdown(); test/ui/readme-keys.test.ts) -->';
export const README_KEYS_END = '<!-- keys:end -->';

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** One row per binding: its key, the screens it works on, what it does, and what `llem watch` makes of it. */
export function keysMarkdown(): string {
  const rows = KEYMAP.map((b) => {
    const where = b.screens.length === 4 ? 'everywhere' : b.screens.map((s) => SCREEN_NAMES[s]).join(', ');
    const watch = !b.modes.includes('watch') ? '—' : (b.watchDescription ?? 'same');
    // keys the label does not already name (g is also Home, G also End)
    const also = b.keys.filter((k) => k === 'home' || k === 'end');
    const key = `\`${b.keyLabel}\`${also.length ? ` (${also.map((k) => k[0]!.toUpperCase() + k.slice(1)).join(', ')})` : ''}`;
    return `| ${key} | ${where} | ${escapeCell(b.description)} | ${escapeCell(watch)} |`;
  });
  return ['| key | where | what it does | in `llem watch` |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
