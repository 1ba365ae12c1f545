// `llem status [--json]` (a stable interface) and `llem repair-manifest` as real commands.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { StudyRunner } from '../../src/runner/index.ts';
import { readRunSpec } from '../../src/runner/child-side.ts';
import { fixtureWorker, llemBin, makePlan, tempStudy } from './helpers.ts';

const run = promisify(execFile);
const llem = (args: string[]) =>
  run(process.execPath, [llemBin, ...args], { encoding: 'utf8' }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );

test('status --json has exactly the stable fields; repair-manifest fixes a corrupt manifest', async () => {
  const t = tempStudy(makePlan([{ fixture_mode: 'ok' }, { fixture_mode: 'no-result' }], { nCycles: 1 }));
  try {
    assert.equal(await new StudyRunner(t.studyDir, { workerCommand: fixtureWorker }).run(), 1);
    const status = await llem(['status', t.studyDir, '--json']);
    assert.equal(status.code, 0, status.stderr);
    const json = JSON.parse(status.stdout);
    assert.deepEqual(Object.keys(json), ['status', 'counts', 'runs', 'runner', 'stopping', 'gpu_settings_unrestored']);
    assert.equal(json.stopping, null, 'a fixed n_cycles: no stopping rule');
    assert.deepEqual(json.gpu_settings_unrestored, []);
    assert.equal(json.status, 'failed');
    // nobody holds the study once its runner ended
    assert.deepEqual(json.runner, { launcher: 'local', pid: null, host: null, alive: false, since: null, slurm_jobs: [] });
    assert.deepEqual(json.counts, { pending: 0, running: 0, completed: 1, failed: 1, skipped: 0, interrupted: 0, invalid: 0 });
    assert.deepEqual(Object.keys(json.runs[0]), ['index', 'config_hash', 'cycle', 'status', 'error_type', 'attempts', 'result', 'validity', 'invalid_attempts']);
    assert.deepEqual(json.runs[0].validity, { valid: true, reasons: [] });
    assert.deepEqual(json.runs[1], { index: 1, config_hash: '01ababababababab', cycle: 1, status: 'failed', error_type: 'InvalidResult', attempts: 1, result: null, validity: null, invalid_attempts: 0 });

    const plain = await llem(['status', t.studyDir]);
    assert.match(plain.stdout, /fixture-study: failed — 1\/2 completed, 1 failed/);

    writeFileSync(path.join(t.studyDir, 'manifest.json'), '{ truncated');
    const broken = await llem(['status', t.studyDir]);
    assert.equal(broken.code, 2); // a damaged study dir is bad input
    assert.match(broken.stderr, /manifest\.json: not valid JSON.*repair-manifest/);
    const repaired = await llem(['repair-manifest', t.studyDir]);
    assert.equal(repaired.code, 0, repaired.stderr);
    assert.match(repaired.stdout, /rebuilt .*manifest\.json: 2 runs/);
    const after = JSON.parse((await llem(['status', t.studyDir, '--json'])).stdout);
    assert.deepEqual(after, json);
  } finally {
    t.cleanup();
  }
});

test('readRunSpec names the file and field of a bad run spec', async () => {
  const t = tempStudy(makePlan([{}]));
  try {
    const spec = path.join(t.root, 'run.json');
    writeFileSync(spec, JSON.stringify({ v: 1, run_dir: 'x', run_id: 'x', result_path: 'x', power_csv_path: 'x', study_dir: 'x', config: {} }));
    await assert.rejects(readRunSpec(['node', 'w', '--run-spec', spec]), new RegExp(`${spec.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: field "config_hash" must be a string`));
    await assert.rejects(readRunSpec(['node', 'w']), /missing --run-spec/);
  } finally {
    t.cleanup();
  }
});
