// `llem doctor` as a user runs it, with the fake GPU libraries and without any.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, fakeStateFile, fakeUuid, readFakeStateLog, writeFakeScript, type FakeLibs } from './fake.ts';

const execFileAsync = promisify(execFile);
const llem = fileURLToPath(new URL('../../bin/llem.js', import.meta.url));
let libs: FakeLibs;
let dir: string;

before(async () => {
  await ensureAddonBuilt();
  libs = await buildFakeLibs();
  dir = mkdtempSync(join(tmpdir(), 'llem-doctor-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function doctor(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string }> {
  const clean = { ...process.env };
  for (const k of ['LLEM_NVML_LIB', 'LLEM_CUDA_LIB', 'LLEM_FAKE_GPU_SCRIPT', 'CUDA_VISIBLE_DEVICES']) delete clean[k];
  try {
    const { stdout } = await execFileAsync(process.execPath, [llem, 'doctor', ...args], { env: { ...clean, ...env }, timeout: 120_000 });
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, stdout: e.stdout };
  }
}

test('doctor --json lists each fake GPU with the metrics it supports and the measured selection', async () => {
  const { path } = writeFakeScript(dir, { devices: [{ power: [[0, 1000]] }, { energyUnsupported: true, persistence: false }] });
  const { code, stdout } = await doctor(['--json'], { ...fakeGpuEnv(libs, path), CUDA_VISIBLE_DEVICES: '1', LLEM_POWERCAP_ROOT: join(dir, 'none') });
  assert.equal(code, 0);
  const r = JSON.parse(stdout);
  assert.equal(r.addon.status, 'ok');
  assert.equal(r.nvml.driver_version, '550.54.15');
  assert.equal(r.nvml.cuda_driver_version, '12.4');
  assert.deepEqual(r.nvml.gpus.map((g: { uuid: string; measured: boolean }) => [g.uuid, g.measured]), [[fakeUuid(0), false], [fakeUuid(1), true]]);
  assert.equal(r.nvml.gpus[0].supported.energy_mj, true);
  assert.equal(r.nvml.gpus[1].supported.energy_mj, false);
  assert.equal(r.nvml.status, 'warn');
  assert.match(r.nvml.fix, /no energy counter/);
  assert.match(r.nvml.fix, /persistence mode off/);
  assert.equal(r.cuda.status, 'ok');
  assert.equal(r.cuda.devices, 2);
  assert.equal(r.rapl.status, 'missing');
  assert.ok(r.backends.some((b: { name: string }) => b.name === 'llamacpp'));
});

test('doctor exits 0 and says what to do when NVML and CUDA are missing', async () => {
  const { code, stdout } = await doctor([], { LLEM_NVML_LIB: join(dir, 'no-nvml.so'), LLEM_CUDA_LIB: join(dir, 'no-cuda.so') });
  assert.equal(code, 0);
  assert.match(stdout, /\[MISS\] NVML: could not load/);
  assert.ok(stdout.includes(join(dir, 'no-nvml.so')));
  assert.match(stdout, /install the NVIDIA driver/);
  assert.match(stdout, /\[MISS\] CUDA/);
});

test('doctor reports per GPU whether its settings (power limit, clocks) can be changed: a dry set, nothing changed', async () => {
  const { path } = writeFakeScript(dir, { devices: [{}, {}] }, 'privileged.txt');
  const ok = await doctor(['--json'], fakeGpuEnv(libs, path));
  assert.equal(ok.code, 0);
  const gpus = JSON.parse(ok.stdout).nvml.gpus as Array<{ gpu_settings: { status: string; detail: string } }>;
  assert.deepEqual(gpus.map((g) => g.gpu_settings.status), ['changeable', 'changeable']);
  assert.match(gpus[0]!.gpu_settings.detail, /a dry set of 700 W worked/);
  // only dry sets: the limit each GPU had
  assert.ok(readFakeStateLog(fakeStateFile(path)).every((e) => e.kind === 'power_limit_mw' && e.values[0] === 700_000));

  const { path: denied } = writeFakeScript(dir, { devices: [{}], privileged: false }, 'unprivileged.txt');
  const no = await doctor([], fakeGpuEnv(libs, denied));
  assert.equal(no.code, 0);
  assert.match(no.stdout, /gpu settings \(study gpu: keys\): no permission: .*NVML_ERROR_NO_PERMISSION.*needs root: run llem as root/);
});
