// Child side of the parent ↔ child link, shared by the real worker (src/worker/main.ts) and the
// runner's fixture workers. It owns four things a child must get right:
//   - sends resolve only when Node has handed the message to the channel (a send followed by an
//     exit is silently lost otherwise);
//   - a heartbeat the parent's stall timeout watches;
//   - the process tree: the child becomes a subreaper at connect, so whatever its descendants
//     orphan (setsid() ones included) stays below it; on its normal exit path (close()) it ends
//     what is left of its descendants and reports it to the parent (docs/ARCHITECTURE.md "Process trees");
//   - the orphan guard: when the IPC channel closes without us closing it (the parent was
//     SIGKILLed or OOM-killed), the child ends its whole process group and every descendant
//     (itself, a managed server, any grandchildren) within two seconds so that nothing keeps
//     holding the GPU.
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { hasChildProcesses, setChildSubreaper } from '../native/index.ts';
import { endTree, findOwnDescendants, type TreeCleanup } from './process-tree.ts';
import { isExitedState } from './proc.ts';
import { CHILD_TREE_GRACE_MS, CHILD_TREE_KILL_WAIT_MS, ORPHAN_GUARD_GRACE_MS, RESULT_ACK_TIMEOUT_MS } from './timing.ts';
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
   * Close the channel on purpose (not an orphaning), so the process can exit on its own once its
   * work is done. Descendants still alive are ended first (SIGTERM, then SIGKILL) and reported to
   * the parent; with none, the channel closes at once. Set process.exitCode before or after;
   * never call process.exit() right after a send.
   */
  close(): void;
  /** Whether the parent side is still connected. */
  readonly connected: boolean;
}

export interface ConnectOptions {
  /** Time between SIGTERM and SIGKILL to our own group once orphaned (default ORPHAN_GUARD_GRACE_MS; ≤ 2 s total). */
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
  const orphanGraceMs = options.orphanGraceMs ?? ORPHAN_GUARD_GRACE_MS;
  // Without the addon the parent records the degradation (its own subreaper call fails the same way).
  subreaperSet = setChildSubreaper(true).status === 'available';
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
    killOwnTree(orphanGraceMs);
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
    async reportResult(resultPath, ackTimeoutMs = RESULT_ACK_TIMEOUT_MS) {
      const acked = link.waitForResultAck(ackTimeoutMs);
      await send({ v: PROTOCOL_VERSION, type: 'result', path: resultPath });
      return acked;
    },
    close() {
      if (closingOnPurpose) return;
      closingOnPurpose = true;
      const disconnect = () => {
        link.stopHeartbeat();
        if (process.connected) process.disconnect();
      };
      const ending = endLeftoverDescendants();
      if (!ending) {
        disconnect();
        return;
      }
      void ending
        .then((cleanup) => (cleanup ? send({ v: PROTOCOL_VERSION, type: 'tree_cleanup', cleanup }) : undefined))
        .catch(() => {})
        .finally(disconnect);
    },
    get connected() {
      return process.connected;
    },
  };
  activeLink = link;
  return link;
}

let subreaperSet = false;

/**
 * Before a normal exit: ends what our descendants left behind (a helper that ignores SIGTERM, a
 * setsid() daemon), so that nothing of this run outlives it. null when there is nothing to end —
 * decided by one waitid() when we are a subreaper (every descendant is then below us), so a
 * worker that leaves nothing exits as fast as before.
 */
function endLeftoverDescendants(): Promise<TreeCleanup | null> | null {
  if (subreaperSet && hasChildProcesses() === false) return null;
  if (!findOwnDescendants().some((p) => !isExitedState(p.state))) return null;
  const t0 = performance.now();
  return endTree({
    find: () => findOwnDescendants(),
    // our own group includes us: reach the others by pid
    group: null,
    termGraceMs: CHILD_TREE_GRACE_MS,
    killWaitMs: CHILD_TREE_KILL_WAIT_MS,
    // zombies left are the parent's to reap once we exit (we cannot tell those Node would reap)
    reap: false,
  }).then((end) => ({ ...end.cleanup, waited_ms: Math.round((performance.now() - t0) * 10) / 10 }));
}

/** Signals every live descendant by pid (setsid() ones are not in our group). */
function signalDescendants(signal: NodeJS.Signals): void {
  for (const p of findOwnDescendants()) {
    if (isExitedState(p.state)) continue;
    try {
      process.kill(p.pid, signal);
    } catch {
      // gone meanwhile
    }
  }
}

/**
 * Ends this process's whole tree. We are the group leader (the parent spawns us detached), so
 * -pid addresses us and everything we started that stayed in the group; descendants that left it
 * (setsid()) are reached by pid, found below us because we are a subreaper. SIGTERM first
 * (servers flush and release the GPU), then SIGKILL, which also ends us. We ignore our own
 * SIGTERM meanwhile so that we live to send the SIGKILL to grandchildren that ignore SIGTERM.
 */
function killOwnTree(graceMs: number): void {
  const pgid = process.pid;
  process.on('SIGTERM', () => {});
  signalDescendants('SIGTERM');
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    // not a group leader (started by hand): fall back to ourselves only
  }
  const timer = setTimeout(() => {
    signalDescendants('SIGKILL');
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
