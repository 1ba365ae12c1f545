// One run's child process, as an explicit state machine:
//   spawning → ready (process exists) → running (first valid message) → stopping (kill sent)
//   → reaping (the worker exited; the rest of its process tree is being ended) → exited
// with a single transition method. The child runs in its own process group (detached), its stdout
// and stderr stream into worker.log (the last 64 KiB stay in memory for the failure record), IPC
// messages are zod-checked (bad ones are logged, never fatal), and every kill addresses the group
// and each descendant by pid. `done` resolves only once nothing of the run's process tree is left
// (docs/ARCHITECTURE.md "Process trees"): that is the lifecycle invariant the runner's records rely on.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { sweepStaleTempFiles } from '../atomic-file.ts';
import { isChildSubreaper, reapAdoptedChild, setChildSubreaper } from '../native/index.ts';
import { childMessageSchema, type ChildMessage, type ErrorType, type Phase } from './protocol.ts';
import { runResultSchema, type RunResult } from '../results/schema.ts';
import {
  emptyCleanup,
  endTree,
  findRunTree,
  runTreeMayRemain,
  TREE_MARKER_ENV,
  type RunTreeScope,
  type TreeCleanup,
  type TreeEnd,
} from './process-tree.ts';
import { isExitedState, procStartTicks, readProcStat } from './proc.ts';
import { checkResult } from '../study-dir/read.ts';
import { KILL_GRACE_MS, STARTUP_ALLOWANCE_MS, STDIO_CLOSE_CAP_MS, TREE_KILL_WAIT_MS } from './timing.ts';

export type ChildState = 'spawning' | 'ready' | 'running' | 'stopping' | 'reaping' | 'exited';
export type KillReason = 'timeout' | 'stall' | 'skip' | 'abort';
export type OutcomeStatus = 'completed' | 'failed' | 'skipped' | 'interrupted';

const ALLOWED: Record<ChildState, ChildState[]> = {
  // → exited: the spawn itself failed (there is no process, so no tree)
  spawning: ['ready', 'stopping', 'exited'],
  ready: ['running', 'stopping', 'reaping'],
  running: ['stopping', 'reaping'],
  stopping: ['reaping', 'exited'],
  reaping: ['exited'],
  exited: [],
};

export const TAIL_BYTES = 64 * 1024;

export interface ChildOutcome {
  status: OutcomeStatus;
  error_type: ErrorType | null;
  message: string | null;
  phase_reached: Phase | null;
  stderr_tail: string;
  exit_code: number | null;
  signal: NodeJS.Signals | null;
  /** Absolute path of a valid result.json (completed runs only). */
  result_path: string | null;
  result: RunResult | null;
  malformed_messages: number;
  /** What was left of the process tree after the main process exited; null when not checked. */
  tree_cleanup: TreeCleanup | null;
}

export interface ChildHandleOptions {
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  logPath: string;
  /** Where a successful child leaves result.json (the `result` message may name it too). */
  resultPath: string;
  /** Total timeout; null = none. */
  timeoutMs: number | null;
  /** No message (heartbeat or other) for this long = stall; null = none. */
  stallTimeoutMs: number | null;
  /** Time between SIGTERM and SIGKILL to the group and to leftovers of the tree (default KILL_GRACE_MS). */
  killGraceMs?: number;
  onMessage?: (msg: ChildMessage) => void;
  onOutput?: (chunk: Buffer) => void;
  onStateChange?: (from: ChildState, to: ChildState, why: string) => void;
}

/** Last `limit` bytes of a byte stream, without copying the whole stream. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.limit) this.size -= this.chunks.shift()!.length;
  }
  toString(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
  }
}

/**
 * The supervising process is a child subreaper while it supervises at least one run, so that what a
 * dying worker leaves is re-parented to it (and can be found and ended) instead of to init. Cleared
 * when the last run ends unless it was set before, so a long-lived host (a test process) does not
 * keep adopting unrelated orphans.
 */
