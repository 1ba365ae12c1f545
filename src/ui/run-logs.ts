// The last lines of a run's worker.log (everything its child wrote to stdout and stderr), read
// from the end of the file so a 200 MB log costs one small read. Control sequences are removed:
// a child's output must never drive our terminal.
import { open } from 'node:fs/promises';
import type { RunLogTail } from './state.ts';

const TAIL_BYTES = 64 * 1024;
// eslint-disable-next-line no-control-regex
const CONTROL = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007]*\u0007|[\u0000-\u0008\u000b-\u001f\u007f]/g;

export async function readLogTail(path: string, maxLines: number): Promise<RunLogTail> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { lines: [], error: code === 'ENOENT' ? 'not found' : (code ?? (error as Error).message) };
  }
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - TAIL_BYTES);
    const buffer = Buffer.alloc(size - start);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
    const lines = buffer.subarray(0, bytesRead).toString('utf8').replace(/\r\n?/g, '\n').split('\n');
    // a read that starts mid-file starts mid-line: that first piece is not a line
    if (start > 0) lines.shift();
    while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
    return { lines: lines.slice(-maxLines).map((l) => l.replace(CONTROL, '')), error: null };
  } catch (error) {
    return { lines: [], error: (error as Error).message };
  } finally {
    await handle.close();
  }
}
