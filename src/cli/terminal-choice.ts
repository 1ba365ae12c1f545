// Whether a terminal can carry the full-screen interface. A pty whose size is unknown (0×0: some
// SSH clients, `script`, containers) would make every frame clear the screen and the scrollback;
// TERM=dumb has no cursor addressing. Both get the plain reporter, which works everywhere.

export type FullScreenVerdict = { ok: true } | { ok: false; reason: string };

export function fullScreenVerdict(stdout: Pick<NodeJS.WriteStream, 'isTTY' | 'columns' | 'rows'>, env: NodeJS.ProcessEnv = process.env): FullScreenVerdict {
  if (stdout.isTTY !== true) return { ok: false, reason: 'output is not a terminal' };
  if (env.TERM === 'dumb') return { ok: false, reason: 'TERM=dumb' };
  const columns = stdout.columns ?? 0;
  const rows = stdout.rows ?? 0;
  if (!(columns > 0 && rows > 0)) return { ok: false, reason: `the terminal's size is unknown (${columns}×${rows}; set it with stty rows R cols C)` };
  return { ok: true };
}

/** The note said when a terminal falls back to plain lines (nothing when it simply is not a terminal). */
export function plainFallbackNote(verdict: FullScreenVerdict): string | null {
  if (verdict.ok || verdict.reason === 'output is not a terminal') return null;
  return `llem: plain output: ${verdict.reason}\n`;
}

/** The switch `llem run`, `resume` and `watch` share: true for the full screen; says why not when a terminal falls back. */
export function chooseFullScreen(stdout: Pick<NodeJS.WriteStream, 'isTTY' | 'columns' | 'rows'>, say: (text: string) => void, env: NodeJS.ProcessEnv = process.env): boolean {
  const verdict = fullScreenVerdict(stdout, env);
  const note = plainFallbackNote(verdict);
  if (note) say(note);
  return verdict.ok;
}
