// The lifecycle invariant: a run is recorded as ended only after its whole process tree is gone.
// This module finds a run's processes and ends them; ChildHandle (parent side) and the child-side
// link (worker side) call it. docs/ARCHITECTURE.md "Process trees" explains the whole scheme; in short:
//   - the worker and the process supervising it are child subreapers, so a descendant orphaned by
//     its parent's exit, setsid() ones included, is re-parented to them instead of init;
//   - a run's processes are: its worker's process group, the pids seen in a walk while the worker
//     lived (or reported by the worker), adopted children carrying the run's environment marker,
//     and every descendant of those;
//   - ending them is SIGTERM, a grace, SIGKILL, then a bounded wait until none is left (a zombie
//     counts as gone; adopted zombies are reaped). What had to be SIGKILLed and what survived is
//     recorded in TreeCleanup.
// The common case — the worker left nothing — costs two syscalls and no /proc scan.
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { TREE_KILL_WAIT_MS } from './timing.ts';
import { hasChildProcesses, reapAdoptedChild } from '../native/index.ts';
import { groupAlive, isExitedState, readProcStat, type ProcStat } from './proc.ts';

export const treeCleanupSchema = z.object({
  /** Descendants still alive when the run was stopped (timeout, stall, skip, abort) or its main process had exited. */
  leftover_pids: z.array(z.number().int()),
  /** Those that ignored SIGTERM and were SIGKILLed. */
  sigkilled_pids: z.array(z.number().int()),
  /** Still alive after SIGKILL and the bounded wait: the run is failed, never overlapped with the next. */
  survivor_pids: z.array(z.number().int()),
  /** How long the parent waited for the tree to be empty. */
  waited_ms: z.number(),
  /** How the cleanup was limited or helped, e.g. "subreaper unavailable: …", "the worker ended 2 before exiting". */
  note: z.string().optional(),
});
export type TreeCleanup = z.infer<typeof treeCleanupSchema>;

/** Environment variable that marks every process of one run (inherited by all its descendants). */
export const TREE_MARKER_ENV = 'LLEM_PROCESS_TREE';
const POLL_FIRST_MS = 10;
const POLL_MAX_MS = 100;

export interface KnownPid {
  pid: number;
  startTicks: number | null;
}

/** Every process on the machine. Only called when the cheap checks say something may be left. */
export function scanProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const p = readProcStat(Number(name));
    if (p) out.push(p);
  }
  return out;
}

/** Processes in `table` below the `roots` (by parent pid), roots included. */
function withDescendants(table: ProcStat[], roots: Map<number, ProcStat>): Map<number, ProcStat> {
  const children = new Map<number, ProcStat[]>();
  for (const p of table) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const out = new Map(roots);
  const queue = [...roots.keys()];
  while (queue.length > 0) {
    for (const child of children.get(queue.pop()!) ?? []) {
      if (out.has(child.pid)) continue;
      out.set(child.pid, child);
      queue.push(child.pid);
    }
  }
  return out;
}

function hasEnvEntry(pid: number, entry: string): boolean {
  try {
    return ('\0' + readFileSync(`/proc/${pid}/environ`, 'latin1')).includes(`\0${entry}\0`);
  } catch {
    return false;
  }
}

/** `/proc/<pid>/cmdline` as one line (for messages); the kernel name when it is empty. */
export function describeProcess(p: ProcStat): string {
  let cmd = '';
  try {
    cmd = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
  } catch {
    // gone meanwhile
  }
  if (cmd.length > 160) cmd = cmd.slice(0, 157) + '…';
  return `pid ${p.pid} (${cmd || p.comm}, state ${p.state})`;
}

