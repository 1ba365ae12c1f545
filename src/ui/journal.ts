// Read-only follower of a study's events.jsonl (one RunnerEvent JSON per line), for `llem watch`.
// Polls by size rather than fs.watch: studies on shared filesystems (Slurm) do not deliver
// inotify events. A line is only parsed once its newline has arrived, and only an event that
// passes the runner's own event schema is passed on.
import { open, stat } from 'node:fs/promises';
import { runnerEventSchema, type RunnerEvent } from '../runner/events.ts';

export interface JournalFollower {
  /** Reads what is new now (also called by the poll timer). */
  poll(): Promise<void>;
  stop(): void;
  readonly badLines: number;
}

export function parseJournalLine(line: string): RunnerEvent | null {
  if (line.trim() === '') return null;
  try {
    const parsed = runnerEventSchema.safeParse(JSON.parse(line));
    if (parsed.success) return parsed.data;
  } catch {
    // a torn or foreign line: counted by the caller
  }
  return null;
}

export function followJournal(path: string, onEvent: (event: RunnerEvent) => void, opts: { pollMs?: number } = {}): JournalFollower {
  let offset = 0;
  let partial = '';
  let badLines = 0;
  let stopped = false;
  let reading: Promise<void> | null = null;

  const readNew = async () => {
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      return; // not created yet
    }
    if (size < offset) {
      // truncated or replaced (repair-manifest): start over
      offset = 0;
      partial = '';
    }
    if (size === offset) return;
    const handle = await open(path, 'r');
    try {
      const length = size - offset;
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      offset += bytesRead;
      const text = partial + buffer.subarray(0, bytesRead).toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const event = parseJournalLine(line);
        if (event) onEvent(event);
        else if (line.trim() !== '') badLines += 1;
      }
    } finally {
      await handle.close();
    }
  };

  const poll = () => {
    if (stopped) return Promise.resolve();
    reading ??= readNew().finally(() => {
      reading = null;
    });
    return reading;
  };
  const timer = setInterval(() => void poll().catch(() => undefined), opts.pollMs ?? 500);
  return {
    poll,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
    get badLines() {
      return badLines;
    },
  };
}