const subreaper = {
  live: 0,
  wasSetBefore: false,
  /** null while we are one; otherwise why not (recorded as the cleanup's note). */
  unavailableReason: null as string | null,
  acquire(): void {
    if (this.live++ > 0) return;
    this.wasSetBefore = isChildSubreaper() === true;
    const r = this.wasSetBefore ? ({ status: 'available' } as const) : setChildSubreaper(true);
    this.unavailableReason = r.status === 'available' ? null : r.reason;
  },
  release(): void {
    if (--this.live > 0 || this.wasSetBefore || this.unavailableReason !== null) return;
    setChildSubreaper(false);
  },
};
/** Leaders of the runs this process supervises now: one run's cleanup never takes another's worker. */
const liveLeaders = new Set<number>();
let treeSeq = 0;

export class ChildHandle {
  state: ChildState = 'spawning';
  pid: number | null = null;
  readonly done: Promise<ChildOutcome>;
  private resolveDone!: (o: ChildOutcome) => void;
  private child: ChildProcess | null = null;
  private log: WriteStream | null = null;
  private readonly tail = new TailBuffer(TAIL_BYTES);
  private phase: Phase | null = null;
  private killReason: KillReason | null = null;
  private escalatedToSigkill = false;
  private lastSignOfLifeMs = Date.now();
  private timers: NodeJS.Timeout[] = [];
  private stallTimer: NodeJS.Timeout | null = null;
  private childError: { error_type: ErrorType; message: string; phase: Phase | null } | null = null;
  private reportedResultPath: string | null = null;
  private malformed = 0;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private spawnError: Error | null = null;
  /** When the first SIGTERM went out (the grace runs from there, also for leftovers). */
  private killSentAtMs: number | null = null;
  private tree: RunTreeScope | null = null;
  /** Descendants signalled while the worker was being stopped (kill, forceKill), for the record. */
  private stopSignalled = { term: new Set<number>(), kill: new Set<number>() };
  private treeEnd: TreeEnd | null = null;
  /** What the worker ended itself before a normal exit (its `tree_cleanup` message). */
  private workerCleanup: TreeCleanup | null = null;
  /** A second Ctrl+C while reaping: SIGKILL what is left without waiting out the grace. */
  private hurryReaping = false;
  private stdioClosed = false;
  private holdsSubreaper = false;

  constructor(private readonly opts: ChildHandleOptions) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get phaseReached(): Phase | null {
    return this.phase;
  }

  /** The one place the state changes; an illegal transition is a bug and throws. */
  private transition(to: ChildState, why: string): void {
    const from = this.state;
    if (from === to) return;
    if (!ALLOWED[from].includes(to)) throw new Error(`child handle: illegal transition ${from} → ${to} (${why})`);
    this.state = to;
    // the allowance shrinks from start-up to the stall timeout at the first message
    if (to === 'running') this.armStallCheck();
    this.opts.onStateChange?.(from, to, why);
  }

