// The parts of the process-tree cleanup that a real run cannot reach on demand: a process that
// survives SIGKILL (one stuck in a driver, simulated by dropping the SIGKILL to a real process),
// and the outcome such a run gets.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { withTreeVerdict, type ChildOutcome } from '../../src/runner/child-handle.ts';
import { endTree, findRunTree } from '../../src/runner/process-tree.ts';

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
      find: () => findRunTree({ leaderPid: -1, known: new Map([[stubborn.pid!, null]]), markerEntry: null, isOtherLeader: () => false }),
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
