// Following a Slurm study from the submitting machine (or any machine that sees the study dir):
// a poller that records what Slurm did to tasks (one squeue per interval per study), and a plain
// follower that prints run changes from the manifest until nothing is left to do.
import { readManifest, readSlurmState } from '../../study-dir/read.ts';
import type { Manifest, RunRecord } from '../../study-dir/schema.ts';
import { StudyLockedError } from '../lock.ts';
import { SLURM_POLL_INTERVAL_MS, STATUS_LOCK_WAIT_MS } from '../timing.ts';
import { isSlurmStudy } from './state-file.ts';
import { reconcileStudy } from './launcher.ts';
import { SlurmCommandError, type SlurmCommandOptions } from './commands.ts';

export interface SlurmPoller {
  stop(): void;
  /** Poll now (still rate-limited across processes by slurm-poll.json). */
  pollNow(): Promise<void>;
}

/** `LLEM_SLURM_POLL_MS` lowers the interval (tests); never below 1 s. */
export function pollIntervalMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.LLEM_SLURM_POLL_MS);
  return Number.isFinite(v) && v > 0 ? Math.max(1000, v) : SLURM_POLL_INTERVAL_MS;
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

export type SlurmRefresh =
  | { kind: 'refreshed'; recorded: number[] }
  | { kind: 'not_slurm' }
  /** Slurm's commands failed or are missing here, or the study lock stayed busy: the manifest is shown as recorded. */
  | { kind: 'unavailable'; reason: string };

/**
 * One reconcile with Slurm for `llem status`: one squeue (shared, rate-limited poll cache, so
 * repeated `llem status` calls within the interval cost no squeue), scontrol only for ended
 * tasks, and the study lock taken briefly to record what Slurm killed. Never throws: an
 * unreachable Slurm, a busy lock or a damaged slurm.json is returned as the reason.
 */
export async function refreshStudyFromSlurm(
  studyDir: string,
  options: SlurmCommandOptions & { minIntervalMs?: number; lockWaitMs?: number } = {},
): Promise<SlurmRefresh> {
  try {
    if (!isSlurmStudy(studyDir)) return { kind: 'not_slurm' };
    const r = await reconcileStudy(studyDir, {
      minIntervalMs: options.minIntervalMs ?? pollIntervalMs(),
      lockWaitMs: options.lockWaitMs ?? STATUS_LOCK_WAIT_MS,
      timeoutMs: options.timeoutMs ?? 20_000,
      env: options.env,
    });
    return { kind: 'refreshed', recorded: r.recorded };
  } catch (err) {
    if (err instanceof SlurmCommandError) return { kind: 'unavailable', reason: `Slurm not reachable from here (${err.message.split('\n')[0]})` };
    if (err instanceof StudyLockedError) return { kind: 'unavailable', reason: `the study lock stayed busy (${err.message})` };
    // a damaged slurm.json or manifest: status still shows what it can
    return { kind: 'unavailable', reason: `Slurm refresh failed: ${(err as Error).message}` };
  }
}

/**
 * `llem watch` of a Slurm study: the poller while the view is open, so a task Slurm killed before
 * its worker recorded anything (node failure, scancel while pending) still reaches the manifest
 * and the journal the view follows. Each distinct poll error is reported once to `warn` (none in
 * the full-screen view). Null when the study was never submitted to Slurm.
 */
export function pollSlurmWhileWatching(studyDir: string, options: { warn?: (text: string) => void; intervalMs?: number } = {}): SlurmPoller | null {
  if (!isSlurmStudy(studyDir)) return null;
  const warned = new Set<string>();
  return startSlurmPoller(studyDir, {
    intervalMs: options.intervalMs,
    onError: (err) => {
      if (warned.has(err.message)) return;
      warned.add(err.message);
      options.warn?.(`warning: Slurm poll failed (the view shows what the workers recorded): ${err.message}`);
    },
  });
}

/** Nothing pending or running and no provisional record: the study's outcome is final. */
export function slurmStudySettled(studyDir: string, m: Manifest = readManifest(studyDir)): boolean {
  return m.counts.pending + m.counts.running === 0 && readSlurmState(studyDir).provisional.length === 0;
}

export function exitCodeForManifest(m: Manifest): number {
  if (m.counts.interrupted > 0 || m.counts.pending > 0 || m.counts.running > 0) return 130;
  if (m.counts.failed + m.counts.invalid > 0) return 1;
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
          options.line(`study ${m.status}: ${c.completed} completed, ${c.failed} failed, ${c.skipped} skipped, ${c.interrupted} interrupted, ${c.invalid} invalid`);
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