  start(): void {
    if (this.child) throw new Error('child handle: start() called twice');
    this.log = createWriteStream(this.opts.logPath, { flags: 'a' });
    this.log.on('error', () => {});
    subreaper.acquire();
    this.holdsSubreaper = true;
    // Every descendant inherits the marker: an orphan re-parented to us is recognised as this run's.
    const marker = `${process.pid}-${++treeSeq}-${Date.now().toString(36)}`;
    let child: ChildProcess;
    try {
      child = spawn(this.opts.command, this.opts.args, {
        cwd: this.opts.cwd,
        env: { ...(this.opts.env ?? process.env), [TREE_MARKER_ENV]: marker },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        serialization: 'json',
      });
    } catch (err) {
      this.spawnError = err as Error;
      this.transition('exited', 'spawn threw');
      this.finish();
      return;
    }
    this.child = child;
    this.pid = child.pid ?? null;
    if (this.pid !== null) {
      liveLeaders.add(this.pid);
      this.tree = {
        leaderPid: this.pid,
        leaderStartTicks: procStartTicks(this.pid),
        known: new Map(),
        markerEntry: `${TREE_MARKER_ENV}=${marker}`,
        isOtherLeader: (pid) => pid !== this.pid && liveLeaders.has(pid),
      };
    }
    child.on('spawn', () => {
      if (this.state === 'spawning') this.transition('ready', 'spawned');
    });
    child.on('error', (err) => {
      // spawn failure (ENOENT …); after a successful spawn, errors are kill/send failures we tolerate
      if (this.pid === null && (this.state === 'spawning' || this.state === 'stopping')) {
        this.spawnError = err;
        this.transition('exited', `spawn failed: ${err.message}`);
        this.finish();
      }
    });
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.on('data', (chunk: Buffer) => {
        this.tail.push(chunk);
        this.opts.onOutput?.(chunk);
      });
      stream.pipe(this.log, { end: false });
    }
    child.on('message', (raw: unknown) => this.onRawMessage(raw));
    child.on('exit', (code, signal) => {
      this.exitInfo = { code, signal };
      this.clearTimers();
      if (this.pid !== null) liveLeaders.delete(this.pid);
      this.transition('reaping', `worker exited (${signal ?? `code ${code}`})`);
      // Grandchildren may outlive the worker: end the whole tree, whatever happened, before `done`.
      void this.reapTree()
        .catch((err: unknown) => {
          // never leave `done` pending: record that the tree could not be checked
          this.treeEnd = { cleanup: emptyCleanup(0, `process tree not checked: ${(err as Error)?.message ?? String(err)}`), survivors: [] };
        })
        .then(() => this.afterTree());
    });
    child.on('close', () => {
      this.stdioClosed = true;
      this.maybeFinish();
    });

