// GPU settings at the command line (issue 15), real processes on the fake NVML: `llem plan`
// checks gpu.* against the GPU's limits, `llem run` refuses a study it may not apply (exit 2, GPU
// untouched, no study dir), and `llem restore-gpu` restores a GPU a killed runner left changed.
// The run path itself (apply, record, restore on every stop) is test/native/gpu-run.test.ts.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { nodeArgsFor } from '../../src/node-entry.ts';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, fakeStateFile, readFakeStateLog, writeFakeScript, type FakeLibs, type FakeScript } from './fake.ts';

const llemBin = fileURLToPath(new URL('../../bin/llem.js', import.meta.url));
const scenarioPath = fileURLToPath(new URL('./gpu-scenario.ts', import.meta.url));
let libs: FakeLibs;
let dir: string;
let n = 0;

before(async () => {
  await ensureAddonBuilt();
  libs = await buildFakeLibs();
  dir = mkdtempSync(join(tmpdir(), 'llem-gpu-cli-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const clean = { ...process.env };
  for (const k of ['LLEM_NVML_LIB', 'LLEM_CUDA_LIB', 'LLEM_FAKE_GPU_SCRIPT', 'LLEM_FAKE_GPU_LOG', 'CUDA_VISIBLE_DEVICES', 'CI']) delete clean[k];
  return { ...clean, ...env };
}

function llem(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [llemBin, ...args], { env: cleanEnv(env), timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function gpu(script: FakeScript): { env: Record<string, string>; state: string; script: string } {
  n++;
  const { path } = writeFakeScript(dir, script, `cli-${n}.txt`);
  return { env: fakeGpuEnv(libs, path), state: fakeStateFile(path), script: path };
}

function study(yaml: string): string {
  n++;
  const p = join(dir, `study-${n}.yaml`);
  writeFileSync(p, `name: gpu-${n}\nbackend: llamacpp\nmodel: builtin:tiny-random\n${yaml}`);
  return p;
}

/** The power limit the fake GPU has now, as a fresh process reads it. */
function currentLimitMw(state: string, device = 0): number {
  return readFakeStateLog(state).filter((e) => e.device === device && e.kind === 'power_limit_mw').at(-1)?.values[0] ?? 700_000;
}

describe('llem plan', () => {
  test('an out-of-range cap is a skipped config with the reason and the allowed range', async () => {
    const g = gpu({ devices: [{ powerLimitMinMw: 200_000, powerLimitMaxMw: 700_000 }] });
    const r = await llem(['plan', study('sweep:\n  gpu.power_limit_w: [150, 300, default]\n'), '--json'], g.env);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.configs, 2);
    assert.equal(j.skipped.length, 1);
    assert.equal(j.skipped[0].label, 'llamacpp power_w=150');
    assert.match(j.skipped[0].reasons[0], /gpu\.power_limit_w 150 W is outside what GPU 0 \(Fake H100 0, GPU-[0-9a-f-]+\) allows: 200–700 W/);
    assert.deepEqual(j.warnings, []);
  });

  test('without NVML the settings are planned with a warning', async () => {
    const r = await llem(['plan', study('sweep:\n  gpu.power_limit_w: [150, 300]\n'), '--json'], { LLEM_NVML_LIB: join(dir, 'none', 'libnvidia-ml.so.1') });
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.configs, 2);
    assert.match(j.warnings.join('\n'), /2 config\(s\) set gpu\.\* but the GPU limits could not be read \(.*NVIDIA management library.*\): they are checked again before each run/);
  });
});

describe('llem run', () => {
  test('a cap without the privilege is refused before anything runs: exit 2, what is needed, GPU untouched, no study dir', async () => {
    const g = gpu({ devices: [{}], privileged: false });
    const out = join(dir, `out-${n}`);
    const r = await llem(['run', study('gpu:\n  power_limit_w: 300\n'), '--out', out, '--yes', '--no-tui'], g.env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /the study sets gpu\.power_limit_w, and .*NVML_ERROR_NO_PERMISSION.*needs root: run llem as root/);
    assert.deepEqual(readFakeStateLog(g.state), []);
    assert.equal(existsSync(out) && readdirSync(out).length > 0, false);
  });
});

describe('llem restore-gpu', () => {
  function studyDir(): string {
    n++;
    const d = join(dir, `dir-${n}`);
    mkdirSync(d);
    writeFileSync(join(d, 'plan.json'), '{}\n');
    return d;
  }

  /** A runner that applied `settings` and was SIGKILLed before it could restore anything. */
  function crash(d: string, env: Record<string, string>, settings: Record<string, unknown>): Promise<string | null> {
    return new Promise((resolve, reject) => {
      const p = spawn(process.execPath, nodeArgsFor(scenarioPath, ['apply', JSON.stringify({ studyDir: d, settings, kill: true })]), { env: cleanEnv({ ...env, LLEM_NVML_LIB: libs.nvml }), stdio: 'ignore' });
      p.once('error', reject);
      p.once('exit', (_c, signal) => resolve(signal));
    });
  }

  test('restores a GPU left at 200 W by a killed runner; a second call has nothing to do', async () => {
    const g = gpu({ devices: [{}] });
    const d = studyDir();
    assert.equal(await crash(d, g.env, { power_limit_w: 200, sm_clock_mhz: [1410, 1410] }), 'SIGKILL');
    assert.equal(currentLimitMw(g.state), 200_000);
    const r = await llem(['restore-gpu', d], g.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /restored Fake H100 0 \(GPU-[0-9a-f-]+\): power limit 200 W → 700 W/);
    assert.match(r.stdout, /SM clocks unlocked \(were locked to \[1410, 1410\] MHz\)/);
    assert.equal(currentLimitMw(g.state), 700_000);
    assert.deepEqual(readFakeStateLog(g.state).filter((e) => e.kind === 'sm_lock').at(-1)?.values, [0, 0]);
    const again = await llem(['restore-gpu', d, '--json'], g.env);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).status, 'nothing_to_do');
  });

  test('nothing to restore needs no NVML; a bad dir or an unreadable gpu-state.json is exit 2', async () => {
    const d = studyDir();
    const none = await llem(['restore-gpu', d], { LLEM_NVML_LIB: join(dir, 'none.so') });
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /nothing to restore/);
    const bad = await llem(['restore-gpu', join(dir, 'no-such-dir')], {});
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /no such study directory/);
    writeFileSync(join(d, 'gpu-state.json'), '{"schema_version": 1, "nodes": {"h": {"pid": 1}}}');
    const corrupt = await llem(['restore-gpu', d], {});
    assert.equal(corrupt.code, 2);
    assert.match(corrupt.stderr, /gpu-state\.json: nodes\.h\.updated_at: Required/);
  });

  test('a GPU that cannot be restored is exit 1 with the reason, and stays listed for another try', async () => {
    const g = gpu({ devices: [{}] });
    const d = studyDir();
    assert.equal(await crash(d, g.env, { power_limit_w: 250 }), 'SIGKILL');
    // The same GPU (same state file), now seen by a user without the privilege.
    const unprivileged = join(dir, `unpriv-${n}.txt`);
    writeFileSync(unprivileged, readFileSync(g.script, 'utf8') + 'privileged 0\n');
    const r = await llem(['restore-gpu', d], fakeGpuEnv(libs, unprivileged));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FAILED Fake H100 0 .*restoring the power limit to 700 W on GPU 0 .*NVML_ERROR_NO_PERMISSION/);
    assert.equal(currentLimitMw(g.state), 250_000);
    const ok = await llem(['restore-gpu', d], g.env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(currentLimitMw(g.state), 700_000);
  });

  test('refuses while a live runner on this machine holds the study, unless --force', async () => {
    const g = gpu({ devices: [{}] });
    const d = studyDir();
    assert.equal(await crash(d, g.env, { power_limit_w: 300 }), 'SIGKILL');
    writeFileSync(join(d, '.lock-owner.json'), JSON.stringify({ pid: process.pid, hostname: hostname(), started_at: new Date().toISOString() }));
    const r = await llem(['restore-gpu', d], g.env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`being run by pid ${process.pid}.*--force`));
    assert.equal(currentLimitMw(g.state), 300_000);
    const forced = await llem(['restore-gpu', d, '--force'], g.env);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(currentLimitMw(g.state), 700_000);
  });
});
