// Fake terminal streams for rendering the Ink app in-process: a stdout with columns/rows that
// emits `resize`, a stdin that Ink can put in "raw mode" and read keys from.
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007]*\u0007/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

export class FakeStdout extends EventEmitter {
  isTTY = true;
  writes: string[] = [];
  constructor(
    public columns: number,
    public rows: number,
  ) {
    super();
  }
  write(chunk: string | Uint8Array, ...rest: unknown[]): boolean {
    this.writes.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  }
  resize(columns: number, rows: number) {
    this.columns = columns;
    this.rows = rows;
    this.emit('resize');
  }
  /** Everything written, raw. */
  get all(): string {
    return this.writes.join('');
  }
  /** The last whole frame Ink wrote (debug mode writes each frame in one piece), ANSI stripped. */
  lastFrame(): string {
    for (let i = this.writes.length - 1; i >= 0; i--) {
      const text = stripAnsi(this.writes[i]);
      if (text.trim() !== '') return text;
    }
    return '';
  }
  /** The last frame with its escape codes (to check colours). */
  lastRawFrame(): string {
    for (let i = this.writes.length - 1; i >= 0; i--) {
      if (stripAnsi(this.writes[i]).trim() !== '') return this.writes[i];
    }
    return '';
  }
}

export class FakeStdin extends PassThrough {
  isTTY = true;
  rawMode = false;
  rawModeChanges: boolean[] = [];
  setRawMode(on: boolean) {
    this.rawMode = on;
    this.rawModeChanges.push(on);
    return this;
  }
  ref() {
    return this;
  }
  unref() {
    return this;
  }
  /** Keys as the terminal sends them. */
  press(key: string) {
    const bytes: Record<string, string> = {
      enter: '\r', escape: '\u001b', up: '\u001b[A', down: '\u001b[B', pageup: '\u001b[5~', pagedown: '\u001b[6~', 'ctrl+c': '\u0003', backspace: '\u007f',
    };
    this.write(bytes[key] ?? key);
  }
}

export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}${lastFrameForErrors ? `; last frame:\n${lastFrameForErrors()}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function asStdout(s: FakeStdout): NodeJS.WriteStream {
  return s as unknown as NodeJS.WriteStream;
}
export function asStdin(s: FakeStdin): NodeJS.ReadStream {
  return s as unknown as NodeJS.ReadStream;
}

let lastFrameForErrors: (() => string) | null = null;
/** waitFor's timeout message shows this frame (the session under test). */
export function showFrameOnTimeout(frame: (() => string) | null) {
  lastFrameForErrors = frame;
}