/** One run's process tree as the process supervising it sees it. */
export interface RunTreeScope {
  /** The run's main process (the worker), leader of its own process group (it is spawned detached). */
  leaderPid: number;
  /** Its start time: a process now holding that pid with another start time means the pid (and group id) was reused. */
  leaderStartTicks: number | null;
  /** Pids known to belong to the run: walks while the leader lived, the worker's own report. */
  known: Map<number, number | null>;
  /** `LLEM_PROCESS_TREE=<token>` in the leader's environment; null = no marker. */
  markerEntry: string | null;
  /** Other runs' leaders supervised by this process (parallel runs): never ours. */
  isOtherLeader: (pid: number) => boolean;
}

/**
 * The run's processes (alive or zombie), the leader excluded. With the leader alive this is also
 * the walk that records the tree before it is killed (setsid() descendants are not in the group).
 */
export function findRunTree(scope: RunTreeScope, table: ProcStat[] = scanProcesses()): ProcStat[] {
  const self = process.pid;
  // Once the leader is gone its pid, and so its group id, can be taken by a new process (another
  // run's worker): then neither the group nor "child of the leader" means ours any more.
  const holder = table.find((p) => p.pid === scope.leaderPid);
  const leaderIds = !holder || scope.leaderStartTicks === null || holder.startTicks === scope.leaderStartTicks;
  const roots = new Map<number, ProcStat>();
  for (const p of table) {
    if (p.pid === scope.leaderPid || p.pid === self || scope.isOtherLeader(p.pid)) continue;
    const knownTicks = scope.known.get(p.pid);
    const ours =
      (leaderIds && (p.pgid === scope.leaderPid || p.ppid === scope.leaderPid)) ||
      (knownTicks !== undefined && (knownTicks === null || knownTicks === p.startTicks)) ||
      // an orphan re-parented to us (we are a subreaper) that carries this run's marker
      (p.ppid === self && scope.markerEntry !== null && hasEnvEntry(p.pid, scope.markerEntry));
    if (ours) roots.set(p.pid, p);
  }
  const all = withDescendants(table, roots);
  all.delete(scope.leaderPid);
  all.delete(self);
  return [...all.values()];
}

/** This process's descendants (alive or zombie), for a worker ending what it started. */
export function findOwnDescendants(table: ProcStat[] = scanProcesses()): ProcStat[] {
  const self = process.pid;
  const roots = new Map<number, ProcStat>();
  // group members that are not descendants: orphans that went to init when we are no subreaper
  for (const p of table) if (p.pid !== self && (p.ppid === self || p.pgid === self)) roots.set(p.pid, p);
  const all = withDescendants(table, roots);
  all.delete(self);
  return [...all.values()];
}

/**
 * Cheap test before any /proc scan: could anything of the run be left? The group (one kill(0)),
 * the known pids, and — when we are a subreaper, so that orphans come to us — whether we have any
 * child at all (one waitid). When this says no, the tree is certainly empty.
 */
export function runTreeMayRemain(scope: RunTreeScope, subreaper: boolean): boolean {
  // (a reused group id answers too: the scan then tells it apart)
  if (groupAlive(scope.leaderPid)) return true;
  for (const [pid, ticks] of scope.known) {
    const p = readProcStat(pid);
    if (p && (ticks === null || p.startTicks === ticks)) return true;
  }
  return subreaper && hasChildProcesses() !== false;
}

export interface EndTreeOptions {
  /** Lists the tree's processes now (alive or zombie); called once per poll. */
  find: () => ProcStat[];
  /** Process group to signal as a whole as well (setsid() members are reached by pid); null = none. */
  group: number | null;
  /** Between SIGTERM and SIGKILL; 0 = SIGKILL at once (the grace was already given). */
  termGraceMs: number;
  /** After SIGKILL, how long to wait for the tree to be empty (default TREE_KILL_WAIT_MS). */
  killWaitMs?: number;
  /** Reap zombies among them that are our children (only processes adopted, never ones Node spawned). */
  reap: boolean;
  /** Polled: true = skip the rest of the grace and SIGKILL now (a second Ctrl+C). */
  hurry?: () => boolean;
  /** How a signal is delivered (default process.kill); tests drop one to make a survivor. */
  sendSignal?: (pid: number, signal: NodeJS.Signals) => void;
  /** Called with each process first seen alive (the caller may keep it as known). */
  onMember?: (p: ProcStat) => void;
}

