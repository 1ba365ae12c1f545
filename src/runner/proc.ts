// Small /proc helpers: telling our recorded child apart from a process that reused its pid.
import { readFileSync } from 'node:fs';

/** Start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22); null if unknown. */
export function procStartTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may contain spaces and parentheses: split after the last ')'
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[19]);
    return Number.isFinite(ticks) ? ticks : null;
  } catch {
    return null;
  }
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