    if (this.opts.timeoutMs !== null) {
      this.timers.push(setTimeout(() => this.kill('timeout'), this.opts.timeoutMs));
    }
    this.armStallCheck();
  }

  /**
   * One timer, set for the moment the last sign of life expires, instead of a poll every second:
   * a measuring parent should not wake for nothing (issue 4's CPU target). When it fires and a
   * message has arrived since, it is set again for the new expiry.
   */
  private armStallCheck(): void {
    const stallMs = this.opts.stallTimeoutMs;
    if (stallMs === null || this.state === 'stopping' || this.state === 'reaping' || this.state === 'exited') return;
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    // Before its first message a child is still starting (loading modules): a longer allowance.
    const limitMs = this.state === 'running' ? stallMs : Math.max(stallMs, STARTUP_ALLOWANCE_MS);
    const leftMs = this.lastSignOfLifeMs + limitMs - Date.now();
    if (leftMs < 0) {
      this.stallTimer = null;
      this.kill('stall');
      return;
    }
    this.stallTimer = setTimeout(() => {
      this.stallTimer = null;
      this.armStallCheck();
    }, leftMs + 1);
  }

  /** Send a parent message; false when the channel is gone. */
  send(msg: { v: 1; type: 'result_ack' } | { v: 1; type: 'shutdown'; reason: string }): boolean {
    if (!this.child?.connected) return false;
    try {
      this.child.send(msg, () => {});
      return true;
    } catch {
      return false;
    }
  }

  /**
   * SIGTERM to the group and to every descendant (setsid() ones left the group), SIGKILL after
   * the grace. The first reason given is the one recorded.
   */
  kill(reason: KillReason): void {
    if (this.state === 'exited' || this.state === 'reaping') return;
    if (this.killReason === null) this.killReason = reason;
    if (this.state === 'stopping') return;
    this.transition('stopping', `kill: ${reason}`);
    this.killSentAtMs = performance.now();
    // a worker that handles SIGTERM learns why it is stopped; the signals are what count
    this.send({ v: 1, type: 'shutdown', reason });
    this.signalTree('SIGTERM');
    const t = setTimeout(() => this.forceKill(), this.killGraceMs());
    this.timers.push(t);
  }

  /** SIGKILL to the group and every descendant now (second Ctrl+C, or grace expired). */
  forceKill(): void {
    if (this.state === 'exited') return;
    if (this.state === 'reaping') {
      this.hurryReaping = true;
      return;
    }
    if (this.killReason === null) this.killReason = 'abort';
    if (this.state !== 'stopping') this.transition('stopping', 'force kill');
    this.escalatedToSigkill = true;
    this.signalTree('SIGKILL');
  }

  private killGraceMs(): number {
    return this.opts.killGraceMs ?? KILL_GRACE_MS;
  }

  /**
   * Walks the tree while the worker is alive (a subreaper, so its orphans are still below it),
   * remembers every pid for the cleanup after its exit, and signals the group and each of them.
   */
  private signalTree(signal: NodeJS.Signals): void {
    if (this.pid === null) return;
    const tree = this.tree!;
    for (const p of findRunTree(tree)) {
      if (isExitedState(p.state)) continue;
      tree.known.set(p.pid, p.startTicks);
      (signal === 'SIGKILL' ? this.stopSignalled.kill : this.stopSignalled.term).add(p.pid);
      try {
        process.kill(p.pid, signal);
      } catch {
        // gone meanwhile
      }
    }
    try {
      process.kill(-this.pid, signal);
    } catch {
      // ESRCH: the group is already gone
    }
  }

  /** After the worker's exit: end whatever is left of its tree (bounded), then let `done` resolve. */
  private async reapTree(): Promise<void> {
    const tree = this.tree!;
    const t0 = performance.now();
    const isSubreaper = subreaper.unavailableReason === null;
    const note =
      subreaper.unavailableReason === null
        ? undefined
        : `subreaper unavailable: ${subreaper.unavailableReason}; a descendant that left the process group and whose parent exited may have survived unseen`;
    // what the stop already signalled counts as left over (and SIGKILLed) even when it is gone now
    const signalled = this.stopSignalled;
    const withStop = (c: TreeCleanup): TreeCleanup => ({
      ...c,
      leftover_pids: [...new Set([...signalled.term, ...signalled.kill, ...c.leftover_pids])],
      sigkilled_pids: [...new Set([...signalled.kill, ...c.sigkilled_pids])],
      ...(note ? { note } : {}),
    });
    if (!runTreeMayRemain(tree, isSubreaper)) {
      this.treeEnd = { cleanup: withStop(emptyCleanup(Math.round((performance.now() - t0) * 10) / 10)), survivors: [] };
      return;
    }
    // After a kill the grace runs from the first SIGTERM; after a normal exit leftovers get a full one.
    const graceMs = this.killGraceMs();
    const termGraceMs = this.killSentAtMs === null ? graceMs : Math.max(0, graceMs - (performance.now() - this.killSentAtMs));
    const end = await endTree({
      find: () => findRunTree(tree),
      group: tree.leaderPid,
      termGraceMs: this.escalatedToSigkill ? 0 : termGraceMs,
      killWaitMs: TREE_KILL_WAIT_MS,
      reap: isSubreaper,
      hurry: () => this.hurryReaping,
      onMember: (p) => tree.known.set(p.pid, p.startTicks),
    });
    this.treeEnd = { cleanup: withStop(end.cleanup), survivors: end.survivors };
  }

  private afterTree(): void {
    if (this.treeEnd!.survivors.length > 0) this.closeStdio();
    else if (!this.stdioClosed) this.timers.push(setTimeout(() => this.closeStdio(), STDIO_CLOSE_CAP_MS));
    this.maybeFinish();
  }

  /** Stdio can stay open if an unidentified process holds it; do not wait for it forever. */
  private closeStdio(): void {
    this.child?.stdout?.destroy();
    this.child?.stderr?.destroy();
    this.stdioClosed = true;
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.state !== 'reaping' || this.treeEnd === null || !this.stdioClosed) return;
    this.clearTimers();
    this.finish();
  }

  /**
   * What the worker ended itself before exiting was re-parented to us as zombies when it exited;
   * its report can arrive after our walk, so reap the reported ones once more (ours by that report).
   */
  private reapReportedZombies(): void {
    if (!this.workerCleanup || subreaper.unavailableReason !== null) return;
    for (const pid of this.workerCleanup.leftover_pids) {
      const p = readProcStat(pid);
      if (p && p.ppid === process.pid && isExitedState(p.state) && this.tree?.known.get(pid) === p.startTicks) reapAdoptedChild(pid);
    }
  }

  private onRawMessage(raw: unknown): void {
    this.lastSignOfLifeMs = Date.now();
    const parsed = childMessageSchema.safeParse(clampLongFields(raw));
    if (!parsed.success) {
      this.malformed += 1;
      const preview = safePreview(raw);
      this.log?.write(`[llem runner] ignored malformed IPC message: ${preview}\n`);
      return;
    }
    const msg = parsed.data;
    if (this.state === 'ready') this.transition('running', `first message (${msg.type})`);
    if (msg.type === 'phase') this.phase = msg.phase;
    if (msg.type === 'progress') this.phase = msg.phase;
    if (msg.type === 'error' && !this.childError) {
      this.childError = { error_type: msg.error_type, message: msg.message, phase: msg.phase };
      if (msg.phase) this.phase = msg.phase;
    }
    if (msg.type === 'tree_cleanup') {
      this.workerCleanup = msg.cleanup;
      // its leftovers become our children (zombies or not) once it exits: known, so reaped and ended
      for (const pid of msg.cleanup.leftover_pids) this.tree?.known.set(pid, procStartTicks(pid));
    }
    if (msg.type === 'result') {
      this.reportedResultPath = msg.path;
      // The parent reads the file at exit; acknowledging lets the child exit now.
      this.send({ v: 1, type: 'result_ack' });
    }
    this.opts.onMessage?.(msg);
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
  }

  private finish(): void {
    this.transition('exited', this.treeEnd ? 'process tree gone' : 'no process');
    this.reapReportedZombies();
    // every process that could write in the run dir is gone: an interrupted result.json write's
    // temp file (the worker killed mid-write) goes now
    if (this.treeEnd) sweepStaleTempFiles(path.dirname(this.opts.resultPath), [], 0);
    if (this.holdsSubreaper) {
      this.holdsSubreaper = false;
      subreaper.release();
    }
    const outcome = withTreeVerdict(this.classify(), this.treeEnd);
    const log = this.log;
    this.log = null;
    if (log) log.end(() => this.resolveDone(outcome));
    else this.resolveDone(outcome);
  }

  private classify(): ChildOutcome {
    const base = {
      phase_reached: this.phase,
      stderr_tail: this.tail.toString(),
      exit_code: this.exitInfo?.code ?? null,
      signal: this.exitInfo?.signal ?? null,
      result_path: null,
      result: null,
      malformed_messages: this.malformed,
      tree_cleanup: this.treeEnd ? mergeCleanups(this.workerCleanup, this.treeEnd.cleanup) : null,
    };
    const fail = (status: OutcomeStatus, error_type: ErrorType, message: string): ChildOutcome => ({
      ...base,
      status,
      error_type,
      message,
    });
    const inPhase = this.phase ? ` in phase ${this.phase}` : '';
    if (this.spawnError) return fail('failed', 'ProcessCrash', `could not start the worker: ${this.spawnError.message}`);
    switch (this.killReason) {
      case 'skip':
        return fail('skipped', 'UserSkipped', `skipped by the user${inPhase}`);
      case 'abort':
        return fail('interrupted', 'UserInterrupted', `interrupted by the user${inPhase}`);
      case 'timeout':
        return fail(
          'failed',
          'TimeoutError',
          `exceeded the ${fmtSeconds(this.opts.timeoutMs!)} run timeout${inPhase}; process group killed (${this.escalatedToSigkill ? 'SIGTERM, then SIGKILL' : 'SIGTERM'})`,
        );
      case 'stall':
        return fail(
          'failed',
          'StallTimeout',
          `no heartbeat for ${fmtSeconds(this.opts.stallTimeoutMs!)}${inPhase}; process group killed (${this.escalatedToSigkill ? 'SIGTERM, then SIGKILL' : 'SIGTERM'})`,
        );
      default:
        break;
    }
    if (this.childError) return fail('failed', this.childError.error_type, this.childError.message);
    const { code, signal } = this.exitInfo ?? { code: null, signal: null };
    if (signal === 'SIGKILL') {
      return fail('failed', 'OutOfMemory', `killed by SIGKILL that llem did not send${inPhase} (suspected out of memory: check dmesg for the OOM killer)`);
    }
    if (signal) return fail('failed', 'ProcessCrash', `worker killed by ${signal}${inPhase}`);
    if (code !== 0) {
      const lastLine = lastNonEmptyLines(this.tail.toString(), 3);
      return fail('failed', 'ProcessCrash', `worker exited with code ${code}${inPhase}${lastLine ? `: ${lastLine}` : ''}`);
    }
    const resultPath = this.reportedResultPath ?? this.opts.resultPath;
    const checked = checkResult(resultPath);
    if (!checked.ok) return fail('failed', 'InvalidResult', `worker exited 0 but ${checked.reason}`);
    return { ...base, status: 'completed', error_type: null, message: null, result_path: resultPath, result: checked.result };
  }
}

