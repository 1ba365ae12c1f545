// `llem plan` reads free GPU memory through NVML (the fake library, real dlopen) and judges fit.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, writeFakeScript, type FakeLibs } from './fake.ts';

const execFileAsync = promisify(execFile);
const llem = fileURLToPath(new URL('../../bin/llem.js', import.meta.url));
let libs: FakeLibs;
let dir: string;
let study: string;

before(async () => {
  await ensureAddonBuilt();
  libs = await buildFakeLibs();
  dir = mkdtempSync(join(tmpdir(), 'llem-plan-mem-'));
  study = join(dir, 'study.yaml');
  writeFileSync(study, 'name: mem\nbackend: llamacpp\nmodel: builtin:tiny-random\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function planJson(env: Record<string, string>): Promise<{ per_config: Array<Record<string, unknown>> }> {
  const clean = { ...process.env };
  for (const k of ['LLEM_NVML_LIB', 'LLEM_CUDA_LIB', 'LLEM_FAKE_GPU_SCRIPT', 'CUDA_VISIBLE_DEVICES']) delete clean[k];
  const { stdout } = await execFileAsync(process.execPath, [llem, 'plan', study, '--json'], { env: { ...clean, ...env }, timeout: 120_000 });
  return JSON.parse(stdout).estimate;
}

test('free memory of the visible GPU comes from NVML and decides the fit', async () => {
  const total = 80 * 2 ** 30;
  const used = 10 * 2 ** 30;
  const { path } = writeFakeScript(dir, { devices: [{ memTotalBytes: total, memUsedBytes: used }, { memTotalBytes: total, memUsedBytes: total - 2 ** 20 }] }, 'mem.txt');
  const roomy = await planJson({ ...fakeGpuEnv(libs, path), CUDA_VISIBLE_DEVICES: '0' });
  assert.equal(roomy.per_config[0]!.memory_free_bytes, total - used);
  assert.equal(roomy.per_config[0]!.memory_fit, 'fits');
  // GPU 1 has 1 MiB free: the same config no longer fits.
  const full = await planJson({ ...fakeGpuEnv(libs, path), CUDA_VISIBLE_DEVICES: '1' });
  assert.equal(full.per_config[0]!.memory_free_bytes, 2 ** 20);
  assert.equal(full.per_config[0]!.memory_fit, 'wont_fit');
});

test('without NVML the fit is unknown and the reason names the missing library', async () => {
  const est = await planJson({ LLEM_NVML_LIB: join(dir, 'no-such-libnvidia-ml.so') });
  assert.equal(est.per_config[0]!.memory_fit, 'unknown');
  assert.equal(est.per_config[0]!.memory_free_bytes, null);
  assert.match(String(est.per_config[0]!.memory_reason), /NVML|nvidia-ml/i);
  assert.doesNotMatch(String(est.per_config[0]!.memory_reason), /\n/);
});
