// One runner per study dir: proper-lockfile on `<study>/.lock`, plus `.lock-owner.json` naming the
// holder so that a refusal can say who holds it. A lock whose holder is provably dead (same host,
// pid gone) is taken over at once; otherwise proper-lockfile's stale time applies (a holder on
// another host of a shared filesystem, or one we cannot see).
import { readFileSync, rmSync, rmdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { writeFileAtomicSync } from './manifest.ts';

export const LOCK_DIR = '.lock';
export const LOCK_OWNER_FILE = '.lock-owner.json';

export interface LockOwner {
  pid: number;
  hostname: string;
  started_at: string;
}

export class StudyLockedError extends Error {
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

export function readLockOwner(studyDir: string): LockOwner | null {
  try {
    const o = JSON.parse(readFileSync(path.join(studyDir, LOCK_OWNER_FILE), 'utf8')) as LockOwner;
    return typeof o.pid === 'number' ? o : null;
  } catch {
    return null;
  }
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
    stale: options.staleMs ?? 10_000,
    retries: 0,
    onCompromised: options.onCompromised,
  };
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(studyDir, opts);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    const owner = readLockOwner(studyDir);
    if (owner && owner.hostname === os.hostname() && owner.pid !== process.pid && !pidAlive(owner.pid)) {
      // The holder was killed without releasing (SIGKILL, OOM): take over without waiting.
      try {
        rmdirSync(lockfilePath);
      } catch {
        // someone else removed it first; the retry below decides
      }
      try {
        release = await lockfile.lock(studyDir, opts);
      } catch (err2) {
        throw lockedError(studyDir, readLockOwner(studyDir), err2 as Error);
      }
    } else {
      throw lockedError(studyDir, owner, err as Error);
    }
  }
  const me: LockOwner = { pid: process.pid, hostname: os.hostname(), started_at: new Date().toISOString() };
  writeFileAtomicSync(path.join(studyDir, LOCK_OWNER_FILE), JSON.stringify(me) + '\n', { fsync: false });
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

function lockedError(studyDir: string, owner: LockOwner | null, cause: Error): StudyLockedError {
  const who = owner
    ? `pid ${owner.pid}${owner.hostname !== os.hostname() ? ` on ${owner.hostname}` : ''} since ${owner.started_at}`
    : `another process (${cause.message})`;
  return new StudyLockedError(`${studyDir}: study is being run by ${who}; refusing to start a second runner`, owner);
}
