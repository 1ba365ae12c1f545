// Edges of the GPU settings' apply → verify → restore (issue 15), on the fake NVML through the real
// addon: the power limit's 1 W tolerance from both sides, clock locks the driver accepts but the
// clock does not follow (SM and memory), a memory clock lock applied before a run and reset after
// it, and a study planned where NVML was unavailable, run on a GPU whose range excludes its cap.
// Runs go through the runner in this process (the fixture worker; a failed apply spawns nothing)
// or `llem resume`; gpu-settings.test.ts and gpu-run.test.ts cover the main paths.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { applyGpuSettings, GpuSettingsError, openGpuControl, readGpuState, restoreGpuSettings, type GpuControl } from '../../src/gpu-settings/index.ts';
import { createStudyDir } from '../../src/runner/study-dir.ts';
import { StudyRunner } from '../../src/runner/study-runner.ts';
import { RESULT_FILE } from '../../src/study-dir/files.ts';
import { readManifest } from '../../src/study-dir/read.ts';
import type { GpuSettings } from '../../src/study/gpu-settings.ts';
import { planStudy } from '../../src/study/plan.ts';
import { gpuStudyYaml } from './fixtures/gpu-study.ts';
import { fixtureWorker, makePlan, spawnLlem, tempStudy, type TempStudy } from '../runner/helpers.ts';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, fakeStateFile, fakeUuid, readFakeStateLog, writeFakeScript, type FakeLibs, type FakeScript, type FakeSettingChange } from './fake.ts';

let libs: FakeLibs;
let root: string;
let n = 0;
const studies: TempStudy[] = [];

before(async () => {
  await ensureAddonBuilt();
  libs = await buildFakeLibs();
  root = mkdtempSync(join(tmpdir(), 'llem-gpu-edges-'));
  // the runner and the controls in this process open NVML through the same addon
  Object.assign(process.env, { LLEM_NVML_LIB: libs.nvml, LLEM_CUDA_LIB: libs.cuda });
  delete process.env.CUDA_VISIBLE_DEVICES;
});
after(() => {
  for (const s of studies) s.cleanup();
  rmSync(root, { recursive: true, force: true });
});

/** A fresh fake GPU, loaded by this process (at its next NVML open) and by children given `env`. */
function gpu(script: FakeScript): { env: Record<string, string>; state: string; studyDir: string } {
  n++;
  const { path } = writeFakeScript(root, script, `gpu-${n}.txt`);
  const env = fakeGpuEnv(libs, path);
  Object.assign(process.env, env);
  const studyDir = join(root, `study-${n}`);
  mkdirSync(studyDir);
  return { env, state: fakeStateFile(path), studyDir };
}

function control(): GpuControl {
  const opened = openGpuControl();
  if (opened.status !== 'available') throw new Error(opened.reason);
  return opened.control;
}

const events = (state: string, kind: FakeSettingChange['kind']) => readFakeStateLog(state).filter((e) => e.kind === kind);

/** One fixture run whose config sets `settings`, run to the study's end by a runner in this process. */
async function runOne(settings: GpuSettings) {
  const plan = makePlan([{ fixture_mode: 'ok' }]);
  plan.configs[0]!.config = { ...plan.configs[0]!.config, gpu: settings };
  const study = tempStudy(plan);
  studies.push(study);
  const code = await new StudyRunner(study.studyDir, { workerCommand: fixtureWorker, fsync: false }).run();
  const run = readManifest(study.studyDir).runs[0]!;
  const measured = run.attempts.some((a) => a.run_dir !== null && existsSync(join(study.studyDir, a.run_dir, RESULT_FILE)));
  return { code, run, measured, studyDir: study.studyDir };
}

/** Every setting llem changed has been put back (gpu-state.json lists nothing). */
function nothingListed(studyDir: string): boolean {
  return Object.values(readGpuState(studyDir)?.nodes ?? {}).every((node) => Object.values(node.devices).every((d) => Object.keys(d.applied).length === 0));
}

