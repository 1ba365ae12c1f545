// `execution.parallel: per_gpu` on the local launcher, with the fake NVML presenting 4 GPUs at
// 100/200/300/400 W: four children at once, each pinned to its own GPU by UUID and measuring only it.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { nodeArgsFor } from '../../src/node-entry.ts';
import { StudyRunner } from '../../src/runner/study-runner.ts';
import { buildFakeLibs, fakeGpuEnv, fakeUuid, writeFakeScript } from '../native/fake.ts';
import { makePlan, tempStudy, type TempStudy } from '../runner/helpers.ts';

const gpuWorker = fileURLToPath(new URL('./fixtures/gpu-worker.ts', import.meta.url));
const POWER_W = [100, 200, 300, 400];

describe('parallel: per_gpu with 4 (fake) GPUs', { timeout: 600_000 }, () => {
  let study: TempStudy;
  let gpuLog: string;
  before(async () => {
    const libs = await buildFakeLibs();
    study = tempStudy(makePlan([{}, {}], { nCycles: 3, execution: { parallel: 'per_gpu', experiment_timeout_seconds: 300 } }));
    const script = writeFakeScript(study.root, { devices: POWER_W.map((w) => ({ power: [[0, w * 1000]] })) });
    // the parent reads NVML (GPU slots) through the same addon: the fakes must be in our own env
    Object.assign(process.env, fakeGpuEnv(libs, script.path));
    delete process.env.CUDA_VISIBLE_DEVICES;
    gpuLog = path.join(study.root, 'gpu-log.jsonl');
    mkdirSync(path.join(study.root, 'barrier'));
  });
  after(() => study?.cleanup());

  it('runs 4 children at once, each on its own GPU, each measuring only that GPU', async () => {
    const runner = new StudyRunner(study.studyDir, {
      workerCommand: (specPath) => ({ command: process.execPath, args: nodeArgsFor(gpuWorker, ['--run-spec', specPath]) }),
      env: { ...process.env, FIXTURE_GPU_LOG: gpuLog, FIXTURE_BARRIER: '4', FIXTURE_BARRIER_DIR: path.join(study.root, 'barrier') },
      fsync: false,
    });
    const code = await runner.run();
    assert.equal(code, 0);
    const m = runner.snapshot();
    assert.equal(m.counts.completed, 6);

    const lines = readFileSync(gpuLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.equal(lines.length, 6);
    // the first four waited for each other: only possible when all four ran at once
    assert.deepEqual(lines.filter((l) => l.index < 4).map((l) => l.barrier_met), [true, true, true, true]);
    const firstWave = lines.filter((l) => l.index < 4).map((l) => l.spec_cvd);
    assert.equal(new Set(firstWave).size, 4, 'four different GPUs in the first wave');
    // never more than 4 at once
    const events = lines.flatMap((l) => [[l.started_at_ms, 1], [l.ended_at_ms, -1]] as Array<[number, number]>).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let live = 0;
    let peak = 0;
    for (const [, d] of events) peak = Math.max(peak, (live += d));
    assert.ok(peak <= 4, `peak concurrency ${peak}`);
    for (const l of lines) {
      const gpu = POWER_W.findIndex((_, i) => fakeUuid(i) === l.spec_cvd);
      assert.ok(gpu >= 0, `run ${l.index} pinned to a GPU UUID (${l.spec_cvd})`);
      assert.equal(l.env_cvd, l.spec_cvd, 'the child env pins the same GPU');
      assert.deepEqual(l.devices, [fakeUuid(gpu)], 'the meter measures that GPU only');
      assert.equal(l.unavailable, null);
      const meanW = l.energy_j / l.window_s;
      assert.ok(Math.abs(meanW - POWER_W[gpu]!) / POWER_W[gpu]! < 0.05, `run ${l.index}: ${meanW.toFixed(1)} W on a ${POWER_W[gpu]} W GPU`);
    }
  });
});
