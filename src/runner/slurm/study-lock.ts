// Short critical sections on the study lock. With the slurm launcher no process holds the lock
// for the whole study: the submitter, every array task (`llem worker`), `llem cancel` and the
// pollers each take it for one read-modify-write of the manifest, retrying while another holds it.
// Same lock as the local runner (src/runner/lock.ts: proper-lockfile on `<study>/.lock`, which
// works on network filesystems), so a local runner and Slurm tasks never write at once.
import { acquireStudyLock, StudyLockedError } from '../lock.ts';
import { LOCK_WAIT_MS } from '../timing.ts';

export interface LockRetryOptions {
  /** Give up after this long (default LOCK_WAIT_MS: a busy array of tiny tasks queues on the lock). */
  waitMs?: number;
}

/**
 * Runs `fn` while holding the study lock. Errors: StudyLockedError when the lock stayed taken for
 * `waitMs` (e.g. a local `llem run` holds it for its whole study), or whatever `fn` throws.
 */
export async function withStudyLock<T>(studyDir: string, fn: () => T | Promise<T>, options: LockRetryOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.waitMs ?? LOCK_WAIT_MS);
  let delayMs = 5;
  for (;;) {
    let compromised: Error | null = null;
    let lock;
    try {
      lock = await acquireStudyLock(studyDir, { onCompromised: (err) => (compromised = err) });
    } catch (err) {
      if (!(err instanceof StudyLockedError) || Date.now() >= deadline) throw err;
      // jittered backoff: many tasks finishing together must not retry in lock-step
      await new Promise((r) => setTimeout(r, delayMs * (0.5 + Math.random())));
      delayMs = Math.min(250, delayMs * 2);
      continue;
    }
    try {
      const value = await fn();
      if (compromised) throw new Error(`${studyDir}: the study lock was compromised while updating the manifest: ${(compromised as Error).message}`);
      return value;
    } finally {
      await lock.release();
    }
  }
}