describe('verify: the power limit the driver enforces, within 1 W of the request', { timeout: 120_000 }, () => {
  test('0.5 W under the request is accepted: the run is measured and records 299.5 W enforced for 300 W requested', async () => {
    const g = gpu({ devices: [{ enforcedCapMw: 299_500 }] });
    const r = await runOne({ power_limit_w: 300 });
    assert.equal(r.code, 0, JSON.stringify(r.run));
    assert.equal(r.run.status, 'completed');
    assert.equal(r.measured, true);
    const applied = r.run.attempts[0]!.gpu_settings![0]!;
    assert.deepEqual([applied.requested.power_limit_w, applied.enforced.power_limit_w], [300, 299.5]);
    assert.deepEqual(events(g.state, 'power_limit_mw').map((e) => e.values[0]), [300_000, 700_000], 'set, then restored at the end');
    assert.ok(nothingListed(r.studyDir));
  });

  test('2 W under is a mismatch: the run fails with a PreflightError naming both limits, no child, nothing measured; the cap is restored', async () => {
    const g = gpu({ devices: [{ enforcedCapMw: 298_000 }] });
    const r = await runOne({ power_limit_w: 300 });
    assert.equal(r.code, 1);
    assert.equal(r.run.status, 'failed');
    assert.equal(r.run.error_type, 'PreflightError');
    assert.match(r.run.attempts[0]!.message ?? '', /^GPU settings \(mismatch\): GPU 0 \(Fake H100 0, GPU-[0-9a-f-]+\): the driver enforces 298 W, not the 300 W set/);
    assert.ok(r.run.attempts.every((a) => a.pid === null), 'no child was spawned');
    assert.equal(r.measured, false);
    assert.deepEqual(events(g.state, 'power_limit_mw').map((e) => e.values[0]), [300_000, 700_000]);
    assert.ok(nothingListed(r.studyDir));
  });
});

describe('verify: a clock lock the clock does not follow', { timeout: 120_000 }, () => {
  test('SM: the run fails with a PreflightError naming the clock and the lock, nothing measured; the lock is still reset', async () => {
    const g = gpu({ devices: [{ locksIgnored: true, smClockMhz: 1980 }] });
    const r = await runOne({ sm_clock_mhz: [1410, 1410] });
    assert.equal(r.code, 1);
    assert.equal(r.run.error_type, 'PreflightError');
    assert.match(r.run.attempts[0]!.message ?? '', /^GPU settings \(mismatch\): GPU 0 .*: the SM clock is 1980 MHz after locking it to \[1410, 1410\] MHz/);
    assert.ok(r.run.attempts.every((a) => a.pid === null));
    assert.equal(r.measured, false);
    assert.deepEqual(events(g.state, 'sm_lock').map((e) => e.values), [[1410, 1410], [0, 0]], 'locked, then reset');
    assert.ok(nothingListed(r.studyDir));
  });

  test('SM on a GPU whose clocks step by 30 MHz: a 1410 lock running at 1440 is one step off, verified and measured; the step is recorded for the window-end check', async () => {
    gpu({ devices: [{ locksIgnored: true, smClockMhz: 1440, smClocks: { lowestMhz: 210, highestMhz: 1980, stepMhz: 30 } }] });
    const r = await runOne({ sm_clock_mhz: [1410, 1410] });
    assert.equal(r.code, 0, JSON.stringify(r.run));
    assert.equal(r.run.status, 'completed');
    const applied = r.run.attempts[0]!.gpu_settings![0]!;
    assert.deepEqual([applied.enforced.sm_clock_mhz, applied.sm_clock_step_mhz], [1440, 30]);
    assert.ok(nothingListed(r.studyDir));
  });

  test('SM: below the lock on a busy GPU is a mismatch; on an idle one (clock-event reason GpuIdle) it is a note', () => {
    for (const idle of [false, true]) {
      const g = gpu({ devices: [{ locksIgnored: true, smClockMhz: 990, throttle: [[0, idle ? 0x1 : 0]] }] });
      const c = control();
      const ctx = { studyDir: g.studyDir, control: c };
      try {
        const apply = () => applyGpuSettings(ctx, { cudaVisibleDevices: null, settings: { sm_clock_mhz: [1410, 1410] } });
        if (idle) {
          const [d] = apply();
          assert.equal(d!.enforced.sm_clock_mhz, 990);
          assert.match(d!.notes.join('\n'), /SM clock 990 MHz is below the lock \[1410, 1410\] MHz while the GPU is idle/);
        } else {
          assert.throws(apply, (err: unknown) => err instanceof GpuSettingsError && err.kind === 'mismatch' && /the SM clock is 990 MHz after locking it to \[1410, 1410\] MHz/.test(err.message));
        }
        assert.equal(restoreGpuSettings(ctx).status, 'restored');
        assert.deepEqual(events(g.state, 'sm_lock').map((e) => e.values), [[1410, 1410], [0, 0]]);
      } finally {
        c.close();
      }
    }
  });

  test('memory: with two memory clocks listed, a lock the clock ignores is a mismatch; a lock between them verifies at the one the driver picked', () => {
    const memClocksMhz = [2619, 1593];
    const ignored = gpu({ devices: [{ locksIgnored: true, memClockMhz: 2619, memClocksMhz }] });
    const c = control();
    try {
      assert.throws(
        () => applyGpuSettings({ studyDir: ignored.studyDir, control: c }, { cudaVisibleDevices: null, settings: { memory_clock_mhz: [1593, 1593] } }),
        (err: unknown) => err instanceof GpuSettingsError && err.kind === 'mismatch' && /the memory clock is 2619 MHz after locking it to \[1593, 1593\] MHz/.test(err.message),
      );
      assert.equal(restoreGpuSettings({ studyDir: ignored.studyDir, control: c }).status, 'restored');
    } finally {
      c.close();
    }
    // The fake, like a driver, locks to a listed clock: 2000 MHz is not one, it picks 1593.
    const honest = gpu({ devices: [{ memClockMhz: 2619, memClocksMhz }] });
    const h = control();
    try {
      const [d] = applyGpuSettings({ studyDir: honest.studyDir, control: h }, { cudaVisibleDevices: null, settings: { memory_clock_mhz: [2000, 2000] } });
      assert.equal(d!.enforced.memory_clock_mhz, 1593);
      assert.equal(restoreGpuSettings({ studyDir: honest.studyDir, control: h }).status, 'restored');
    } finally {
      h.close();
    }
  });
});