/** The worker's own cleanup (before its exit) and ours (after it) as one record. */
function mergeCleanups(worker: TreeCleanup | null, parent: TreeCleanup): TreeCleanup {
  if (!worker || worker.leftover_pids.length === 0) return parent;
  const union = (a: number[], b: number[]) => [...new Set([...a, ...b])];
  const notes = [`the worker ended ${worker.leftover_pids.length} of them itself before exiting`, worker.note, parent.note].filter(Boolean);
  return {
    leftover_pids: union(worker.leftover_pids, parent.leftover_pids),
    sigkilled_pids: union(worker.sigkilled_pids, parent.sigkilled_pids),
    survivor_pids: parent.survivor_pids,
    waited_ms: Math.round((worker.waited_ms + parent.waited_ms) * 10) / 10,
    note: notes.join('; '),
  };
}

/**
 * A process of the run that outlived SIGKILL and the bounded wait (stuck in a driver, state D)
 * fails the run: its load would land in the next run's measurement. An outcome that already
 * failed keeps its cause and gains the survivors.
 */
export function withTreeVerdict(outcome: ChildOutcome, end: TreeEnd | null): ChildOutcome {
  if (!end || end.survivors.length === 0) return outcome;
  const what =
    `${end.survivors.length} process(es) of the run still alive ${fmtSeconds(TREE_KILL_WAIT_MS)} after SIGKILL: ` +
    `${end.survivors.join('; ')}; they may hold the GPU and would overlap the next run`;
  if (outcome.status === 'completed') {
    return { ...outcome, status: 'failed', error_type: 'ProcessCrash', message: what, result_path: null, result: null };
  }
  return { ...outcome, message: outcome.message ? `${outcome.message}; ${what}` : what };
}

