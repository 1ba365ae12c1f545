// The parts of the process-tree cleanup that a real run cannot reach on demand: a process that
// survives SIGKILL (one stuck in a driver, simulated by dropping the SIGKILL to a real process)
// and the outcome such a run gets; a worker pid reused by another process before the cleanup.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { withTreeVerdict, type ChildOutcome } from '../../src/runner/child-handle.ts';
import { endTree, findRunTree } from '../../src/runner/process-tree.ts';
import { procStartTicks } from '../../src/runner/proc.ts';

test('a process that survives SIGKILL fails the run, naming its pid and command', { timeout: 60_000 }, async () => {
  // A real process whose SIGKILL we drop stands in for one stuck in a driver (state D).
  const stubborn = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)"], {
    detached: true,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    // only once its SIGTERM handler is installed
    await new Promise((resolve) => stubborn.stdout!.once('data', resolve));
    const end = await endTree({
      find: () => findRunTree({ leaderPid: -1, leaderStartTicks: null, known: new Map([[stubborn.pid!, null]]), markerEntry: null, isOtherLeader: () => false }),
      group: null,
      termGraceMs: 100,
      killWaitMs: 300,
      reap: false,
      sendSignal: (pid, signal) => {
        if (signal !== 'SIGKILL') process.kill(pid, signal);
      },
    });
    assert.deepEqual(end.cleanup.leftover_pids, [stubborn.pid]);
    assert.deepEqual(end.cleanup.sigkilled_pids, [stubborn.pid]);
    assert.deepEqual(end.cleanup.survivor_pids, [stubborn.pid]);
    assert.match(end.survivors[0]!, new RegExp(`pid ${stubborn.pid} \\(.*node -e .*state S`));
    const completed: ChildOutcome = {
      status: 'completed', error_type: null, message: null, phase_reached: 'teardown', stderr_tail: '', exit_code: 0, signal: null,
      result_path: '/x/result.json', result: null, malformed_messages: 0, tree_cleanup: end.cleanup,
    };
    const failed = withTreeVerdict(completed, end);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error_type, 'ProcessCrash');
    assert.equal(failed.result_path, null, 'no result is kept from a run that overlapped');
    assert.match(failed.message!, new RegExp(`1 process\\(es\\) of the run still alive .* after SIGKILL: pid ${stubborn.pid}`));
    const timedOut = withTreeVerdict({ ...completed, status: 'failed', error_type: 'TimeoutError', message: 'exceeded the 3 s run timeout' }, end);
    assert.equal(timedOut.error_type, 'TimeoutError', 'the first cause stays');
    assert.match(timedOut.message!, /^exceeded the 3 s run timeout; 1 process\(es\)/);
  } finally {
    stubborn.kill('SIGKILL');
  }
});

test('a reused leader pid (and so group id) is not taken for the run: its group and children are left alone', { timeout: 60_000 }, async () => {
  // A live group led by another process stands for one that took the dead worker's pid.
  const other = spawn('sh', ['-c', 'sleep 60 & echo started; wait'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    await new Promise((resolve) => other.stdout!.once('data', resolve));
    const ticks = procStartTicks(other.pid!)!;
    const scope = (leaderStartTicks: number) => ({ leaderPid: other.pid!, leaderStartTicks, known: new Map(), markerEntry: null, isOtherLeader: () => false });
    const asLeader = findRunTree(scope(ticks));
    assert.equal(asLeader.length, 1, 'with the start time recorded for that pid, its child is in the tree');
    assert.equal(asLeader[0]!.ppid, other.pid);
    assert.deepEqual(findRunTree(scope(ticks - 1)), [], 'with another start time, nothing of that group is ours');
  } finally {
    process.kill(-other.pid!, 'SIGKILL');
  }
});
