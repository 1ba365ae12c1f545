// The Python inference process of the pytorch backend, seen from the measuring child.
//
// Spawned with `detached: false`, so it lives in the child's process group: when the runner kills
// that group (timeout, skip, Ctrl+C) Python dies with it. A normal end is `shutdown` → exit; a
// Python that does not exit gets SIGTERM, then SIGKILL after a grace period, and so do any
// processes it started (found through /proc, since killing our own group would kill the child).
//
// Error cases, all ClassifiedError:
//   - Python missing, exits or says nothing before hello, wrong protocol version → PreflightError
//   - a line that is not a valid protocol message → BackendError naming the line number and text
//   - Python reports an error → its error_type (PreflightError, BackendError, OutOfMemory)
//   - Python exits during a command, or is silent longer than the silence timeout → BackendError
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ClassifiedError, backendError, preflightError } from '../errors.ts';
import {
  PYTORCH_PROTOCOL_VERSION,
  parsePythonLine,
  type PythonCommand,
  type PythonHello,
  type PythonMessage,
} from './protocol.ts';

export const WORKER_SCRIPT_PATH = fileURLToPath(new URL('./worker.py', import.meta.url));

export interface PythonWorkerOptions {
  /** Python executable (a name looked up on PATH, or a path). */
  python: string;
  /** The script to run; worker.py next to this file unless a test substitutes a misbehaving one. */
  scriptPath?: string;
  env?: NodeJS.ProcessEnv;
  /** Receives every stderr line of Python (it goes to the run's log). */
  log?: (line: string) => void;
  /** From spawn to hello (torch import included). */
  helloTimeoutMs?: number;
  /** Longest silence allowed while generate or sync runs (Python sends progress every second). */
  silenceTimeoutMs?: number;
  /** shutdown → SIGTERM → SIGKILL, each step waiting this long. */
  killGraceMs?: number;
}

export const DEFAULT_HELLO_TIMEOUT_MS = 120_000;
export const DEFAULT_SILENCE_TIMEOUT_MS = 300_000;
export const DEFAULT_KILL_GRACE_MS = 5_000;
const STDERR_TAIL_BYTES = 4096;

