// The terminal's state around a full-screen session. Ink 6.8 has no alternate-screen option, so
// we write the sequences ourselves, and restore exactly once on every exit path (normal end,
// error, signal, process exit): leave the alternate screen, show the cursor, raw mode off.
import { writeSync } from 'node:fs';
import type { Theme } from './theme.ts';

const ENTER_ALT_SCREEN = '\u001b[?1049h\u001b[H\u001b[2J';
const LEAVE_ALT_SCREEN = '\u001b[?1049l';
const HIDE_CURSOR = '\u001b[?25l';
const SHOW_CURSOR = '\u001b[?25h';

export interface TerminalSession {
  /** Idempotent: the second and later calls do nothing. */
  restoreTerminal(): void;
  readonly restored: boolean;
}

interface Streams {
  stdout: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
}

function writeNow(stdout: NodeJS.WriteStream, text: string): void {
  // On process exit there is no event loop left to drain an async write: write fd 1 directly.
  if (stdout === process.stdout) {
    try {
      writeSync(1, text);
      return;
    } catch {
      // EAGAIN on a non-blocking pipe: fall back to the stream
    }
  }
  stdout.write(text);
}

export function enterFullScreen({ stdout, stdin }: Streams, theme: Theme): TerminalSession {
  const useEscapes = theme.escapes && stdout.isTTY === true;
  if (useEscapes) writeNow(stdout, ENTER_ALT_SCREEN + HIDE_CURSOR);
  let restored = false;
  const onProcessExit = () => session.restoreTerminal();
  process.once('exit', onProcessExit);
  const session: TerminalSession = {
    restoreTerminal() {
      if (restored) return;
      restored = true;
      process.off('exit', onProcessExit);
      try {
        if (stdin.isTTY && typeof stdin.setRawMode === 'function') stdin.setRawMode(false);
      } catch {
        // stdin already closed (terminal hung up): nothing to restore there
      }
      try {
        writeNow(stdout, (useEscapes ? LEAVE_ALT_SCREEN : '') + SHOW_CURSOR);
      } catch {
        // the terminal is gone
      }
    },
    get restored() {
      return restored;
    },
  };
  return session;
}
