// Which GPU processes are ours: this worker and every process below it (a Python engine, a server,
// a `command` program). NVML lists every compute process on a device; only the others are
// "foreign". Linux /proc only; elsewhere (or in a PID namespace that hides NVML's host pids) a pid
// we cannot place is counted as foreign, which errs towards flagging.
import { readdirSync, readFileSync } from 'node:fs';

/** Parent pid from /proc/<pid>/stat (the field after the parenthesised command name). */
function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(fields[1]);
    return Number.isInteger(ppid) ? ppid : null;
  } catch {
    return null;
  }
}

/** `root` and all its descendants, from one pass over /proc. */
export function processTree(root: number = process.pid): Set<number> {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return new Set([root]);
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const ppid = parentOf(pid);
    if (ppid === null) continue;
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  const tree = new Set<number>([root]);
  const queue = [root];
  while (queue.length > 0) {
    for (const c of children.get(queue.pop()!) ?? []) {
      if (!tree.has(c)) {
        tree.add(c);
        queue.push(c);
      }
    }
  }
  return tree;
}
