// Pure parts of the slurm launcher: command output parsers, array spec, time limits, state mapping.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { arraySpec, parseTimeOption, slurmTime, taskScript, timeLimitFromEstimate } from '../../src/runner/slurm/array.ts';
import { parseSbatchParsable, parseScontrolShowJob, parseSqueue } from '../../src/runner/slurm/commands.ts';
import { taskRangeIncludes } from '../../src/runner/slurm/launcher.ts';
import { verdictForSlurmState } from '../../src/runner/slurm/states.ts';
import { finalStudyStatus } from '../../src/runner/transitions.ts';
import type { Estimate } from '../../src/study/types.ts';

describe('arraySpec', () => {
  const table: Array<[number[], number | null, string]> = [
    [[0, 1, 2, 3, 5, 7, 8, 9], 4, '0-3,5,7-9%4'],
    [[5], null, '5'],
    [[3, 1, 2, 2], 1, '1-3%1'],
    [[0, 2, 4], 0, '0,2,4'],
  ];
  for (const [indices, k, want] of table) {
    it(`${JSON.stringify(indices)} %${k} → ${want}`, () => assert.equal(arraySpec(indices, k), want));
  }
  it('refuses an empty or negative list', () => {
    assert.throws(() => arraySpec([], 2), /no indices/);
    assert.throws(() => arraySpec([-1], 2), /bad index/);
  });
});

describe('time limits', () => {
  it('rounds up to whole minutes', () => {
    assert.equal(slurmTime(1), '00:01:00');
    assert.equal(slurmTime(61), '00:02:00');
    assert.equal(slurmTime(3600), '01:00:00');
    assert.equal(slurmTime(90000), '1-01:00:00');
  });
  it('derives the limit from the slowest config of the array', () => {
    const est: Estimate = {
      total_seconds: 0,
      low_seconds: 0,
      high_seconds: 0,
      finish_at: '',
      per_config: [
        { config_hash: 'a', run_seconds: 100, low_seconds: 50, high_seconds: 200, memory_need_bytes: null, memory_free_bytes: null, memory_fit: 'unknown', memory_reason: '' },
        { config_hash: 'b', run_seconds: 1000, low_seconds: 500, high_seconds: 2000, memory_need_bytes: null, memory_free_bytes: null, memory_fit: 'unknown', memory_reason: '' },
      ],
    };
    assert.equal(timeLimitFromEstimate(est, ['a']), slurmTime(200 * 2 + 300));
    assert.equal(timeLimitFromEstimate(est, ['a', 'b']), slurmTime(2000 * 2 + 300));
    assert.equal(timeLimitFromEstimate(est, ['zzz']), slurmTime(30 * 60 * 2 + 300));
    // room for the re-measurements a task makes of an invalid run: one estimate and one gap each
    assert.equal(timeLimitFromEstimate(est, ['a'], { count: 2, gapSeconds: 60 }), slurmTime(200 * 4 + 300 + 2 * 60));
  });
  it('checks --time', () => {
    for (const ok of ['10', '1:00:00', '30:00', '2-00:00:00']) assert.equal(parseTimeOption(ok), ok);
    for (const bad of ['soon', '1h', '']) assert.throws(() => parseTimeOption(bad), /--time/);
  });
});

