// File helpers of the child: atomic JSON writes and the model file hash.
import { createHash } from 'node:crypto';
import { open, rename, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export { writeFileAtomic } from '../atomic-file.ts';

export const PARTIAL_HASH_CHUNK_BYTES = 16 * 2 ** 20;

/**
 * sha256 of the whole file below 2 × 16 MiB; above, of its size + first and last 16 MiB (a 70 GB
 * checkpoint is not read end to end in a measured run). Prefixed with the method so the two never
 * compare equal by accident. null for a directory or a missing path.
 */
export async function modelFileHash(path: string): Promise<{ size_bytes: number; file_hash: string } | null> {
  let st;
  try {
    st = await stat(path);
  } catch {
    return null;
  }
  if (!st.isFile()) return null;
  const h = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    if (st.size <= 2 * PARTIAL_HASH_CHUNK_BYTES) {
      h.update(await fh.readFile());
      return { size_bytes: st.size, file_hash: `sha256:${h.digest('hex')}` };
    }
    h.update(`${st.size}\n`);
    const buf = Buffer.alloc(PARTIAL_HASH_CHUNK_BYTES);
    await fh.read(buf, 0, buf.length, 0);
    h.update(buf);
    await fh.read(buf, 0, buf.length, st.size - buf.length);
    h.update(buf);
    return { size_bytes: st.size, file_hash: `sha256-partial16m:${h.digest('hex')}` };
  } finally {
    await fh.close();
  }
}