describe('gpu.memory_clock_mhz: applied before the run, reset after it', { timeout: 120_000 }, () => {
  test('the lock is set before the child starts and reset after it ends; the run records it; the original clock is back', async () => {
    const g = gpu({ devices: [{ memClockMhz: 2619, memClocksMhz: [2619, 1593] }] });
    const r = await runOne({ memory_clock_mhz: [1593, 1593] });
    assert.equal(r.code, 0, JSON.stringify(r.run));
    assert.equal(r.measured, true);
    const attempt = r.run.attempts[0]!;
    const applied = attempt.gpu_settings![0]!;
    assert.deepEqual([applied.requested.memory_clock_mhz, applied.enforced.memory_clock_mhz], [[1593, 1593], 1593]);
    const locks = events(g.state, 'mem_lock');
    assert.deepEqual(locks.map((e) => e.values), [[1593, 1593], [0, 0]]);
    // started_at/ended_at are whole ms (floored); the log is µs: 1 ms of slack on the floored side only
    assert.ok(locks[0]!.t * 1000 < Date.parse(attempt.started_at) + 1, `lock at ${locks[0]!.t}, child started ${attempt.started_at}`);
    assert.ok(locks[1]!.t * 1000 >= Date.parse(attempt.ended_at!), `reset at ${locks[1]!.t}, child ended ${attempt.ended_at}`);
    assert.deepEqual(readFakeStateLog(g.state).filter((e) => e.kind !== 'mem_lock'), [], 'nothing else was touched');
    const rec = Object.values(readGpuState(r.studyDir)!.nodes)[0]!.devices[fakeUuid(0)]!;
    assert.equal(rec.original.memory_clock_mhz, 2619);
    assert.deepEqual(rec.applied, {});
    const c = control();
    try {
      assert.equal(c.read(0).memClockMhz, 2619);
    } finally {
      c.close();
    }
  });

  test('a later config at default resets the lock; restore resets it and says what it was; a second restore touches nothing', () => {
    const g = gpu({ devices: [{ memClockMhz: 2619, memClocksMhz: [2619, 1593] }] });
    const c = control();
    const ctx = { studyDir: g.studyDir, control: c, host: 'node-a' };
    const lock = { memory_clock_mhz: [1593, 1593] as [number, number] };
    try {
      applyGpuSettings(ctx, { cudaVisibleDevices: null, settings: lock });
      assert.deepEqual(readGpuState(g.studyDir)!.nodes['node-a']!.devices[fakeUuid(0)]!.applied, { memory_clock_mhz: [1593, 1593] });
      const [def] = applyGpuSettings(ctx, { cudaVisibleDevices: null, settings: undefined });
      assert.equal(def!.enforced.memory_clock_mhz, 2619);
      assert.deepEqual(events(g.state, 'mem_lock').map((e) => e.values), [[1593, 1593], [0, 0]]);
      applyGpuSettings(ctx, { cudaVisibleDevices: null, settings: lock });
      const report = restoreGpuSettings(ctx);
      assert.equal(report.status, 'restored');
      assert.deepEqual(report.devices.map((d) => d.restored), [['memory clocks unlocked (were locked to [1593, 1593] MHz)']]);
      assert.deepEqual(events(g.state, 'mem_lock').map((e) => e.values), [[1593, 1593], [0, 0], [1593, 1593], [0, 0]]);
      assert.equal(c.read(0).memClockMhz, 2619);
      assert.equal(restoreGpuSettings(ctx).status, 'nothing_to_do');
      assert.equal(readFakeStateLog(g.state).length, 4, 'a second restore makes no NVML call that sets anything');
    } finally {
      c.close();
    }
  });
});