export interface TreeEnd {
  cleanup: TreeCleanup;
  /** describeProcess() of each survivor, for the failure message. */
  survivors: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function deliver(opts: EndTreeOptions, pid: number, signal: NodeJS.Signals): void {
  try {
    (opts.sendSignal ?? process.kill)(pid, signal);
  } catch {
    // ESRCH: gone meanwhile
  }
}

/** Signals one process unless its pid now names another process (start time differs). */
function signalMember(opts: EndTreeOptions, p: ProcStat, signal: NodeJS.Signals): void {
  const now = readProcStat(p.pid);
  if (!now || now.startTicks !== p.startTicks || isExitedState(now.state)) return;
  deliver(opts, p.pid, signal);
}

/**
 * SIGTERM → grace → SIGKILL over everything `find` lists, until nothing is alive or the bounded
 * wait after SIGKILL expires. Processes that appear meanwhile (forked during SIGTERM handling)
 * get the signal of the current step. Resolves with what it took.
 */
export async function endTree(opts: EndTreeOptions): Promise<TreeEnd> {
  const t0 = performance.now();
  const killWaitMs = opts.killWaitMs ?? TREE_KILL_WAIT_MS;
  const leftover = new Map<number, ProcStat>();
  const termed = new Set<number>();
  const killed = new Set<number>();
  let step: 'term' | 'kill' = opts.termGraceMs > 0 ? 'term' : 'kill';
  let groupSignalled: 'none' | 'term' | 'kill' = 'none';
  let killDeadline = step === 'kill' ? t0 + killWaitMs : Infinity;
  let delayMs = POLL_FIRST_MS;
  let survivors: ProcStat[] = [];
  for (;;) {
    const members = opts.find();
    const alive: ProcStat[] = [];
    for (const p of members) {
      if (isExitedState(p.state)) {
        if (opts.reap && p.ppid === process.pid) reapAdoptedChild(p.pid);
        continue;
      }
      alive.push(p);
      if (!leftover.has(p.pid)) {
        leftover.set(p.pid, p);
        opts.onMember?.(p);
      }
    }
    const groupLeft = opts.group !== null && alive.some((p) => p.pgid === opts.group);
    if (alive.length === 0) break;
    const now = performance.now();
    if (step === 'term' && (now - t0 >= opts.termGraceMs || opts.hurry?.())) {
      step = 'kill';
      killDeadline = now + killWaitMs;
    }
    if (step === 'kill' && now >= killDeadline) {
      survivors = alive;
      break;
    }
    if (groupLeft && opts.group !== null && groupSignalled !== step) {
      deliver(opts, -opts.group, step === 'term' ? 'SIGTERM' : 'SIGKILL');
      groupSignalled = step;
    }
    for (const p of alive) {
      if (step === 'term' && !termed.has(p.pid)) {
        termed.add(p.pid);
        signalMember(opts, p, 'SIGTERM');
      } else if (step === 'kill' && !killed.has(p.pid)) {
        killed.add(p.pid);
        signalMember(opts, p, 'SIGKILL');
      }
    }
    await sleep(delayMs);
    delayMs = Math.min(delayMs * 2, POLL_MAX_MS);
  }
  return {
    cleanup: {
      leftover_pids: [...leftover.keys()],
      sigkilled_pids: [...killed],
      survivor_pids: survivors.map((p) => p.pid),
      waited_ms: Math.round((performance.now() - t0) * 10) / 10,
    },
    survivors: survivors.map(describeProcess),
  };
}

/** The record of a tree that was already empty. */
export function emptyCleanup(waitedMs = 0, note?: string): TreeCleanup {
  return { leftover_pids: [], sigkilled_pids: [], survivor_pids: [], waited_ms: waitedMs, ...(note ? { note } : {}) };
}
