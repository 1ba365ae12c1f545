// The scheduler: starts pending runs in plan order, one per free slot, until none is left or the
// study must stop. One slot is the local launcher (gaps and cooldown between runs); one slot per
// GPU is `execution.parallel: per_gpu` (no gaps: neighbours heat each other anyway, the pre-flight
// says so), except before re-measuring a run whose invalid attempt asked to wait (a foreign GPU
// process under `foreign_gpu_process: {policy: wait}`). An invalid run sent back to pending keeps
// its place in the plan order, so it is measured before every later run. Pure control flow: what
// a slot does with a run is the host's (src/runner/attempt.ts).
import type { RunRecord } from '../study-dir/schema.ts';

/** Where a run's child executes: CUDA_VISIBLE_DEVICES for it (null: the parent's own). */
export interface RunSlot {
  cudaVisibleDevices: string | null;
  label: string;
}

export interface SchedulerHost {
  /** The first pending run (plan order) not in `exclude`. */
  nextPending(exclude: ReadonlySet<number>): RunRecord | null;
  /** Waits while paused; true when the study must stop now. */
  hold(): Promise<boolean>;
  /** Resolves at the next wake() (a slot freed, a control arrived). */
  waitForWake(): Promise<void>;
  wake(): void;
  /**
   * The gap and cooldown due before run `next` after `previous`, the furthest run reached in order
   * (one slot), or before a re-measurement that waits (several slots: the run itself).
   */
  gapBefore(previous: number, next: number, idleSeconds: number): Promise<void>;
  /** Whether `run` is a re-measurement that must wait the gap and cooldown first even without gaps. */
  waitsBeforeRetry(run: RunRecord): boolean;
  execute(run: RunRecord, slot: RunSlot): Promise<void>;
  /**
   * Nothing is pending or running: an `n_cycles: auto` study decides the round and may append the
   * next (src/runner/rounds.ts). True when runs were added.
   */
  endOfRound?(): boolean;
}

/**
 * Runs the study's pending runs over `slots`. `previous` is the run that ended last before this
 * runner started, and how long ago (a resume's first run gets the gap due after it).
 */
export async function schedule(host: SchedulerHost, slots: RunSlot[], previous: { index: number; idleSeconds: number } | null = null): Promise<void> {
  const free = [...slots];
  const started = new Set<number>();
  const tasks = new Set<Promise<void>>();
  const gaps = slots.length === 1;
  let last = previous;
  // a run that could not be performed (run dir not writable, manifest write failed) ends the study
  let failure: { error: unknown } | null = null;
  for (;;) {
    if (failure || (await host.hold())) break;
    let next = free.length > 0 ? host.nextPending(started) : null;
    // with several slots there are no gaps, but a retry that waits gets the config gap and cooldown
    const wait = next && !gaps && host.waitsBeforeRetry(next) ? { index: next.index, idleSeconds: 0 } : null;
    const from = wait ?? (gaps ? last : null);
    if (next && from) {
      await host.gapBefore(from.index, next.index, from.idleSeconds);
      if (await host.hold()) break;
      next = host.nextPending(started);
    }
    if (next && free.length > 0) {
      const run = next;
      const slot = free.shift()!;
      started.add(run.index);
      // the furthest run reached in order: a retried earlier run does not move it back, so the
      // gap before the next run is never a second wait for a cycle boundary already crossed
      last = { index: Math.max(last?.index ?? -1, run.index), idleSeconds: 0 };
      const task: Promise<void> = host
        .execute(run, slot)
        .catch((error: unknown) => {
          failure ??= { error };
        })
        .finally(() => {
          free.push(slot);
          started.delete(run.index);
          tasks.delete(task);
          host.wake();
        });
      tasks.add(task);
      continue;
    }
    if (tasks.size === 0) {
      if (!failure && host.endOfRound?.()) continue;
      break;
    }
    // a slot frees up, or a control (pause, quit, abort, retry) wakes us
    await host.waitForWake();
  }
  await Promise.allSettled([...tasks]);
  if (failure) throw (failure as { error: unknown }).error;
}