interface PendingCommand {
  id: number;
  type: PythonCommand['type'];
  expect: PythonMessage['type'];
  onEvent?: (msg: PythonMessage) => void;
  resolve: (msg: PythonMessage) => void;
  reject: (err: ClassifiedError) => void;
  silenceTimeoutMs: number | null;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class PythonWorker {
  readonly python: string;
  readonly scriptPath: string;
  private readonly proc: ChildProcess;
  private readonly opts: PythonWorkerOptions;
  private nextId = 1;
  private lineNumber = 0;
  private stdoutBuffer = '';
  private stderrBuffer = '';
  private stderrTailText = '';
  private pending: PendingCommand | null = null;
  private silenceTimer: NodeJS.Timeout | null = null;
  private helloWaiter: { resolve: (h: PythonHello) => void; reject: (e: ClassifiedError) => void } | null = null;
  private helloMessage: PythonHello | null = null;
  /** The first fatal problem; every later command fails with it. */
  private fatal: ClassifiedError | null = null;
  private exitInfo: ExitInfo | null = null;
  private readonly exited: Promise<ExitInfo>;
  private closing = false;

  private constructor(opts: PythonWorkerOptions) {
    this.opts = opts;
    this.python = opts.python;
    this.scriptPath = opts.scriptPath ?? WORKER_SCRIPT_PATH;
    this.proc = spawn(opts.python, ['-u', this.scriptPath], {
      detached: false,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        ...(opts.env ?? process.env),
        PYTHONUNBUFFERED: '1',
        PYTHONDONTWRITEBYTECODE: '1',
        TOKENIZERS_PARALLELISM: 'false',
      },
    });
    this.exited = new Promise<ExitInfo>((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
        // stdout may still hold the last lines: let them be read before failing what is pending.
        setTimeout(() => this.onExit(), 50);
      });
    });
    this.proc.once('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'ENOENT'
          ? `Python "${opts.python}" was not found (set pytorch.python to a Python with torch installed)`
          : `cannot start Python "${opts.python}": ${err.message}`;
      this.fail(preflightError(`pytorch: ${why}`));
      if (!this.exitInfo) {
        this.exitInfo = { code: null, signal: null };
      }
    });
    this.proc.stdin!.on('error', () => {
      // EPIPE after Python died: the exit handler reports it with a better reason.
    });
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stdout!.on('data', (chunk: string) => this.onStdout(chunk));
    this.proc.stderr!.setEncoding('utf8');
    this.proc.stderr!.on('data', (chunk: string) => this.onStderr(chunk));
  }

  /** Spawns Python and waits for its hello (versions, CUDA visibility). */
  static async start(opts: PythonWorkerOptions): Promise<PythonWorker> {
    const worker = new PythonWorker(opts);
    try {
      await worker.waitHello(opts.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS);
    } catch (err) {
      await worker.close();
      throw err;
    }
    return worker;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get hello(): PythonHello {
    if (!this.helloMessage) throw new Error('PythonWorker.hello read before start() finished');
    return this.helloMessage;
  }

  get exitStatus(): ExitInfo | null {
    return this.exitInfo;
  }

  /** The last few KiB Python wrote to stderr (for error messages). */
  stderrTail(): string {
    return this.stderrTailText.trim();
  }

  /**
   * Sends one command and resolves with its terminal reply (`loaded`, `generated`, `synced`);
   * `request` and `progress` messages on the way go to onEvent. One command at a time.
   */
  request(
    command: PythonCommand,
    onEvent?: (msg: PythonMessage) => void,
    signal?: AbortSignal,
  ): Promise<PythonMessage> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.pending) return Promise.reject(backendError(`pytorch: ${command.type} sent while ${this.pending.type} is running`));
    const id = this.nextId++;
    const expect = ({ load: 'loaded', generate: 'generated', sync: 'synced' } as const)[command.type];
    const silenceTimeoutMs = command.type === 'load' ? null : (this.opts.silenceTimeoutMs ?? DEFAULT_SILENCE_TIMEOUT_MS);
    return new Promise<PythonMessage>((resolve, reject) => {
      const onAbort = (): void => {
        this.fail(backendError(`pytorch: ${command.type} aborted (${String(signal?.reason ?? 'abort')})`));
        void this.close();
      };
      if (signal?.aborted) {
        reject(backendError(`pytorch: ${command.type} aborted before it started`));
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => {
        signal?.removeEventListener('abort', onAbort);
        this.clearSilenceTimer();
        this.pending = null;
      };
      this.pending = {
        id,
        type: command.type,
        expect,
        onEvent,
        silenceTimeoutMs,
        resolve: (msg) => {
          done();
          resolve(msg);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      };
      this.armSilenceTimer();
      this.proc.stdin!.write(JSON.stringify({ v: PYTORCH_PROTOCOL_VERSION, id, ...command }) + '\n');
    });
  }

  /**
   * Ends Python: `shutdown`, then SIGTERM, then SIGKILL, each after the grace period; processes
   * Python started are killed too. Idempotent; resolves once Python has exited.
   */
  async close(): Promise<ExitInfo> {
    const grace = this.opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    if (!this.closing) {
      this.closing = true;
      if (!this.exitInfo && this.proc.pid !== undefined) {
        const descendants = descendantPids(this.proc.pid);
        if (this.proc.stdin!.writable) {
          this.proc.stdin!.write(JSON.stringify({ v: PYTORCH_PROTOCOL_VERSION, type: 'shutdown' }) + '\n');
          this.proc.stdin!.end();
        }
        if (!(await this.exitWithin(grace))) {
          this.signal('SIGTERM');
          if (!(await this.exitWithin(grace))) this.signal('SIGKILL');
        }
        // Whatever Python started (compile workers, tokenizer pools) must not outlive it.
        for (const pid of [...descendants, ...descendantPids(this.proc.pid)]) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
    }
    if (this.proc.pid === undefined) return this.exitInfo ?? { code: null, signal: null };
    return this.exited;
  }

  private signal(sig: NodeJS.Signals): void {
    try {
      this.proc.kill(sig);
    } catch {
      // already gone
    }
  }

  private async exitWithin(ms: number): Promise<boolean> {
    if (this.exitInfo) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    const result = await Promise.race([this.exited.then(() => true as const), timeout]);
    clearTimeout(timer);
    return result;
  }

  private waitHello(timeoutMs: number): Promise<PythonHello> {
    if (this.fatal) return Promise.reject(this.fatal);
    return new Promise<PythonHello>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(
          preflightError(
            `pytorch: ${this.python} ${this.scriptPath} said nothing within ${Math.round(timeoutMs / 1000)} s of starting (no hello)${this.stderrSuffix()}`,
          ),
        );
      }, timeoutMs);
      this.helloWaiter = {
        resolve: (h) => {
          clearTimeout(timer);
          this.helloWaiter = null;
          resolve(h);
        },
        reject: (e) => {
          clearTimeout(timer);
          this.helloWaiter = null;
          reject(e);
        },
      };
    });
  }

  private armSilenceTimer(): void {
    this.clearSilenceTimer();
    const pending = this.pending;
    if (!pending || pending.silenceTimeoutMs === null) return;
    const ms = pending.silenceTimeoutMs;
    this.silenceTimer = setTimeout(() => {
      this.fail(backendError(`pytorch: Python sent nothing for ${ms / 1000} s during ${pending.type} (hung?)${this.stderrSuffix()}`));
      void this.close();
    }, ms);
  }

  private clearSilenceTimer(): void {
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.silenceTimer = null;
  }

  private stderrSuffix(): string {
    const tail = this.stderrTail();
    return tail ? `; Python stderr ends with: ${tail.slice(-1500)}` : '';
  }

  /** Records the first fatal error and fails whatever is waiting with it. */
  private fail(err: ClassifiedError): void {
    if (!this.fatal) this.fatal = err;
    this.helloWaiter?.reject(this.fatal);
    this.pending?.reject(this.fatal);
  }

  private onExit(): void {
    // Flush a last line without a newline, if any.
    if (this.stdoutBuffer.trim() !== '') {
      const rest = this.stdoutBuffer;
      this.stdoutBuffer = '';
      this.onLine(rest);
    }
    if (this.fatal) {
      this.fail(this.fatal);
      return;
    }
    const how = this.exitInfo?.signal ? `was killed by ${this.exitInfo.signal}` : `exited with code ${this.exitInfo?.code}`;
    if (this.helloWaiter) {
      this.fail(preflightError(`pytorch: ${this.python} ${how} before saying hello${this.stderrSuffix()}`));
    } else if (this.pending) {
      this.fail(backendError(`pytorch: Python ${how} during ${this.pending.type}${this.stderrSuffix()}`));
    } else if (!this.closing) {
      this.fatal = backendError(`pytorch: Python ${how} between commands${this.stderrSuffix()}`);
    }
  }

  private onStderr(chunk: string): void {
    this.stderrTailText = (this.stderrTailText + chunk).slice(-STDERR_TAIL_BYTES);
    this.stderrBuffer += chunk;
    let nl: number;
    while ((nl = this.stderrBuffer.indexOf('\n')) >= 0) {
      const line = this.stderrBuffer.slice(0, nl).trimEnd();
      this.stderrBuffer = this.stderrBuffer.slice(nl + 1);
      this.opts.log?.(`python: ${line}`);
    }
  }

  private onStdout(chunk: string): void {
    this.stdoutBuffer += chunk;
    let nl: number;
    while ((nl = this.stdoutBuffer.indexOf('\n')) >= 0) {
      const line = this.stdoutBuffer.slice(0, nl);
      this.stdoutBuffer = this.stdoutBuffer.slice(nl + 1);
      if (line.trim() !== '') this.onLine(line);
    }
  }

  private protocolError(line: string, reason: string): void {
    const shown = line.length > 300 ? `${line.slice(0, 300)}…` : line;
    this.fail(
      backendError(`pytorch: Python sent a malformed protocol line ${this.lineNumber} (${reason}): ${JSON.stringify(shown)}`),
    );
    void this.close();
  }

  private onLine(line: string): void {
    this.lineNumber++;
    if (this.fatal) return;
    const parsed = parsePythonLine(line);
    if (!parsed.ok) {
      this.protocolError(line, parsed.reason);
      return;
    }
    const msg = parsed.message;
    if (msg.type === 'hello') {
      if (this.helloMessage) return this.protocolError(line, 'a second hello');
      this.helloMessage = msg;
      if (msg.protocol !== PYTORCH_PROTOCOL_VERSION) {
        this.fail(
          preflightError(`pytorch: ${this.scriptPath} speaks protocol ${msg.protocol}, this llem speaks ${PYTORCH_PROTOCOL_VERSION}`),
        );
        return;
      }
      this.helloWaiter?.resolve(msg);
      return;
    }
    if (!this.helloMessage) return this.protocolError(line, `"${msg.type}" before hello`);
    if (msg.type === 'bye') return;
    const pending = this.pending;
    if (msg.type === 'error') {
      const text = `pytorch: ${msg.message}`;
      if (pending && (msg.id === null || msg.id === pending.id)) {
        pending.reject(new ClassifiedError(msg.error_type, text));
      } else {
        this.opts.log?.(`python error outside a command: ${msg.message}`);
      }
      return;
    }
    if (!pending || msg.id !== pending.id) {
      return this.protocolError(line, `"${msg.type}" for command ${msg.id}, but ${pending ? `command ${pending.id}` : 'no command'} is running`);
    }
    this.armSilenceTimer();
    if (msg.type === pending.expect) {
      pending.resolve(msg);
    } else if (msg.type === 'request' || msg.type === 'progress') {
      if (pending.type !== 'generate') return this.protocolError(line, `"${msg.type}" during ${pending.type}`);
      pending.onEvent?.(msg);
    } else {
      this.protocolError(line, `"${msg.type}" in reply to ${pending.type}`);
    }
  }
}

/** Every live process below `pid` (Linux /proc; empty elsewhere). */
export function descendantPids(pid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const children = new Map<number, number[]>();
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Field 4 (ppid) follows the command name, which may itself contain spaces and parens.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // exited while we looked
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}
