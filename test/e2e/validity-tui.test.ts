// The validity gate in a real terminal: tmux runs `llem run` (CI unset) on a study whose fake GPU
// throttles for the whole window, with the real worker (command backend, fake NVML through the real
// addon). The detail view shows each invalid attempt's reasons while the run is measured again;
// once the study ends, `llem watch` shows the run with its own glyph and the reasons of every
// attempt. Each attempt finishes only when the test hands it a token (the fixture's `take:` step),
// so nothing here races the keys on a loaded machine.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { commandStudy, fakeGpuStudies } from '../worker/helpers.ts';
import { readManifest } from '../../src/study-dir/read.ts';
import { Tmux } from './tmux.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const studies = fakeGpuStudies();

async function waitForFile(file: string, tmux: Tmux, what: string, timeoutMs = 120_000): Promise<string> {
  const start = Date.now();
  while (!existsSync(file) || readFileSync(file, 'utf8').trim() === '') {
    assert.ok(Date.now() - start < timeoutMs, `${what}; screen:\n${tmux.capture()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return readFileSync(file, 'utf8').trim();
}

test('an invalid run in the TUI: reasons in the detail view while it is measured again, its own glyph once it ends invalid', { timeout: 400_000 }, async () => {
  const root = studies.root();
  const gate = join(root, 'gate');
  mkdirSync(gate);
  let tokens = 0;
  const letOneAttemptFinish = () => writeFileSync(join(gate, `token-${++tokens}`), '');
  const yaml = join(root, 'study.yaml');
  writeFileSync(yaml, commandStudy({ n: 4, env: { FIXTURE_STEPS: `sleep:300;take:${gate}` }, validity: '{max_invalid_retries: 1}' }));
  const gpuEnv = studies.gpu(root, [{ power: [[0, 200_000]], throttle: [[0, 0x40]] }]);
  const envArgs = Object.entries(gpuEnv).map(([k, v]) => `${k}=${v}`).join(' ');
  const tmux = new Tmux('validity');
  try {
    tmux.start(120, 30, repo);
    const exitFile = join(root, 'run.exit');
    tmux.sendLine(`env -u CI -u CUDA_VISIBLE_DEVICES ${envArgs} node bin/llem.js run ${yaml} --out ${join(root, 'out')}; echo $? > ${exitFile}`);
    await tmux.waitFor((s) => s.includes('Press Enter to start'), 'the pre-flight screen', 120_000);
    tmux.keys('Enter');
    await tmux.waitFor((s) => /1 running/.test(s), 'the study screen with the run going', 120_000);
    tmux.keys('Enter');
    await tmux.waitFor((s) => /attempt 1: running/.test(s), 'the detail view', 60_000);

    letOneAttemptFinish();
    let screen = await tmux.waitFor((s) => /attempt 1: invalid/.test(s) && /attempt 2: running/.test(s), 'attempt 1 judged invalid, attempt 2 running', 120_000);
    assert.match(screen, /invalid, not averaged \(result kept in its dir\):/);
    assert.match(screen, /- thermal_throttle: thermal throttling during 100\.0 % of the window \(more than 5\.0 %\)/);

    letOneAttemptFinish();
    assert.equal(await waitForFile(exitFile, tmux, 'llem run did not exit after its last attempt'), '1', 'a study whose run ended invalid exits 1');
    screen = tmux.captureJoined();
    assert.match(screen, /llem: study silent finished with failures .*: 0 completed, 0 failed, 0 skipped, 0 interrupted, 1 invalid, 0 pending/);
    const out = join(root, 'out');
    const studyDir = join(out, readdirSync(out)[0]!);
    assert.deepEqual(readManifest(studyDir).runs[0]!.attempts.map((a) => a.status), ['invalid', 'invalid']);

    // the finished study, as `llem watch` shows it
    const watchExit = join(root, 'watch.exit');
    tmux.sendLine(`clear; env -u CI node bin/llem.js watch ${studyDir}; echo $? > ${watchExit}`);
    // (a watch over a finished study leaves on its own 5 s after its last key, unless in the detail view)
    screen = await tmux.waitFor((s) => s.includes('[watching]') && /1 invalid/.test(s), 'the watch screen with the invalid run', 120_000);
    tmux.keys('Enter');
    assert.ok(screen.includes('⊘'), `the invalid glyph in the cycle cell; screen:\n${screen}`);
    screen = await tmux.waitFor((s) => /attempt 2: invalid/.test(s), 'the detail view of the invalid run', 60_000);
    assert.match(screen, /run 0000-\w+-c1 {2}cycle 1 {2}invalid/);
    assert.match(screen, /attempt 1: invalid/);
    assert.equal((screen.match(/- thermal_throttle: thermal throttling during 100\.0 % of the window/g) ?? []).length, 2, 'both attempts\' reasons');
    tmux.keys('q', true);
    // a watch over a finished study leaves with the code `llem run` had: 1, a run ended invalid
    assert.equal(await waitForFile(watchExit, tmux, 'llem watch did not exit on q'), '1');
  } finally {
    tmux.kill();
  }
});
