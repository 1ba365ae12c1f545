// Following a Slurm study from the submitting machine (or any machine that sees the study dir):
// a poller that records what Slurm did to tasks (one squeue per interval per study), and a plain
// follower that prints run changes from the manifest until nothing is left to do.
import { readManifest, type Manifest, type RunRecord } from '../manifest.ts';
import { readSlurmState } from './state-file.ts';
import { DEFAULT_POLL_INTERVAL_MS, reconcileStudy } from './launcher.ts';
import type { SlurmCommandOptions } from './commands.ts';

export interface SlurmPoller {
  stop(): void;
  /** Poll now (still rate-limited across processes by slurm-poll.json). */
  pollNow(): Promise<void>;
}

/** `LLEM_SLURM_POLL_MS` lowers the interval (tests); never below 1 s. */
export function pollIntervalMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.LLEM_SLURM_POLL_MS);
  return Number.isFinite(v) && v > 0 ? Math.max(1000, v) : DEFAULT_POLL_INTERVAL_MS;
}

/** Reconciles the study with Slurm every `intervalMs`; errors go to `onError` and polling goes on. */
export function startSlurmPoller(
  studyDir: string,
  options: SlurmCommandOptions & { intervalMs?: number; onError?: (err: Error) => void } = {},
): SlurmPoller {
  const intervalMs = options.intervalMs ?? pollIntervalMs();
  let busy: Promise<void> | null = null;
  const pollNow = () => {
    busy ??= reconcileStudy(studyDir, { ...options, minIntervalMs: intervalMs })
      .then(() => undefined)
      .catch((err: Error) => options.onError?.(err))
      .finally(() => (busy = null));
    return busy;
  };
  const timer = setInterval(() => void pollNow(), intervalMs);
  void pollNow();
  return {
    stop: () => clearInterval(timer),
    pollNow,
  };
}

/** Nothing pending or running and no provisional record: the study's outcome is final. */
export function slurmStudySettled(studyDir: string, m: Manifest = readManifest(studyDir)): boolean {
  return m.counts.pending + m.counts.running === 0 && readSlurmState(studyDir).provisional.length === 0;
}

export function exitCodeForManifest(m: Manifest): number {
  if (m.counts.interrupted > 0 || m.counts.pending > 0 || m.counts.running > 0) return 130;
  if (m.counts.failed > 0) return 1;
  return 0;
}

/**
 * Prints a line per run change (read from the manifest every `readMs`) while polling Slurm, until
 * the study is settled or `signal` aborts. Resolves with the exit code (0/1/130).
 */
export async function followSlurmStudy(
  studyDir: string,
  options: { line: (text: string) => void; readMs?: number; signal?: AbortSignal; pollIntervalMs?: number },
): Promise<number> {
  const poller = startSlurmPoller(studyDir, {
    intervalMs: options.pollIntervalMs,
    onError: (err) => options.line(`warning: Slurm poll failed: ${err.message}`),
  });
  const seen = new Map<number, string>();
  const describe = (r: RunRecord) => {
    const a = r.attempts.at(-1);
    const tail = r.status === 'completed' || r.status === 'running' || r.status === 'pending' ? '' : `${r.error_type ? ` ${r.error_type}` : ''}${a?.message ? ` — ${a.message.slice(0, 300)}` : ''}`;
    return `${a?.run_dir.split('/').pop() ?? r.run_id} ${r.status}${tail}`;
  };
  try {
    for (;;) {
      let m: Manifest | null = null;
      try {
        m = readManifest(studyDir);
      } catch {
        // mid-rename on a network filesystem: read again next tick
      }
      if (m) {
        for (const r of m.runs) {
          const text = describe(r);
          if (seen.get(r.index) !== text) {
            if (seen.has(r.index) || r.status !== 'pending') options.line(text);
            seen.set(r.index, text);
          }
        }
        if (slurmStudySettled(studyDir, m)) {
          const c = m.counts;
          options.line(`study ${m.status}: ${c.completed} completed, ${c.failed} failed, ${c.skipped} skipped, ${c.interrupted} interrupted`);
          return exitCodeForManifest(m);
        }
      }
      if (options.signal?.aborted) return 130;
      await new Promise((r) => setTimeout(r, options.readMs ?? 1000));
    }
  } finally {
    poller.stop();
  }
}
