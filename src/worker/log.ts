// The worker's own log lines. They go to the child's stderr, which the runner pipes into the run's
// worker.log and shows in the UI (one path, so nothing is shown twice and nothing is lost when no
// UI is attached, as under Slurm). Bounded: a chatty backend cannot fill the disk through us.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Bytes of worker log lines written per run before the cut. */
export const WORKER_LOG_CAP_BYTES = 1024 * 1024;
/** Longest single message (the rest of a longer one is cut with a marker). */
export const WORKER_LOG_LINE_CAP = 4096;

export interface WorkerLog {
  line(level: LogLevel, message: string): void;
  /** Writes how much was cut, if anything; later lines are dropped. */
  close(): void;
}

export function workerLog(write: (text: string) => void, capBytes = WORKER_LOG_CAP_BYTES): WorkerLog {
  let written = 0;
  let cutLines = 0;
  let cutBytes = 0;
  let closed = false;
  return {
    line(level, message) {
      if (closed) return;
      const text = message.length > WORKER_LOG_LINE_CAP ? `${message.slice(0, WORKER_LOG_LINE_CAP)} … [cut: ${message.length - WORKER_LOG_LINE_CAP} more characters]` : message;
      // One physical line per message: a multi-line message stays readable as one entry.
      const out = `[${level}] ${text.replace(/\r?\n/g, '\n    ')}\n`;
      const bytes = Buffer.byteLength(out);
      if (written + bytes > capBytes) {
        if (cutLines === 0) write(`[llem worker] log cut: more than ${capBytes} bytes of worker log lines; later lines are counted, not written\n`);
        cutLines++;
        cutBytes += bytes;
        return;
      }
      written += bytes;
      write(out);
    },
    close() {
      if (closed) return;
      closed = true;
      if (cutLines > 0) write(`[llem worker] log cut: ${cutLines} line(s), ${cutBytes} bytes not written\n`);
    },
  };
}
