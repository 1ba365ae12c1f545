// GPU settings with the Slurm launcher (issue 15), on the real single-node Slurm with the fake GPU
// and the real measuring worker: each array task applies its run's power limit to its own GPU
// before its child starts and restores it at its end (recorded under its node name), and `llem
// cancel` leaves the node restored (the task restores in its SIGTERM handler).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readManifest } from '../../src/study-dir/read.ts';
import { runResultSchema } from '../../src/results/schema.ts';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, fakeStateFile, readFakeStateLog, writeFakeScript, type FakeLibs } from '../native/fake.ts';
import { endSlurmStudiesUnder, llem, sleep, slurmDown, slurmUp } from './cluster-helpers.ts';
import { gpuStudyYaml } from '../native/fixtures/gpu-study.ts';

let libs: FakeLibs;

function setup(name: string, sleepMs: number) {
  const root = mkdtempSync(path.join(os.tmpdir(), `llem-slurm-gpu-${name}-`));
  const { path: script } = writeFakeScript(root, { devices: [{ power: [[0, 500_000]] }] });
  const yaml = path.join(root, 'study.yaml');
  writeFileSync(yaml, gpuStudyYaml({ name: `slurm-gpu-${name}`, sweep: '  gpu.power_limit_w: [200, 300]', sleepMs }));
  const env: NodeJS.ProcessEnv = { ...process.env, ...fakeGpuEnv(libs, script), LLEM_SLURM_POLL_MS: '1000', CI: 'true' };
  for (const k of ['CUDA_VISIBLE_DEVICES', 'LLEM_WORKER_ENTRY', 'GPU_FIXTURE_GATE']) delete env[k];
  const state = fakeStateFile(script);
  const limitMw = () => readFakeStateLog(state).filter((e) => e.kind === 'power_limit_mw').at(-1)?.values[0] ?? 700_000;
  return { root, yaml, env, state, limitMw, out: path.join(root, 'out') };
}

function gpuState(dir: string): { nodes: Record<string, { devices: Record<string, { applied: object }> }> } {
  return JSON.parse(readFileSync(path.join(dir, 'gpu-state.json'), 'utf8'));
}

describe('GPU settings through Slurm array tasks', { concurrency: true, timeout: 900_000 }, () => {
  before(async () => {
    await ensureAddonBuilt();
    libs = await buildFakeLibs();
    slurmUp();
  });
  after(() => slurmDown());

  it('each task applies its run\'s cap before its child and restores the node\'s original at its end', async () => {
    const s = setup('apply', 800);
    try {
      const r = await llem(['run', s.yaml, '--launcher', 'slurm', '--out', s.out, '--max-concurrent', '1', '--time', '10', '--no-tui'], s.env);
      assert.equal(r.code, 0, r.stderr.slice(-3000));
      const dir = path.join(s.out, readdirSync(s.out)[0]!);
      assert.equal(readManifest(dir).counts.completed, 2);
      for (const d of readdirSync(path.join(dir, 'runs'))) {
        const res = runResultSchema.parse(JSON.parse(readFileSync(path.join(dir, 'runs', d, 'result.json'), 'utf8')));
        const dev = res.environment.gpu_settings!.devices[0]!;
        assert.ok(dev.requested.power_limit_w === 200 || dev.requested.power_limit_w === 300, JSON.stringify(dev));
        assert.equal(dev.enforced.power_limit_w, dev.requested.power_limit_w);
        const meanW = res.metrics.energy_j! / res.metrics.window_s;
        assert.ok(Math.abs(meanW - dev.requested.power_limit_w!) / dev.requested.power_limit_w! < 0.03, `${meanW} W under a ${dev.requested.power_limit_w} W cap`);
      }
      // every task restored before the next one applied: 200, 700, 300, 700 (dry sets of 700 aside)
      const sets = readFakeStateLog(s.state).filter((e) => e.kind === 'power_limit_mw').map((e) => e.values[0]! / 1000);
      const changes = sets.filter((w, i) => i === 0 || w !== sets[i - 1]);
      assert.deepEqual(changes[0] === 700 ? changes.slice(1) : changes, [200, 700, 300, 700]);
      assert.equal(s.limitMw(), 700_000);
      // recorded under the Slurm node's name, nothing left listed
      const nodes = gpuState(dir).nodes;
      assert.deepEqual(Object.keys(nodes), [os.hostname().split('.')[0]]);
      assert.ok(Object.values(nodes).every((n) => Object.values(n.devices).every((d) => Object.keys(d.applied).length === 0)));
    } finally {
      await endSlurmStudiesUnder(s.root, () => rmSync(s.root, { recursive: true, force: true }));
    }
  });

  it('llem cancel during a 200 W run: the task restores the GPU in its SIGTERM handler; status lists nothing left', async () => {
    const s = setup('cancel', 600_000);
    try {
      const run = await llem(['run', s.yaml, '--launcher', 'slurm', '--detach', '--out', s.out, '--max-concurrent', '1', '--time', '10'], s.env);
      assert.equal(run.code, 0, run.stderr);
      const dir = run.stdout.trim().split(' ')[1]!;
      const end = Date.now() + 180_000;
      while (s.limitMw() !== 200_000 || readManifest(dir).runs[0]!.status !== 'running') {
        if (Date.now() > end) throw new Error(`the first task never ran at 200 W: ${JSON.stringify(readManifest(dir).counts)}`);
        await sleep(200);
      }
      const cancel = await llem(['cancel', dir], s.env);
      assert.equal(cancel.code, 0, cancel.stderr);
      assert.doesNotMatch(cancel.stderr, /GPU settings changed/);
      assert.equal(s.limitMw(), 700_000);
      assert.equal(readManifest(dir).runs[0]!.status, 'interrupted');
      const status = await llem(['status', dir, '--json'], s.env);
      assert.deepEqual(JSON.parse(status.stdout).gpu_settings_unrestored, []);
      assert.ok(existsSync(path.join(dir, 'gpu-state.json')));
    } finally {
      await endSlurmStudiesUnder(s.root, () => rmSync(s.root, { recursive: true, force: true }));
    }
  });
});
