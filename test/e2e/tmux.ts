// A private tmux server per test (its own -L socket), so tests never touch a user's tmux.
import { execFileSync } from 'node:child_process';
import '../isolate-state.ts';

export class Tmux {
  readonly socket: string;
  constructor(name: string) {
    this.socket = `llem-e2e-${name}-${process.pid}`;
  }
  private tmux(args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  }
  /** A bash without rc files in a detached session of the given size. */
  start(columns: number, rows: number, cwd: string): void {
    this.tmux(['new-session', '-d', '-s', 'main', '-x', String(columns), '-y', String(rows), '-c', cwd, 'bash --norc --noprofile']);
  }
  sendLine(line: string): void {
    this.tmux(['send-keys', '-t', 'main', '-l', line]);
    this.tmux(['send-keys', '-t', 'main', 'Enter']);
  }
  /** Keys by tmux name: Enter, Escape, C-c, or literal text with `literal`. */
  keys(keys: string, literal = false): void {
    this.tmux(['send-keys', '-t', 'main', ...(literal ? ['-l'] : []), keys]);
  }
  capture(): string {
    return this.tmux(['capture-pane', '-p', '-t', 'main']);
  }
  /** The screen with its attributes as escape sequences (bold, underline, colours). */
  captureAttributes(): string {
    return this.tmux(['capture-pane', '-p', '-e', '-t', 'main']);
  }
  /** The screen with wrapped lines joined (long shell output). */
  captureJoined(): string {
    return this.tmux(['capture-pane', '-p', '-J', '-t', 'main']);
  }
  display(format: string): string {
    return this.tmux(['display-message', '-p', '-t', 'main', format]).trim();
  }
  resize(columns: number, rows: number): void {
    this.tmux(['resize-window', '-t', 'main', '-x', String(columns), '-y', String(rows)]);
  }
  kill(): void {
    try {
      this.tmux(['kill-server']);
    } catch {
      // already gone
    }
  }
  async waitFor(predicate: (screen: string) => boolean, what: string, timeoutMs = 60_000): Promise<string> {
    const start = Date.now();
    let screen = '';
    while (Date.now() - start < timeoutMs) {
      screen = this.capture();
      if (predicate(screen)) return screen;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; screen:\n${screen}`);
  }
}
