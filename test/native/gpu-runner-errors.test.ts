// The GPU settings are restored when the runner itself fails (issue 15): an error in the runner
// after a run's settings were applied (its run dir cannot be made) rejects run() and still leaves
// the GPU at its original limit; and an uncaught error that ends the process is caught by the
// last resort, the process's 'exit' hook. The fake GPU through the real addon, in this process.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { nodeArgsFor } from '../../src/node-entry.ts';
import { StudyRunner } from '../../src/runner/study-runner.ts';
import { fixtureWorker, makePlan, tempStudy, type TempStudy } from '../runner/helpers.ts';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, fakeStateFile, readFakeStateLog, writeFakeScript } from './fake.ts';

const scenario = fileURLToPath(new URL('./gpu-scenario.ts', import.meta.url));
let study: TempStudy;
let state: string;
let env: Record<string, string>;
const limitMw = () => readFakeStateLog(state).filter((e) => e.kind === 'power_limit_mw').at(-1)?.values[0] ?? 700_000;

describe('restore when the runner fails', { timeout: 120_000 }, () => {
  before(async () => {
    await ensureAddonBuilt();
    const libs = await buildFakeLibs();
    const plan = makePlan([{ fixture_mode: 'ok' }]);
    for (const c of plan.configs) c.config = { ...c.config, gpu: { power_limit_w: 250 } };
    study = tempStudy(plan);
    const script = writeFakeScript(study.root, { devices: [{ power: [[0, 400_000]] }] });
    state = fakeStateFile(script.path);
    env = fakeGpuEnv(libs, script.path);
    // the runner in this process opens NVML through the same addon: the fakes must be in our env
    Object.assign(process.env, env);
    delete process.env.CUDA_VISIBLE_DEVICES;
  });
  after(() => study?.cleanup());

  test('an error in the runner after the apply (the run dir cannot be made): run() rejects, the GPU is back at its original limit', async () => {
    rmSync(path.join(study.studyDir, 'runs'), { recursive: true, force: true });
    writeFileSync(path.join(study.studyDir, 'runs'), 'not a directory\n');
    await assert.rejects(new StudyRunner(study.studyDir, { workerCommand: fixtureWorker, fsync: false }).run(), /ENOTDIR|EEXIST|not a directory/);
    const sets = readFakeStateLog(state).filter((e) => e.kind === 'power_limit_mw').map((e) => e.values[0]);
    assert.deepEqual(sets, [250_000, 700_000], 'applied before the failure, then restored');
    assert.equal(limitMw(), 700_000);
  });

  test('an uncaught error ends the process: its exit hook restores and says so', async () => {
    const dir = path.join(study.root, 'crash');
    mkdirSync(dir);
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, nodeArgsFor(scenario, ['apply-then-throw', JSON.stringify({ studyDir: dir, settings: { power_limit_w: 300 } })]), { env: { ...process.env, ...env } }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(JSON.parse(r.stdout).devices[0].enforced.power_limit_w, 300);
    assert.match(r.stderr, /an uncaught error in the runner/);
    assert.match(r.stderr, /llem: on exit: restored Fake H100 0 \(GPU-[0-9a-f-]+\): power limit 300 W → 700 W/);
    assert.equal(limitMw(), 700_000);
  });
});
