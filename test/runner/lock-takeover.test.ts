// Several processes find the same dead lock holder at the same moment: exactly one takes the lock
// over, the others are refused (StudyLockedError), none is told it holds a lock someone else holds.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from '../../src/node-entry.ts';
import { LOCK_DIR, LOCK_OWNER_FILE, LOCK_TAKEOVER_DIR } from '../../src/study-dir/files.ts';
import { readLockOwner } from '../../src/study-dir/read.ts';

const contender = fileURLToPath(new URL('./fixtures/lock-contender.ts', import.meta.url));
const CONTENDERS = 6;
const ROUNDS = 3;

interface Outcome {
  got: boolean;
  error: string;
  pid: number;
}

function deadPid(): number {
  // a pid far above the usual pid_max in use and checked to be free
  for (let pid = 4_000_000 + Math.floor(Math.random() * 100_000); ; pid++) {
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
}

async function race(studyDir: string, goFile: string): Promise<Outcome[]> {
  const children = Array.from({ length: CONTENDERS }, () =>
    spawn(process.execPath, nodeArgsFor(contender, [studyDir, goFile, '3000']), { stdio: ['ignore', 'pipe', 'inherit'], detached: true }),
  );
  try {
    const outputs = children.map((c) => {
      let out = '';
      c.stdout!.on('data', (d) => (out += d));
      return {
        ready: new Promise<void>((resolve) => {
          const check = () => (out.includes('ready\n') ? resolve() : c.stdout!.once('data', check));
          check();
        }),
        closed: new Promise<string>((resolve) => c.on('close', () => resolve(out))),
      };
    });
    await Promise.all(outputs.map((o) => o.ready));
    writeFileSync(goFile, 'go');
    const texts = await Promise.all(outputs.map((o) => o.closed));
    return texts.map((t) => {
      const line = t.split('\n').find((l) => l.startsWith('{"got"'));
      assert.ok(line, `a contender printed no outcome: ${t}`);
      return JSON.parse(line) as Outcome;
    });
  } finally {
    for (const c of children) {
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        // exited
      }
    }
  }
}

test('contenders taking over a dead holder at the same moment: exactly one gets the lock', { timeout: 300_000 }, async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'llem-lock-race-'));
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const studyDir = path.join(root, `study-${round}`);
      mkdirSync(studyDir);
      // the lock of a runner killed with SIGKILL: lock dir and owner file left behind, pid gone
      mkdirSync(path.join(studyDir, LOCK_DIR));
      const dead = deadPid();
      writeFileSync(path.join(studyDir, LOCK_OWNER_FILE), JSON.stringify({ pid: dead, hostname: os.hostname(), started_at: 'before the crash' }));
      const outcomes = await race(studyDir, path.join(root, `go-${round}`));
      const winners = outcomes.filter((o) => o.got);
      assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(outcomes)}`);
      for (const o of outcomes.filter((x) => !x.got)) assert.equal(o.error, 'StudyLockedError', JSON.stringify(o));
      // released by the winner, and the takeover marker is gone
      assert.equal(existsSync(path.join(studyDir, LOCK_DIR)), false);
      assert.equal(existsSync(path.join(studyDir, LOCK_TAKEOVER_DIR)), false);
      assert.equal(readLockOwner(studyDir), null);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a takeover marker left by a taker killed mid-takeover is cleared once stale', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'llem-lock-marker-'));
  try {
    const { acquireStudyLock } = await import('../../src/runner/lock.ts');
    mkdirSync(path.join(root, LOCK_DIR));
    writeFileSync(path.join(root, LOCK_OWNER_FILE), JSON.stringify({ pid: deadPid(), hostname: os.hostname(), started_at: 'then' }));
    const marker = path.join(root, LOCK_TAKEOVER_DIR);
    mkdirSync(marker);
    // fresh marker: another takeover is in progress, refused
    await assert.rejects(acquireStudyLock(root, { onCompromised: () => {} }), /StudyLockedError|taking over/);
    const old = new Date(Date.now() - 120_000);
    const { utimesSync } = await import('node:fs');
    utimesSync(marker, old, old);
    // stale marker: cleared by this attempt (still refused), the next attempt takes over
    await assert.rejects(acquireStudyLock(root, { onCompromised: () => {} }), { name: 'StudyLockedError' });
    assert.equal(existsSync(marker), false);
    const lock = await acquireStudyLock(root, { onCompromised: () => {} });
    assert.equal(readLockOwner(root)?.pid, process.pid);
    await lock.release();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
