// The one way llem replaces a file that a reader may see at any instant (manifest, result.json,
// summary.json, plan.json, chunk files, caches): temp in the same dir → fsync → rename → fsync
// dir, so a reader, or a process killed at any point, sees the old file or the new one, whole —
// never a partial file. A writer killed between the temp and the rename leaves the temp behind:
// sweepStaleTempFiles removes those of dead writers when a study dir is opened for writing.
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

let tempSeq = 0;

/** `.<name>.<writer pid>.<n>.tmp` beside the file: the pid tells a sweeper whether the writer is alive. */
function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}-${++tempSeq}.tmp`);
}

/** Writer pid of a temp file name made by tempName (or by earlier versions: `.<name>.<pid>.<ms>.tmp`); null otherwise. */
export function tempFileWriterPid(name: string): number | null {
  const m = /^\..+\.(\d+)\.\d+(?:-\d+)?\.tmp$/.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * A temp file younger than this is never swept, whatever its pid says: on a directory shared
 * between hosts (a Slurm study) the pid may be a live writer's on another node, and no atomic
 * write takes this long between creating its temp and renaming it.
 */
export const STALE_TEMP_MIN_AGE_MS = 10_000;

function writerAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temp files of interrupted atomic writes in `dir` and its `subdirs` (relative): those
 * whose writer process is gone and which are older than `minAgeMs` (default
 * STALE_TEMP_MIN_AGE_MS; 0 when every possible writer is known to be gone, as in a run dir once
 * its process tree has ended). Never fails: a temp that cannot be removed now is tried again
 * later. Returns the paths removed.
 */
export function sweepStaleTempFiles(dir: string, subdirs: readonly string[] = [], minAgeMs = STALE_TEMP_MIN_AGE_MS): string[] {
  const nowMs = Date.now();
  const removed: string[] = [];
  for (const d of [dir, ...subdirs.map((s) => path.join(dir, s))]) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const name of names) {
      const pid = tempFileWriterPid(name);
      if (pid === null || pid === process.pid || writerAlive(pid)) continue;
      const file = path.join(d, name);
      try {
        if (minAgeMs > 0 && nowMs - statSync(file).mtimeMs < minAgeMs) continue;
        unlinkSync(file);
        removed.push(file);
      } catch {
        // raced with another sweeper, or not ours to remove
      }
    }
  }
  return removed;
}

export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = tempName(file);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    // a failed rename (the target is a directory, the disk went read-only) must not leave the temp
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  const dir = await open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Synchronous form for the runner's transitions. `fsync: false` for caches that may be lost. */
export function writeFileAtomicSync(file: string, data: string, options: { fsync?: boolean } = {}): void {
  const doFsync = options.fsync ?? true;
  const tmp = tempName(file);
  const fd = openSync(tmp, 'w');
  try {
    const buf = Buffer.from(data, 'utf8');
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    if (doFsync) fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
  if (doFsync) {
    const dirFd = openSync(path.dirname(file), 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}
