// Library situations that need a fresh process each: missing NVML, an absent symbol, no addon,
// the CUDA probe. Each case runs test/native/scenario.ts in a child with its own environment.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, fakeUuid, writeFakeScript, type FakeLibs } from './fake.ts';
import { nodeArgsFor } from '../../src/node-entry.ts';

const execFileAsync = promisify(execFile);
const scenarioPath = fileURLToPath(new URL('./scenario.ts', import.meta.url));
let libs: FakeLibs;
let dir: string;

before(async () => {
  await ensureAddonBuilt();
  libs = await buildFakeLibs();
  dir = mkdtempSync(join(tmpdir(), 'llem-loader-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function run(what: string, env: Record<string, string>): Promise<any> {
  const clean = { ...process.env };
  for (const k of ['LLEM_NVML_LIB', 'LLEM_CUDA_LIB', 'LLEM_FAKE_GPU_SCRIPT', 'LLEM_FAKE_GPU_LOG', 'LLEM_ADDON_PATH', 'CVD']) delete clean[k];
  const { stdout } = await execFileAsync(process.execPath, nodeArgsFor(scenarioPath, [what]), { env: { ...clean, ...env }, timeout: 120_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

test('missing NVML library: unavailable, with every path tried, and energy null (not 0)', async () => {
  const missing = join(dir, 'nowhere', 'libnvidia-ml.so.1');
  const out = await run('open', { LLEM_NVML_LIB: missing });
  assert.equal(out.nvml.status, 'unavailable');
  assert.equal(out.nvml.code, 'library_missing');
  assert.deepEqual(out.nvml.pathsTried, [missing]);
  assert.match(out.nvml.reason, /LLEM_NVML_LIB/);
  assert.ok(out.nvml.reason.includes(missing));
  assert.ok(out.meter.unavailableReason.includes(missing));
  assert.deepEqual(out.meter.devices, []);
  assert.equal(out.meter.window.energy_j, null);
  assert.equal(out.meter.window.unavailable_reason, out.meter.unavailableReason);
  assert.ok(out.meter.window.flags.some((f: { code: string }) => f.code === 'energy_unavailable'));
});

test('an absent energy symbol makes that one metric unsupported; energy falls back to polled power', async () => {
  const omitted = await buildFakeLibs({ omit: ['nvmlDeviceGetTotalEnergyConsumption'] });
  const { path } = writeFakeScript(dir, { devices: [{ power: [[0, 200_000]] }] }, 'omit.txt');
  const out = await run('open', fakeGpuEnv(omitted, path));
  assert.equal(out.nvml.status, 'available');
  assert.ok(out.nvml.missing.includes('nvmlDeviceGetTotalEnergyConsumption'));
  assert.equal(out.nvml.supported.energy_mj, false);
  assert.equal(out.nvml.supported.power_mw, true);
  assert.equal(out.nvml.bound.nvmlInit, 'nvmlInit_v2');
  assert.equal(out.meter.unavailableReason, null);
  assert.equal(out.meter.window.energy_method, 'polled');
  assert.ok(out.meter.window.energy_j > 0);
});

test('addon not built: the meter is unavailable and says how to build it', async () => {
  const out = await run('open', { LLEM_ADDON_PATH: join(dir, 'missing.node') });
  assert.equal(out.nvml.code, 'addon_missing');
  assert.match(out.meter.unavailableReason, /npm run build:addon/);
  assert.equal(out.meter.window.energy_j, null);
});

test('CUDA probe through the fake libcuda: devices with UUIDs; cuInit failure is a reason', async () => {
  const { path } = writeFakeScript(dir, { devices: [{ name: 'Fake A' }, { name: 'Fake B', memTotalBytes: 1234 }] }, 'cuda.txt');
  const out = await run('cuda', fakeGpuEnv(libs, path));
  assert.equal(out.cuda.status, 'available');
  assert.equal(out.cuda.cuda.driverVersion, 12040);
  assert.deepEqual(
    out.cuda.cuda.devices.map((d: { uuid: string; name: string }) => [d.uuid, d.name]),
    [[fakeUuid(0), 'Fake A'], [fakeUuid(1), 'Fake B']],
  );
  assert.equal(out.cuda.cuda.devices[1].totalMemBytes, 1234);
  const failing = writeFakeScript(dir, { devices: [{}], cudaInitError: 100 }, 'cuda-fail.txt');
  const failed = await run('cuda', fakeGpuEnv(libs, failing.path));
  assert.equal(failed.cuda.status, 'unavailable');
  assert.equal(failed.cuda.code, 'no_device');
  assert.match(failed.cuda.reason, /cuInit.*CUDA_ERROR_NO_DEVICE/);
});

test('parent helpers: temperatures and free memory of the selected GPUs; null without NVML', async () => {
  const { path } = writeFakeScript(
    dir,
    { devices: [{ temp: [[0, 41]], memTotalBytes: 1000, memUsedBytes: 100 }, { temp: [[0, 67]], memTotalBytes: 1000, memUsedBytes: 700 }] },
    'helpers.txt',
  );
  assert.deepEqual(await run('helpers', { ...fakeGpuEnv(libs, path), CVD: '1' }), { temps: [67], free: 300 });
  assert.deepEqual(await run('helpers', fakeGpuEnv(libs, path)), { temps: [41, 67], free: 300 });
  assert.deepEqual(await run('helpers', { LLEM_NVML_LIB: join(dir, 'none.so') }), { temps: null, free: null });
});

test('a process that exits with a sampler running ends cleanly; a terminated worker thread releases its NVML references', async () => {
  const { path } = writeFakeScript(dir, { devices: [{ power: [[0, 100_000]] }] }, 'exit.txt');
  assert.deepEqual(await run('exit-sampling', fakeGpuEnv(libs, path)), { exiting: true });
  const out = await run('worker-thread', fakeGpuEnv(libs, path));
  assert.equal(out.workerRefs, 2, 'nvmlOpen + the running sampler');
  assert.equal(out.refsAfter, 1);
});

test('process-tree calls work without any GPU library: subreaper, orphan adoption, waitid, reaping an adopted zombie', async () => {
  const r = await run('process-tree', { LLEM_NVML_LIB: join(dir, 'no-libnvidia-ml.so.1'), LLEM_CUDA_LIB: join(dir, 'no-libcuda.so.1') });
  // (under tsx the process may already have a child of its own, the esbuild service: compare with before)
  const had = r.processTree.before.hasChildren;
  assert.equal(typeof had, 'boolean');
  assert.deepEqual(r.processTree, {
    before: { subreaper: false, hasChildren: had },
    set: 'available',
    subreaper: true,
    adoptedByUs: true,
    whileRunning: { hasChildren: true, reap: 'running' },
    reaped: 'reaped',
    goneAfterReap: true,
    hasChildrenAfter: had,
    notOurs: 'not_child',
  });
  assert.equal(r.cleared, false);
  const without = await run('process-tree-without-addon', { LLEM_ADDON_PATH: join(dir, 'missing.node') });
  assert.match(without.subreaper.reason, /native addon is not built/);
  assert.equal(without.hasChildren, null);
});
