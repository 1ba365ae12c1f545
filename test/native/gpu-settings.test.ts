// GPU settings (issue 15) through the real addon and dlopen, on the fake NVML: the fake's
// settable state and its power curve, the addon's setters and their NVML codes, and
// src/gpu-settings's apply → verify → restore with gpu-state.json, across real processes.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { nodeArgsFor } from '../../src/node-entry.ts';
import {
  buildFakeLibs,
  ensureAddonBuilt,
  fakeGpuEnv,
  fakeStateFile,
  fakeUuid,
  readFakeLog,
  readFakeStateLog,
  writeFakeScript,
  type FakeLibs,
  type FakeScript,
} from './fake.ts';

const execFileAsync = promisify(execFile);
const scenarioPath = fileURLToPath(new URL('./gpu-scenario.ts', import.meta.url));
let libs: FakeLibs;
let dir: string;
let n = 0;
let gs: typeof import('../../src/gpu-settings/index.ts');
let native: typeof import('../../src/native/index.ts');

before(async () => {
  await ensureAddonBuilt();
  libs = await buildFakeLibs();
  dir = mkdtempSync(join(tmpdir(), 'llem-gpu-settings-'));
  Object.assign(process.env, { LLEM_NVML_LIB: libs.nvml, LLEM_CUDA_LIB: libs.cuda });
  gs = await import('../../src/gpu-settings/index.ts');
  native = await import('../../src/native/index.ts');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A new fake GPU for this process (and its children) and a fresh study dir. */
function scenario(script: FakeScript): { script: string; state: string; studyDir: string; log: string; epochMs: number; env: Record<string, string> } {
  n++;
  const { path, epochMs } = writeFakeScript(dir, script, `gpu-${n}.txt`);
  const log = join(dir, `log-${n}.txt`);
  const env = fakeGpuEnv(libs, path, log);
  Object.assign(process.env, env);
  const studyDir = join(dir, `study-${n}`);
  mkdirSync(studyDir);
  return { script: path, state: fakeStateFile(path), studyDir, log, epochMs, env };
}

function control() {
  const opened = gs.openGpuControl();
  if (opened.status !== 'available') throw new Error(opened.reason);
  return opened.control;
}

async function child(what: string, args: Record<string, unknown>, env: Record<string, string>, opts: { libs?: FakeLibs } = {}): Promise<any> {
  const clean = { ...process.env };
  for (const k of ['LLEM_NVML_LIB', 'LLEM_CUDA_LIB', 'LLEM_FAKE_GPU_SCRIPT', 'LLEM_FAKE_GPU_LOG', 'CUDA_VISIBLE_DEVICES']) delete clean[k];
  const l = opts.libs ?? libs;
  const { stdout } = await execFileAsync(process.execPath, nodeArgsFor(scenarioPath, [what, JSON.stringify(args)]), {
    env: { ...clean, ...env, LLEM_NVML_LIB: l.nvml, LLEM_CUDA_LIB: l.cuda },
    timeout: 120_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

/** Runs a scenario that SIGKILLs itself; resolves with the signal. */
function childKilled(args: Record<string, unknown>, env: Record<string, string>): Promise<NodeJS.Signals | null> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, nodeArgsFor(scenarioPath, ['apply', JSON.stringify({ ...args, kill: true })]), { env: { ...process.env, ...env }, stdio: 'ignore' });
    p.once('error', reject);
    p.once('exit', (_code, signal) => resolve(signal));
  });
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms: number) => Atomics.wait(sleepCell, 0, 0, ms);

function readState(studyDir: string) {
  return JSON.parse(readFileSync(join(studyDir, 'gpu-state.json'), 'utf8'));
}

describe('the fake GPU', () => {
  test('reported power follows the cap, and the energy counter is the exact integral of it', () => {
    const s = scenario({ devices: [{ power: [[0, 500_000]] }] });
    const opened = native.openNvml();
    assert.equal(opened.status, 'available');
    if (opened.status !== 'available') return;
    const session = opened.session;
    try {
      const curve: Array<[number, number | null]> = [];
      for (const capW of [200, 300, 400, 700]) {
        session.setPowerLimitMw(0, capW * 1000);
        curve.push([capW, session.readSync([0])[0]!.power_mw]);
      }
      assert.deepEqual(curve, [[200, 200_000], [300, 300_000], [400, 400_000], [700, 500_000]], 'min(load 500 W, cap)');
      const e0 = session.readSync([0])[0]!.energy_mj!;
      sleepSync(100);
      session.setPowerLimitMw(0, 250_000);
      sleepSync(100);
      const e1 = session.readSync([0])[0]!.energy_mj!;
      // Exact expected joules from the times the fake computed each value and the times of the changes.
      const calls = readFakeLog(s.log).filter((l) => l.fn === 'nvmlDeviceGetTotalEnergyConsumption');
      const [t0, t1] = [calls.at(-2)!.tS, calls.at(-1)!.tS];
      const changes = readFakeStateLog(s.state).map((c) => ({ t: c.t - s.epochMs / 1000, mw: c.values[0]! }));
      const capAt = (t: number) => changes.filter((c) => c.t <= t).at(-1)?.mw ?? 700_000;
      const points = [t0, ...changes.map((c) => c.t).filter((t) => t > t0 && t < t1), t1];
      let expectedMj = 0;
      for (let i = 1; i < points.length; i++) expectedMj += Math.min(500_000, capAt((points[i - 1]! + points[i]!) / 2)) * (points[i]! - points[i - 1]!);
      assert.ok(Math.abs(e1 - e0 - expectedMj) <= 2, `counter ${e1 - e0} mJ vs integral ${expectedMj.toFixed(1)} mJ`);
      // the window saw both caps: the counter is well below what the uncapped load would give
      assert.ok(e1 - e0 < 500_000 * (t1 - t0) - 10_000, `${e1 - e0} mJ over ${(t1 - t0).toFixed(3)} s`);
    } finally {
      session.close();
    }
  });

  test('a lower SM clock lock lowers the load power, and the clock reads as locked', () => {
    scenario({ devices: [{ power: [[0, 600_000]], smClockMhz: 1980 }] });
    const opened = native.openNvml();
    if (opened.status !== 'available') throw new Error(opened.reason);
    const session = opened.session;
    try {
      session.setGpuLockedClocks(0, 990, 990);
      const r = session.readSync([0])[0]!;
      assert.equal(r.sm_clock_mhz, 990);
      assert.equal(r.power_mw, 300_000, '600 W × 990/1980');
      session.resetGpuLockedClocks(0);
      assert.deepEqual([session.readSync([0])[0]!.sm_clock_mhz, session.readSync([0])[0]!.power_mw], [1980, 600_000]);
    } finally {
      session.close();
    }
  });

  test('the state is in a file: a child sets the cap, this process and a later one see it', async () => {
    const s = scenario({ devices: [{}, {}] });
    assert.deepEqual(await child('set-power', { index: 1, mw: 250_000 }, s.env), { ok: true });
    const c = control();
    try {
      assert.equal(c.read(1).powerLimitMw, 250_000);
      assert.equal(c.read(0).powerLimitMw, 700_000);
    } finally {
      c.close();
    }
    const later = await child('open', { index: 1 }, s.env);
    assert.equal(later.settings.powerLimitMw, 250_000);
    assert.deepEqual(readFakeStateLog(s.state).map((e) => [e.device, e.kind, e.values[0]]), [[1, 'power_limit_mw', 250_000]]);
  });
});

describe('addon setters and getters', () => {
  test('read the constraints, defaults, enforced limit and supported clocks', () => {
    scenario({ devices: [{ powerLimitMinMw: 100_000, powerLimitMaxMw: 600_000, powerLimitMw: 550_000, powerLimitDefaultMw: 600_000, enforcedCapMw: 500_000, memClocksMhz: [2619, 1593], smClocks: { lowestMhz: 210, highestMhz: 1410, stepMhz: 15 } }] });
    const c = control();
    try {
      const r = c.read(0);
      assert.deepEqual(
        { min: r.powerLimitMinMw, max: r.powerLimitMaxMw, set: r.powerLimitMw, def: r.powerLimitDefaultMw, enforced: r.enforcedPowerLimitMw },
        { min: 100_000, max: 600_000, set: 550_000, def: 600_000, enforced: 500_000 },
      );
      assert.deepEqual(r.supportedClocks!.map((t) => [t.memMhz, t.smMhz[0], t.smMhz.at(-1), t.smMhz.length]), [[2619, 1410, 210, 81], [1593, 1410, 210, 81]]);
      assert.deepEqual(r.errors, {});
    } finally {
      c.close();
    }
  });

  test('failures carry the NVML code: INVALID_ARGUMENT, NO_PERMISSION, NOT_SUPPORTED', () => {
    scenario({ devices: [{ clocksUnsupported: true }] });
    const c = control();
    const codeOf = (f: () => void) => {
      try {
        f();
      } catch (err) {
        return (err as { code?: string }).code;
      }
      return 'no error';
    };
    try {
      assert.equal(codeOf(() => c.setPowerLimitMw(0, 900_000)), 'NVML_ERROR_INVALID_ARGUMENT');
      assert.equal(codeOf(() => c.setGpuLockedClocks(0, 1410, 1410)), 'NVML_ERROR_NOT_SUPPORTED');
      const r = c.read(0);
      assert.equal(r.supportedClocks, null);
      assert.equal(r.errors.supportedClocks?.code, 'NVML_ERROR_NOT_SUPPORTED');
    } finally {
      c.close();
    }
    scenario({ devices: [{}], privileged: false });
    const u = control();
    try {
      assert.equal(codeOf(() => u.setPowerLimitMw(0, 700_000)), 'NVML_ERROR_NO_PERMISSION');
      assert.equal(codeOf(() => u.resetGpuLockedClocks(0)), 'NVML_ERROR_NO_PERMISSION');
      assert.equal(u.read(0).powerLimitMw, 700_000, 'reads need no privilege');
    } finally {
      u.close();
    }
  });

  test('an absent setter makes that setting unsupported; NVML still opens and measures', async () => {
    const omitted = await buildFakeLibs({ omit: ['nvmlDeviceSetPowerManagementLimit', 'nvmlDeviceGetEnforcedPowerLimit'] });
    const s = scenario({ devices: [{ power: [[0, 100_000]] }] });
    const opened = await child('open', {}, s.env, { libs: omitted });
    assert.ok(opened.missing.includes('nvmlDeviceSetPowerManagementLimit'));
    assert.equal(opened.bound.nvmlDeviceSetGpuLockedClocks, 'nvmlDeviceSetGpuLockedClocks');
    assert.equal(opened.settings.enforcedPowerLimitMw, null);
    assert.equal(opened.settings.errors.enforcedPowerLimitMw.code, 'NVML_ERROR_FUNCTION_NOT_FOUND');
    assert.equal(opened.settings.powerLimitMw, 700_000);
    const set = await child('set-power', { index: 0, mw: 300_000 }, s.env, { libs: omitted });
    assert.equal(set.error.code, 'NVML_ERROR_FUNCTION_NOT_FOUND');
    assert.match(set.error.message, /nvmlDeviceSetPowerManagementLimit is not in .*unsupported/);
  });
});

describe('apply → verify → restore', () => {
  test('round trip on exactly the GPU CUDA_VISIBLE_DEVICES selects (by UUID): originals recorded, verified, restored', () => {
    const s = scenario({ devices: [{ power: [[0, 500_000]] }, { power: [[0, 500_000]] }] });
    const c = control();
    const ctx = { studyDir: s.studyDir, control: c, host: 'node-a' };
    try {
      const applied = gs.applyGpuSettings(ctx, { cudaVisibleDevices: fakeUuid(1), settings: { power_limit_w: 200, sm_clock_mhz: [1410, 1410] } });
      assert.equal(applied.length, 1);
      assert.equal(applied[0]!.uuid, fakeUuid(1));
      assert.deepEqual(applied[0]!.requested, { power_limit_w: 200, sm_clock_mhz: [1410, 1410], memory_clock_mhz: null });
      assert.deepEqual(applied[0]!.enforced, { power_limit_w: 200, sm_clock_mhz: 1410, memory_clock_mhz: 2619 });
      assert.equal(applied[0]!.original_power_limit_w, 700);
      assert.equal(c.read(0).powerLimitMw, 700_000, 'GPU 0 is not the run\'s: untouched');
      const rec = readState(s.studyDir).nodes['node-a'].devices[fakeUuid(1)];
      assert.equal(rec.original.power_limit_mw, 700_000);
      assert.deepEqual(rec.applied, { power_limit_mw: 200_000, sm_clock_mhz: [1410, 1410] });

      // The next config changes the cap and leaves clocks at default: the lock is undone, the
      // original cap is still the one from before the study.
      const next = gs.applyGpuSettings(ctx, { cudaVisibleDevices: fakeUuid(1), settings: { power_limit_w: 300 } });
      assert.deepEqual(next[0]!.enforced, { power_limit_w: 300, sm_clock_mhz: 1980, memory_clock_mhz: 2619 });
      assert.equal(next[0]!.original_power_limit_w, 700);
      assert.deepEqual(readState(s.studyDir).nodes['node-a'].devices[fakeUuid(1)].applied, { power_limit_mw: 300_000 });

      // `default` puts the original back and records it as what default meant.
      const def = gs.applyGpuSettings(ctx, { cudaVisibleDevices: fakeUuid(1), settings: undefined });
      assert.deepEqual(def[0]!.requested, { power_limit_w: null, sm_clock_mhz: null, memory_clock_mhz: null });
      assert.equal(def[0]!.enforced.power_limit_w, 700);
      assert.equal(def[0]!.original_power_limit_w, 700);
      assert.deepEqual(readState(s.studyDir).nodes['node-a'].devices[fakeUuid(1)].applied, {});

      const again = gs.applyGpuSettings(ctx, { cudaVisibleDevices: fakeUuid(1), settings: { power_limit_w: 250 } });
      assert.equal(again[0]!.enforced.power_limit_w, 250);
      const restored = gs.restoreGpuSettings(ctx);
      assert.equal(restored.status, 'restored');
      assert.deepEqual(restored.devices.map((d) => d.restored), [['power limit 250 W → 700 W']]);
      assert.equal(c.read(1).powerLimitMw, 700_000);
      const before = readFakeStateLog(s.state).length;
      assert.equal(gs.restoreGpuSettings(ctx).status, 'nothing_to_do', 'idempotent');
      assert.equal(readFakeStateLog(s.state).length, before, 'a second restore touches no GPU');
    } finally {
      c.close();
    }
  });

  test('all default and nothing changed: no GPU call that sets anything, no state file', () => {
    const s = scenario({ devices: [{}] });
    const c = control();
    try {
      const out = gs.applyGpuSettings({ studyDir: s.studyDir, control: c }, { cudaVisibleDevices: null, settings: undefined });
      assert.equal(out[0]!.original_power_limit_w, 700);
      assert.equal(existsSync(join(s.studyDir, 'gpu-state.json')), false);
      assert.deepEqual(readFakeStateLog(s.state), []);
      assert.equal(gs.restoreGpuSettings({ studyDir: s.studyDir, control: c }).status, 'nothing_to_do');
    } finally {
      c.close();
    }
  });

  test('an out-of-range cap is refused with the range before anything changes', () => {
    const s = scenario({ devices: [{}] });
    const c = control();
    try {
      assert.throws(
        () => gs.applyGpuSettings({ studyDir: s.studyDir, control: c }, { cudaVisibleDevices: null, settings: { power_limit_w: 150, sm_clock_mhz: [1410, 1410] } }),
        (err: unknown) => err instanceof gs.GpuSettingsError && err.kind === 'out_of_range' && /150 W is outside what GPU 0 .* allows: 200–700 W/.test(err.message),
      );
      assert.deepEqual(readFakeStateLog(s.state), [], 'not even the clock lock was made');
      assert.equal(existsSync(join(s.studyDir, 'gpu-state.json')), false);
    } finally {
      c.close();
    }
  });

  test('verify: a limit the driver does not enforce fails with the reason; restore still puts the cap back', () => {
    const s = scenario({ devices: [{ enforcedCapMw: 250_000 }] });
    const c = control();
    const ctx = { studyDir: s.studyDir, control: c };
    try {
      assert.throws(
        () => gs.applyGpuSettings(ctx, { cudaVisibleDevices: null, settings: { power_limit_w: 300 } }),
        (err: unknown) => err instanceof gs.GpuSettingsError && err.kind === 'mismatch' && /driver enforces 250 W, not the 300 W set: another limiter/.test(err.message),
      );
      assert.equal(gs.restoreGpuSettings(ctx).status, 'restored');
      assert.equal(c.read(0).powerLimitMw, 700_000);
    } finally {
      c.close();
    }
  });

  test('a GPU selected through a MIG slice is refused (its cap is the whole GPU, shared)', () => {
    const s = scenario({ devices: [{ migUuid: 'MIG-11111111-2222-3333-4444-555555555555' }] });
    const c = control();
    try {
      assert.throws(
        () => gs.applyGpuSettings({ studyDir: s.studyDir, control: c }, { cudaVisibleDevices: 'MIG-11111111-2222-3333-4444-555555555555', settings: { power_limit_w: 300 } }),
        (err: unknown) => err instanceof gs.GpuSettingsError && err.kind === 'mig',
      );
      assert.deepEqual(readFakeStateLog(s.state), []);
    } finally {
      c.close();
    }
  });

  test('no privilege: the dry set fails with a message naming what is needed, and the GPU is untouched', () => {
    const s = scenario({ devices: [{}], privileged: false });
    const c = control();
    try {
      assert.deepEqual(gs.checkGpuSettingsPrivilege(c, { cudaVisibleDevices: null, used: [] }), { devices: [], notes: [] });
      assert.throws(
        () => gs.checkGpuSettingsPrivilege(c, { cudaVisibleDevices: null, used: ['power_limit_w'] }),
        (err: unknown) =>
          err instanceof gs.GpuSettingsError &&
          err.kind === 'no_permission' &&
          err.nvmlCode === 'NVML_ERROR_NO_PERMISSION' &&
          /dry set of the power limit \(700 W, its current value\) on GPU 0 .*NVML_ERROR_NO_PERMISSION.*needs root: run llem as root/.test(err.message),
      );
      assert.deepEqual(readFakeStateLog(s.state), []);
    } finally {
      c.close();
    }
    const ok = scenario({ devices: [{}] });
    const p = control();
    try {
      const check = gs.checkGpuSettingsPrivilege(p, { cudaVisibleDevices: null, used: ['sm_clock_mhz'] });
      assert.equal(check.devices.length, 1);
      assert.deepEqual(readFakeStateLog(ok.state).map((e) => e.values[0]), [700_000], 'the dry set wrote the value the GPU had');
    } finally {
      p.close();
    }
  });

  test('a runner killed after applying 200 W leaves the GPU at 200 W; a later process keeps the original and restores it', async () => {
    const s = scenario({ devices: [{}] });
    assert.equal(await childKilled({ studyDir: s.studyDir, cvd: null, settings: { power_limit_w: 200 } }, s.env), 'SIGKILL');
    const c = control();
    try {
      assert.equal(c.read(0).powerLimitMw, 200_000, 'left at 200 W by the crash');
      // A resumed study applies its next config: the original stays the pre-study 700 W, not 200 W.
      const next = gs.applyGpuSettings({ studyDir: s.studyDir, control: c }, { cudaVisibleDevices: null, settings: { power_limit_w: 300 } });
      assert.equal(next[0]!.original_power_limit_w, 700);
    } finally {
      c.close();
    }
    const restored = await child('restore', { studyDir: s.studyDir }, s.env);
    assert.equal(restored.status, 'restored');
    assert.deepEqual(restored.devices[0].restored, ['power limit 300 W → 700 W']);
    assert.equal((await child('open', {}, s.env)).settings.powerLimitMw, 700_000);
  });

  test('a failure half-way leaves a record that restores what was already changed', async () => {
    const noLock = await buildFakeLibs({ omit: ['nvmlDeviceSetGpuLockedClocks'] });
    const s = scenario({ devices: [{}] });
    const out = await child('apply', { studyDir: s.studyDir, settings: { power_limit_w: 300, sm_clock_mhz: [1410, 1410] } }, s.env, { libs: noLock });
    assert.equal(out.error.kind, 'unsupported');
    assert.match(out.error.message, /locking SM clocks to \[1410, 1410\] MHz on GPU 0 .*nvmlDeviceSetGpuLockedClocks is not in/);
    assert.equal((await child('open', {}, s.env, { libs: noLock })).settings.powerLimitMw, 300_000, 'the cap was set before the lock failed');
    const restored = await child('restore', { studyDir: s.studyDir }, s.env);
    assert.deepEqual(restored.devices[0].restored.slice(0, 1), ['power limit 300 W → 700 W']);
    assert.equal((await child('open', {}, s.env)).settings.powerLimitMw, 700_000);
  });

  test('records are per node: restoring one node leaves the others listed', () => {
    const s = scenario({ devices: [{}] });
    const c = control();
    try {
      gs.applyGpuSettings({ studyDir: s.studyDir, control: c, host: 'node-b' }, { cudaVisibleDevices: null, settings: { power_limit_w: 400 } });
      gs.applyGpuSettings({ studyDir: s.studyDir, control: c, host: 'node-a' }, { cudaVisibleDevices: null, settings: { power_limit_w: 300 } });
      const a = gs.restoreGpuSettings({ studyDir: s.studyDir, control: c, host: 'node-a' });
      assert.equal(a.status, 'restored');
      assert.deepEqual(a.otherHosts, ['node-b']);
      const state = readState(s.studyDir);
      assert.deepEqual(Object.keys(state.nodes).sort(), ['node-a', 'node-b']);
      assert.deepEqual(state.nodes['node-b'].devices[fakeUuid(0)].applied, { power_limit_mw: 400_000 });
      assert.deepEqual(state.nodes['node-a'].devices[fakeUuid(0)].applied, {});
    } finally {
      c.close();
    }
  });

  test('two processes applying at once (two Slurm tasks of one node) both keep their record', async () => {
    const s = scenario({ devices: [{}, {}] });
    for (let round = 0; round < 3; round++) {
      const [a, b] = await Promise.all([
        child('apply', { studyDir: s.studyDir, cvd: '0', settings: { power_limit_w: 300 + round } }, s.env),
        child('apply', { studyDir: s.studyDir, cvd: '1', settings: { power_limit_w: 400 + round } }, s.env),
      ]);
      assert.equal(a.devices?.[0]?.enforced.power_limit_w, 300 + round, JSON.stringify(a));
      assert.equal(b.devices?.[0]?.enforced.power_limit_w, 400 + round, JSON.stringify(b));
      const devices = Object.values(readState(s.studyDir).nodes)[0] as { devices: Record<string, { applied: { power_limit_mw: number } }> };
      assert.equal(devices.devices[fakeUuid(0)]!.applied.power_limit_mw, (300 + round) * 1000);
      assert.equal(devices.devices[fakeUuid(1)]!.applied.power_limit_mw, (400 + round) * 1000);
    }
  });

  test('drift: a cap someone else changes between two snapshots is reported', () => {
    scenario({ devices: [{}] });
    const c = control();
    try {
      c.setPowerLimitMw(0, 300_000);
      const devices = gs.resolveRunGpus(c, null);
      const start = gs.snapshotGpuSettings(c, devices);
      c.setPowerLimitMw(0, 450_000);
      const end = gs.snapshotGpuSettings(c, devices);
      assert.match(gs.settingDrift(start, end, { power_limit_w: 300 })[0]!, /power limit changed from 300 W to 450 W during the window/);
    } finally {
      c.close();
    }
  });
});
