// The one way llem replaces a file that a reader may see at any instant (manifest, result.json,
// summary.json, caches): temp in the same dir → fsync → rename → fsync dir, so a reader, or a
// process killed at any point, sees the old file or the new one, whole — never a partial file.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
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
  await rename(tmp, file);
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
  renameSync(tmp, file);
  if (doFsync) {
    const dirFd = openSync(path.dirname(file), 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}