describe('a study planned where NVML was unavailable, run on a GPU whose range excludes its cap', { timeout: 120_000 }, () => {
  test('planned with a warning; `llem resume` with the GPU fails the run out_of_range with the range, unmeasured, the GPU left as it was', async () => {
    n++;
    const yaml = join(root, `study-${n}.yaml`);
    writeFileSync(yaml, gpuStudyYaml({ name: `edges-${n}`, sweep: '  gpu.power_limit_w: [150]\n  gpu.sm_clock_mhz: [1410]' }));
    // What the CLI's planInputs() hands the planner on a machine without NVML.
    const plan = await planStudy(yaml, { gpuLimits: { status: 'unknown', reason: 'NVIDIA management library not found' }, gpuFreeMemoryBytes: null, gpuFreeMemoryReason: 'no NVML' });
    assert.match(plan.warnings.join('\n'), /1 config\(s\) set gpu\.\* but the GPU limits could not be read \(NVIDIA management library not found\): they are checked again before each run/);
    assert.equal(plan.skipped.length, 0, 'nothing to check it against: planned');
    const studyDir = createStudyDir(plan.toPlanFile(), yaml, join(root, `out-${n}`));

    const g = gpu({ devices: [{ powerLimitMinMw: 200_000, powerLimitMaxMw: 700_000 }] });
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of ['LLEM_FAKE_GPU_LOG', 'CUDA_VISIBLE_DEVICES', 'LLEM_WORKER_ENTRY']) delete env[k];
    const r = await spawnLlem(['resume', studyDir, '--no-tui'], { ...env, ...g.env }).done;
    assert.equal(r.code, 1, r.stderr.slice(-3000));
    const run = readManifest(studyDir).runs[0]!;
    assert.equal(run.status, 'failed');
    assert.equal(run.error_type, 'PreflightError');
    assert.match(run.attempts[0]!.message ?? '', /^GPU settings \(out_of_range\): gpu\.power_limit_w 150 W is outside what GPU 0 \(Fake H100 0, GPU-[0-9a-f-]+\) allows: 200–700 W/);
    assert.ok(run.attempts.every((a) => a.pid === null), 'no child was spawned');
    assert.ok(run.attempts.every((a) => a.run_dir === null || !existsSync(join(studyDir, a.run_dir, RESULT_FILE))));
    // resume's pre-flight dry-sets the limit it already has (the privilege check); nothing else
    assert.deepEqual(readFakeStateLog(g.state).map((e) => [e.kind, e.values[0]]), [['power_limit_mw', 700_000]]);
    assert.equal(existsSync(join(studyDir, 'gpu-state.json')), false, 'no original recorded: nothing was about to change');
    assert.equal(JSON.parse(readFileSync(join(studyDir, 'manifest.json'), 'utf8')).status, 'failed');
  });
});
