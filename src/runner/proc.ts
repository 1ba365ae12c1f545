// Small /proc helpers: telling our recorded child apart from a process that reused its pid, and
// reading the fields the process-tree cleanup needs (parent, group, session, state).
import { readFileSync } from 'node:fs';

/** The fields of /proc/<pid>/stat that llem uses. */
export interface ProcStat {
  pid: number;
  /** Kernel command name (at most 15 characters), without the parentheses. */
  comm: string;
  /** R, S, D, T, t, Z (zombie), X (dead), I … */
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  /** Start time in clock ticks since boot: with the pid, names one process even after pid reuse. */
  startTicks: number;
}

/** Parses the text of /proc/<pid>/stat; null when it is not one. */
export function parseProcStat(pid: number, stat: string): ProcStat | null {
  // the command name (field 2) may contain spaces and parentheses: split after the last ')'
  const close = stat.lastIndexOf(')');
  if (close < 0) return null;
  const rest = stat.slice(close + 2).split(' ');
  const startTicks = Number(rest[19]);
  if (!Number.isFinite(startTicks) || rest.length < 20) return null;
  return {
    pid,
    comm: stat.slice(stat.indexOf('(') + 1, close),
    state: rest[0]!,
    ppid: Number(rest[1]),
    pgid: Number(rest[2]),
    sid: Number(rest[3]),
    startTicks,
  };
}

/** /proc/<pid>/stat, or null when the process is gone (or /proc is unreadable). */
export function readProcStat(pid: number): ProcStat | null {
  try {
    return parseProcStat(pid, readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return null;
  }
}

/** Start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22); null if unknown. */
export function procStartTicks(pid: number): number | null {
  return readProcStat(pid)?.startTicks ?? null;
}

/** A zombie has exited (only its exit status waits for a parent); X is the instant after. */
export function isExitedState(state: string): boolean {
  return state === 'Z' || state === 'X' || state === 'x';
}

/** true when `pid` is alive and, if `startTicks` is known, started at that moment (not a reused pid). */
export function sameProcessAlive(pid: number, startTicks: number | null | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (startTicks === null || startTicks === undefined) return true;
  const now = procStartTicks(pid);
  // a zombie or unreadable /proc entry: trust the kill(0) answer
  return now === null ? true : now === startTicks;
}

/** true while any process is in process group `pgid`. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