/** Oversized error/log texts are cut rather than dropped: the start of a 20 MB message still explains the failure. */
function clampLongFields(raw: unknown): unknown {
  if (!raw || typeof raw !== 'object') return raw;
  const m = raw as Record<string, unknown>;
  const limits: Record<string, number> = { message: m.type === 'log' ? 4096 : 16384, stack: 8192 };
  let copy: Record<string, unknown> | null = null;
  for (const [field, limit] of Object.entries(limits)) {
    const v = m[field];
    if (typeof v === 'string' && v.length > limit) {
      copy ??= { ...m };
      const note = ` … [cut, ${v.length} chars in all]`;
      copy[field] = v.slice(0, limit - note.length) + note;
    }
  }
  return copy ?? raw;
}

function safePreview(raw: unknown): string {
  try {
    return (JSON.stringify(raw) ?? String(raw)).slice(0, 300);
  } catch {
    return String(raw).slice(0, 300);
  }
}

/** The line that explains a crash: the last "…Error: …" line, else the last non-stack lines. */
function lastNonEmptyLines(text: string, n: number): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('at ') && !/^Node\.js v\d/.test(l) && l !== '^');
  const errorLine = [...lines].reverse().find((l) => /(^|\b)\w*Error\b.*:/.test(l));
  return (errorLine ?? lines.slice(-n).join(' | ')).slice(0, 500);
}

function fmtSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
