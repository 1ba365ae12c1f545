// Ink (6.8) builds every frame in a fresh `Output`, whose caches (ANSI-tokenised lines, string
// widths) die with the frame: each frame re-tokenises and re-measures every line on screen, even
// the ones that did not change (table rows, borders, footer, log lines that only moved up). That
// is a quarter of a frame's CPU at 120×40. Here every Output shares one set of caches across
// frames. Safe because the cached values are immutable (Ink only reads the styled-char objects
// and builds new ones for wide characters), bounded because the caches are emptied when they grow
// past MAX_CACHED_LINES. Ink's Output is not exported, so it is reached by file URL next to Ink's
// entry (the same module instance Ink's renderer uses); if its shape is not what we expect (another
// Ink version), nothing is patched and Ink behaves as shipped.
const MAX_CACHED_LINES = 5000;

interface OutputCaches {
  widths: Map<string, number>;
  blockWidths: Map<string, number>;
  styledChars: Map<string, unknown>;
}
interface OutputClass {
  new (options: { width: number; height: number }): { caches?: OutputCaches };
  prototype: { get: (this: { caches: OutputCaches }) => unknown; __llemSharedCaches?: true };
}

let installed: Promise<boolean> | null = null;

/** Idempotent; resolves true when the shared caches are in place. */
export function shareInkOutputCaches(): Promise<boolean> {
  installed ??= install().catch(() => false);
  return installed;
}

async function install(): Promise<boolean> {
  const url = new URL('./output.js', import.meta.resolve('ink'));
  const mod = (await import(url.href)) as { default?: OutputClass };
  const Output = mod.default;
  if (typeof Output !== 'function' || typeof Output.prototype.get !== 'function') return false;
  if (Output.prototype.__llemSharedCaches) return true;
  const shared = new Output({ width: 0, height: 0 }).caches;
  if (!shared || !(shared.widths instanceof Map) || !(shared.blockWidths instanceof Map) || !(shared.styledChars instanceof Map)) return false;
  const originalGet = Output.prototype.get;
  Output.prototype.get = function getWithSharedCaches(this: { caches: OutputCaches }) {
    if (shared.styledChars.size > MAX_CACHED_LINES || shared.widths.size > MAX_CACHED_LINES * 4) {
      shared.styledChars.clear();
      shared.widths.clear();
      shared.blockWidths.clear();
    }
    this.caches = shared;
    return originalGet.call(this);
  };
  Output.prototype.__llemSharedCaches = true;
  return true;
}
