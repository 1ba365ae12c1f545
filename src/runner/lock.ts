// One runner per study dir: proper-lockfile on `<study>/.lock`, plus `.lock-owner.json` naming the
// holder so that a refusal can say who holds it. A lock whose holder is provably dead (same host,
// pid gone) is taken over at once, one taker at a time (takeOverDeadLock); otherwise
// proper-lockfile's stale time applies (a holder on another host of a shared filesystem, or one
// we cannot see).
import { mkdirSync, rmSync, rmdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
// proper-lockfile is loaded on first use, not at import: it installs signal-exit's SIGINT/SIGTERM
// listeners when loaded, and a listener present while `llem plan` (or run's planning) computes a big
// grid swallows Ctrl+C: the signal is only dispatched after the plan is printed, and then lost
// when the event loop ends, so the command finished with exit 0 instead of stopping with 130.
type ProperLockfile = typeof import('proper-lockfile');
let lockfileModule: ProperLockfile | null = null;
async function loadLockfile(): Promise<ProperLockfile> {
  lockfileModule ??= ((await import('proper-lockfile')) as unknown as { default: ProperLockfile }).default;
  return lockfileModule;
}
import { writeFileAtomicSync } from '../atomic-file.ts';
import { LOCK_DIR, LOCK_OWNER_FILE, LOCK_TAKEOVER_DIR } from '../study-dir/files.ts';
import { readLockOwner } from '../study-dir/read.ts';
import type { LockOwner } from '../study-dir/schema.ts';
import { LOCK_STALE_MS } from './timing.ts';
const TAKEOVER_MARKER_STALE_MS = 30_000;

/** Another runner holds the study: the user's to sort out, not a failed run (exit 2). */
export class StudyLockedError extends Error {
  readonly exitCode = 2;
  constructor(
    message: string,
    readonly owner: LockOwner | null,
  ) {
    super(message);
    this.name = 'StudyLockedError';
  }
}

export interface StudyLock {
  release(): Promise<void>;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the study lock or throws StudyLockedError ("study is being run by pid P since T").
 * `onCompromised` is called if the lock is lost later (its mtime was changed by someone else, or
 * it could not be refreshed within the stale time); the caller must stop scheduling.
 */
export async function acquireStudyLock(
  studyDir: string,
  options: { staleMs?: number; onCompromised: (err: Error) => void },
): Promise<StudyLock> {
  const lockfilePath = path.join(studyDir, LOCK_DIR);
  const opts = {
    lockfilePath,
    realpath: false,
    stale: options.staleMs ?? LOCK_STALE_MS,
    retries: 0,
    onCompromised: options.onCompromised,
  };
  let release: () => Promise<void>;
  const writeOwner = () => {
    const me: LockOwner = { pid: process.pid, hostname: os.hostname(), started_at: new Date().toISOString() };
    writeFileAtomicSync(path.join(studyDir, LOCK_OWNER_FILE), JSON.stringify(me) + '\n', { fsync: false });
  };
  let takenOver = false;
  const lockfile = await loadLockfile();
  try {
    release = await lockfile.lock(studyDir, opts);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    const owner = readLockOwner(studyDir);
    if (owner && owner.hostname === os.hostname() && owner.pid !== process.pid && !pidAlive(owner.pid)) {
      // The holder was killed without releasing (SIGKILL, OOM): take over without waiting.
      release = await takeOverDeadLock(studyDir, owner, () => lockfile.lock(studyDir, opts), writeOwner);
      takenOver = true;
    } else {
      throw lockedError(studyDir, owner, err as Error);
    }
  }
  if (!takenOver) writeOwner();
  return {
    async release() {
      try {
        rmSync(path.join(studyDir, LOCK_OWNER_FILE), { force: true });
        await release();
      } catch {
        // already released or compromised
      }
    },
  };
}

/**
 * Takes over a lock whose holder is dead. Several processes may find the same dead holder at the
 * same moment; without care two of them both remove the lock dir, the second removing the fresh
 * lock of the first, and both hold it. So: (1) one takeover at a time, by an atomic mkdir of
 * `.lock-takeover`; the losers get StudyLockedError (callers retry). (2) Inside it, the owner file
 * must still name the same dead holder (a taker before us has replaced or removed it). (3) The
 * dead holder's owner file goes before its lock dir, so a process that takes the free lock in the
 * gap is never mistaken for the dead holder by the next taker. (4) Our owner file is written
 * before the marker goes. A marker left by a taker killed inside this short section is removed
 * once it is older than TAKEOVER_MARKER_STALE_MS.
 */
async function takeOverDeadLock(
  studyDir: string,
  dead: LockOwner,
  lock: () => Promise<() => Promise<void>>,
  writeOwner: () => void,
): Promise<() => Promise<void>> {
  const marker = path.join(studyDir, LOCK_TAKEOVER_DIR);
  try {
    mkdirSync(marker);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    try {
      if (Date.now() - statSync(marker).mtimeMs > TAKEOVER_MARKER_STALE_MS) rmSync(marker, { recursive: true, force: true });
    } catch {
      // gone meanwhile
    }
    throw lockedError(studyDir, dead, new Error(`another process is taking over the lock of dead pid ${dead.pid}`));
  }
  try {
    const now = readLockOwner(studyDir);
    const same = now !== null && now.pid === dead.pid && now.hostname === dead.hostname && now.started_at === dead.started_at;
    if (!same) throw lockedError(studyDir, now, new Error(`the lock of dead pid ${dead.pid} was taken over by another process`));
    rmSync(path.join(studyDir, LOCK_OWNER_FILE), { force: true });
    try {
      rmdirSync(path.join(studyDir, LOCK_DIR));
    } catch {
      // removed by proper-lockfile's stale check of another process; the lock below decides
    }
    let release: () => Promise<void>;
    try {
      release = await lock();
    } catch (err) {
      throw lockedError(studyDir, readLockOwner(studyDir), err as Error);
    }
    writeOwner();
    return release;
  } finally {
    try {
      rmdirSync(marker);
    } catch {
      // removed as stale by another process after a very long pause of ours
    }
  }
}

function lockedError(studyDir: string, owner: LockOwner | null, cause: Error): StudyLockedError {
  const who = owner
    ? `pid ${owner.pid}${owner.hostname !== os.hostname() ? ` on ${owner.hostname}` : ''} since ${owner.started_at}`
    : `another process (${cause.message})`;
  return new StudyLockedError(`${studyDir}: study is being run by ${who}; refusing to start a second runner`, owner);
}