describe('command output parsers', () => {
  it('sbatch --parsable', () => {
    assert.equal(parseSbatchParsable('1234\n'), '1234');
    assert.equal(parseSbatchParsable('1234;cluster1\n'), '1234');
    assert.throws(() => parseSbatchParsable('sbatch: error\n'), /no job id/);
  });
  it('squeue -r', () => {
    const tasks = parseSqueue('3|0|RUNNING|None\n3|1|PENDING|JobArrayTaskLimit\n7|N/A|PENDING|Priority\n\n');
    assert.deepEqual(tasks, [
      { jobId: '3', taskId: 0, state: 'RUNNING', reason: 'None' },
      { jobId: '3', taskId: 1, state: 'PENDING', reason: 'JobArrayTaskLimit' },
      { jobId: '7', taskId: null, state: 'PENDING', reason: 'Priority' },
    ]);
  });
  it('scontrol show job -o, values with spaces, array meta record', () => {
    const out = [
      'JobId=5 ArrayJobId=3 ArrayTaskId=2 JobName=wrap JobState=TIMEOUT Reason=TimeLimit Dependency=(null) ExitCode=0:15 RunTime=00:01:20 TimeLimit=00:01:00 Command=/tmp/a b.sh WorkDir=/tmp/x y',
      'JobId=3 ArrayJobId=3 ArrayTaskId=3-5%2 JobState=PENDING Reason=JobArrayTaskLimit ExitCode=0:0',
    ].join('\n');
    const [a, b] = parseScontrolShowJob(out);
    assert.equal(a!.jobId, '5');
    assert.equal(a!.arrayJobId, '3');
    assert.equal(a!.arrayTaskId, 2);
    assert.equal(a!.state, 'TIMEOUT');
    assert.equal(a!.exitSignal, 15);
    assert.equal(a!.timeLimit, '00:01:00');
    assert.equal(a!.fields.Command, '/tmp/a b.sh');
    assert.equal(a!.fields.WorkDir, '/tmp/x y');
    assert.equal(b!.arrayTaskId, null);
    assert.equal(b!.arrayTaskIdRaw, '3-5%2');
    assert.ok(taskRangeIncludes(b!.arrayTaskIdRaw!, 4));
    assert.ok(!taskRangeIncludes(b!.arrayTaskIdRaw!, 6));
    assert.ok(taskRangeIncludes('1,4,7-9', 8));
  });
});

describe('Slurm state → run verdict', () => {
  const table: Array<[string, string, string | null]> = [
    ['TIMEOUT', 'failed', 'TimeoutError'],
    ['DEADLINE', 'failed', 'TimeoutError'],
    ['OUT_OF_MEMORY', 'failed', 'OutOfMemory'],
    ['CANCELLED', 'interrupted', 'UserInterrupted'],
    ['CANCELLED by 0', 'interrupted', 'UserInterrupted'],
    ['PREEMPTED', 'interrupted', null],
    ['NODE_FAIL', 'interrupted', null],
    ['BOOT_FAIL', 'interrupted', null],
    ['FAILED', 'failed', 'ProcessCrash'],
  ];
  for (const [state, status, errorType] of table) {
    it(`${state} → ${status}/${errorType}`, () => {
      const v = verdictForSlurmState({ state, reason: 'TimeLimit' });
      assert.equal(v.kind, 'ended');
      if (v.kind !== 'ended') return;
      assert.equal(v.status, status);
      assert.equal(v.errorType, errorType);
      assert.match(v.message, new RegExp(state.split(' ')[0]!));
    });
  }
  for (const state of ['PENDING', 'RUNNING', 'COMPLETING', 'REQUEUED', 'SUSPENDED']) {
    it(`${state} is active`, () => assert.equal(verdictForSlurmState({ state }).kind, 'active'));
  }
  it('COMPLETED is left to the worker', () => assert.equal(verdictForSlurmState({ state: 'COMPLETED' }).kind, 'completed'));
});

describe('finalStudyStatus', () => {
  const s = (...xs: Array<'pending' | 'running' | 'completed' | 'failed' | 'skipped' | 'interrupted'>) => xs.map((status) => ({ status }));
  it('null while work remains, else the worst outcome', () => {
    assert.equal(finalStudyStatus(s('completed', 'pending')), null);
    assert.equal(finalStudyStatus(s('completed', 'running')), null);
    assert.equal(finalStudyStatus(s('completed', 'skipped')), 'completed');
    assert.equal(finalStudyStatus(s('completed', 'failed')), 'failed');
    assert.equal(finalStudyStatus(s('failed', 'interrupted')), 'interrupted');
  });
});

describe('taskScript', () => {
  it('execs llem worker with the array index as the run, quoting paths', () => {
    const script = taskScript({ nodePath: '/usr/bin/node', llemArgs: ['--import', 'file:///x/tsx', '/repo/src/cli/main.ts'], studyDir: "/shared/it's here", workerEntry: null });
    assert.match(script, /^#!\/bin\/bash\n/);
    assert.match(script, /exec '\/usr\/bin\/node' '--import' 'file:\/\/\/x\/tsx' '\/repo\/src\/cli\/main.ts' 'worker' '--study' '\/shared\/it'\\''s here' --run "\$SLURM_ARRAY_TASK_ID"/);
  });
});
