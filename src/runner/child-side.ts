// Child side of the parent ↔ child link, shared by the real worker (src/worker/main.ts) and the
// runner's fixture workers. It owns three things a child must get right:
//   - sends resolve only when Node has handed the message to the channel (a send followed by an
//     exit is silently lost otherwise);
//   - a heartbeat the parent's stall timeout watches;
//   - the orphan guard: when the IPC channel closes without us closing it (the parent was
//     SIGKILLed or OOM-killed), the child ends its whole process group (itself, a managed server,
//     any grandchildren) within two seconds so that nothing keeps holding the GPU.
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { PROTOCOL_VERSION, parentMessageSchema, type ChildMessage, type ParentMessage, type RunSpec } from './protocol.ts';

export interface ParentLink {
  /** Resolves when the message has been handed to the IPC channel; rejects if the channel is gone. */
  send(msg: ChildMessage): Promise<void>;
  /** Sends `{type:'heartbeat'}` every `intervalMs` (default 500) until stopHeartbeat(). Idempotent. */
  startHeartbeat(intervalMs?: number): void;
  stopHeartbeat(): void;
  /** Valid parent messages only; malformed ones are reported on stderr and dropped. Returns an unsubscribe. */
  onMessage(listener: (msg: ParentMessage) => void): () => void;
  /** true when the parent acknowledged the result within `timeoutMs`, false otherwise. */
  waitForResultAck(timeoutMs: number): Promise<boolean>;
  /** Sends the result path, waits for the ack (default 10 s). true when acknowledged. */
  reportResult(resultPath: string, ackTimeoutMs?: number): Promise<boolean>;
  /**
   * Stop the heartbeat and close the channel on purpose (not an orphaning), so the process can
   * exit on its own once its work is done. Set process.exitCode before or after; never call
   * process.exit() right after a send.
   */
  close(): void;
  /** Whether the parent side is still connected. */
  readonly connected: boolean;
}

export interface ConnectOptions {
  /** Time between SIGTERM and SIGKILL to our own group once orphaned (default 1000 ms; ≤ 2 s total). */
  orphanGraceMs?: number;
  /** Called when orphaned, before the group is signalled (tests, logging). */
  onOrphaned?: () => void;
}

let activeLink: ParentLink | null = null;

/**
 * Connects to the parent through the IPC channel Node opened for us (stdio 'ipc').
 * Throws when the process was not started with an IPC channel (e.g. run by hand).
 * Calling it twice returns the same link.
 */
export function connectToParent(options: ConnectOptions = {}): ParentLink {
  if (activeLink) return activeLink;
  if (typeof process.send !== 'function' || !process.connected) {
    throw new Error('connectToParent: this process has no IPC channel (it must be started by the llem runner)');
  }
  const orphanGraceMs = options.orphanGraceMs ?? 1000;
  const listeners = new Set<(msg: ParentMessage) => void>();
  let heartbeat: NodeJS.Timeout | null = null;
  let closingOnPurpose = false;

  const send = (msg: ChildMessage): Promise<void> =>
    new Promise((resolve, reject) => {
      if (!process.send || !process.connected) {
        reject(new Error('IPC channel to the parent is closed'));
        return;
      }
      try {
        process.send(msg, undefined, {}, (err: Error | null) => (err ? reject(err) : resolve()));
      } catch (err) {
        reject(err as Error);
      }
    });

  process.on('message', (raw: unknown) => {
    const parsed = parentMessageSchema.safeParse(raw);
    if (!parsed.success) {
      process.stderr.write(`llem worker: ignoring malformed parent message: ${JSON.stringify(raw).slice(0, 200)}\n`);
      return;
    }
    for (const l of listeners) l(parsed.data);
  });

  process.on('disconnect', () => {
    if (heartbeat) clearInterval(heartbeat);
    heartbeat = null;
    if (closingOnPurpose) return;
    options.onOrphaned?.();
    killOwnGroup(orphanGraceMs);
  });

  const link: ParentLink = {
    send,
    startHeartbeat(intervalMs = 500) {
      if (heartbeat) return;
      const beat = () => {
        send({ v: PROTOCOL_VERSION, type: 'heartbeat', t_ms: performance.now() }).catch(() => {});
      };
      beat();
      heartbeat = setInterval(beat, intervalMs);
      // The heartbeat alone must never keep a finished child alive.
      heartbeat.unref();
    },
    stopHeartbeat() {
      if (heartbeat) clearInterval(heartbeat);
      heartbeat = null;
    },
    onMessage(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    waitForResultAck(timeoutMs) {
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          off();
          resolve(false);
        }, timeoutMs);
        const off = link.onMessage((msg) => {
          if (msg.type !== 'result_ack') return;
          clearTimeout(timer);
          off();
          resolve(true);
        });
      });
    },
    async reportResult(resultPath, ackTimeoutMs = 10_000) {
      const acked = link.waitForResultAck(ackTimeoutMs);
      await send({ v: PROTOCOL_VERSION, type: 'result', path: resultPath });
      return acked;
    },
    close() {
      closingOnPurpose = true;
      link.stopHeartbeat();
      if (process.connected) process.disconnect();
    },
    get connected() {
      return process.connected;
    },
  };
  activeLink = link;
  return link;
}

/**
 * Ends this process's whole group. We are the group leader (the parent spawns us detached), so
 * -pid addresses us and everything we started. SIGTERM first (servers flush and release the GPU),
 * then SIGKILL, which also ends us. We ignore our own SIGTERM meanwhile so that we live to send
 * the SIGKILL to grandchildren that ignore SIGTERM.
 */
function killOwnGroup(graceMs: number): void {
  const pgid = process.pid;
  process.on('SIGTERM', () => {});
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    // not a group leader (started by hand): fall back to ourselves only
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      process.kill(process.pid, 'SIGKILL');
    }
  }, graceMs);
  // keep the process alive until the SIGKILL even if nothing else holds the loop
  timer.ref();
}

/** Reads and checks `<run_dir>/run.json` given as `--run-spec <path>` in argv. */
export async function readRunSpec(argv: string[] = process.argv): Promise<RunSpec> {
  const at = argv.indexOf('--run-spec');
  const specPath = at >= 0 ? argv[at + 1] : undefined;
  if (!specPath) throw new Error('missing --run-spec <path to run.json>');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(specPath, 'utf8'));
  } catch (err) {
    throw new Error(`${specPath}: cannot read run spec: ${(err as Error).message}`);
  }
  const spec = parsed as Partial<RunSpec>;
  for (const field of ['run_dir', 'run_id', 'result_path', 'power_csv_path', 'config_hash', 'study_dir'] as const) {
    if (typeof spec[field] !== 'string') throw new Error(`${specPath}: field "${field}" must be a string`);
  }
  if (spec.v !== 1) throw new Error(`${specPath}: field "v" must be 1`);
  if (typeof spec.config !== 'object' || spec.config === null) throw new Error(`${specPath}: field "config" must be an object`);
  return spec as RunSpec;
}
