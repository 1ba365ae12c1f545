// GPU settings on the run path (issue 15 phase 2), as a user meets them: the real CLI, the real
// measuring worker (the `command` backend serving test/native/fixtures/gpu-command.mjs) and the
// fake GPU loaded through the real addon. The parent applies and verifies each run's power limit
// before its child starts, the child records requested and enforced values and flags drift, and
// the GPU is back at its original limit after the study, after Ctrl+C/SIGTERM, and after a SIGKILL
// of the runner (by `llem resume` before its first run, or by `llem restore-gpu` alone).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { judgeValidity, DEFAULT_VALIDITY } from '../../src/measure/validity.ts';
import { runResultSchema, type RunResult } from '../../src/results/schema.ts';
import { gpuCommand as command, gpuStudyYaml, type GpuStudyOptions } from './fixtures/gpu-study.ts';
import { spawnLlem } from '../runner/helpers.ts';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, fakeStateFile, fakeUuid, readFakeStateLog, writeFakeScript, type FakeLibs, type FakeScript } from './fake.ts';

/** What the fake GPU draws under no cap: a sweep's caps below it show as its power. */
const LOAD_W = 500;
let libs: FakeLibs;
let root: string;
let n = 0;

before(async () => {
  await ensureAddonBuilt();
  libs = await buildFakeLibs();
  root = mkdtempSync(join(tmpdir(), 'llem-gpu-run-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = { ...process.env, CI: 'true' };
  for (const k of ['LLEM_NVML_LIB', 'LLEM_CUDA_LIB', 'LLEM_FAKE_GPU_SCRIPT', 'LLEM_FAKE_GPU_LOG', 'CUDA_VISIBLE_DEVICES', 'LLEM_WORKER_ENTRY', 'GPU_FIXTURE_GATE']) delete clean[k];
  return { ...clean, ...env };
}

const llem = (args: string[], env: Record<string, string>) => spawnLlem(args, cleanEnv(env));
const run = (args: string[], env: Record<string, string>) => llem(args, env).done;

interface Gpu {
  env: Record<string, string>;
  state: string;
}

function gpu(script: Partial<FakeScript> = {}): Gpu {
  n++;
  const { path } = writeFakeScript(root, { devices: [{ power: [[0, LOAD_W * 1000]] }], ...script }, `gpu-${n}.txt`);
  return { env: fakeGpuEnv(libs, path), state: fakeStateFile(path) };
}

/** A study of the command backend over the fixture (./fixtures/gpu-study.ts). */
function study(sweep: string, opts: Omit<GpuStudyOptions, 'name' | 'sweep'> = {}): { yaml: string; out: string } {
  n++;
  const yaml = join(root, `study-${n}.yaml`);
  writeFileSync(yaml, gpuStudyYaml({ name: `gpu-run-${n}`, sweep, ...opts }));
  return { yaml, out: join(root, `out-${n}`) };
}

const studyDirIn = (out: string): string => join(out, readdirSync(out)[0]!);

/** The power limit (mW) the fake GPU has now, as a fresh process reads it. */
function limitMw(state: string, device = 0): number {
  return readFakeStateLog(state).filter((e) => e.device === device && e.kind === 'power_limit_mw').at(-1)?.values[0] ?? 700_000;
}

function manifest(studyDir: string): { status: string; runs: Array<Record<string, any>> } {
  return JSON.parse(readFileSync(join(studyDir, 'manifest.json'), 'utf8'));
}

function gpuState(studyDir: string): Record<string, any> | null {
  const f = join(studyDir, 'gpu-state.json');
  return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : null;
}

/** Every GPU setting llem changed in this study has been put back. */
function nothingLeftChanged(studyDir: string): boolean {
  const s = gpuState(studyDir);
  return !s || Object.values(s.nodes).every((node: any) => Object.values(node.devices).every((d: any) => Object.keys(d.applied).length === 0));
}

function results(studyDir: string): RunResult[] {
  const runs = join(studyDir, 'runs');
  return readdirSync(runs)
    .filter((d) => existsSync(join(runs, d, 'result.json')))
    .map((d) => runResultSchema.parse(JSON.parse(readFileSync(join(runs, d, 'result.json'), 'utf8'))));
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until run `index` of the study in `out` is running with its GPU at `mw` (its child has started). */
async function runMeasuringAt(out: string, index: number, state: string, mw: number): Promise<string> {
  let dir = '';
  await waitFor(() => {
    if (!existsSync(out) || readdirSync(out).length === 0) return false;
    dir = studyDirIn(out);
    if (!existsSync(join(dir, 'manifest.json'))) return false;
    const r = manifest(dir).runs[index];
    return r?.status === 'running' && r.attempts.at(-1)?.pid !== null && limitMw(state) === mw;
  }, `run ${index} to measure at ${mw / 1000} W`);
  return dir;
}

describe('a power-limit sweep through llem run', { timeout: 300_000 }, () => {
  test('gpu.power_limit_w: [200, 300, default]: requested == enforced in every result, power follows the fake\'s curve, the limit is back after the study, results and report treat the cap as swept', async () => {
    const g = gpu();
    // a baseline may be reused only under the same settings (the fake idles at min(load, cap) too)
    const s = study('  gpu.power_limit_w: [200, 300, default]', { baseline: '{enabled: true, duration_seconds: 0.5, reuse_seconds: 600}' });
    const r = await run(['run', s.yaml, '--out', s.out, '--yes', '--no-tui'], g.env);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const dir = studyDirIn(s.out);
    const byCap = new Map<number | null, RunResult>();
    for (const res of results(dir)) {
      const gs = res.environment.gpu_settings;
      assert.ok(gs, `${res.run_id} records its GPU settings`);
      assert.equal(gs.devices.length, 1);
      const d = gs.devices[0]!;
      assert.equal(d.uuid, fakeUuid(0));
      assert.equal(d.original_power_limit_w, 700);
      // requested == enforced; `default` is the original limit, recorded
      assert.equal(d.enforced.power_limit_w, d.requested.power_limit_w ?? d.original_power_limit_w, JSON.stringify(d));
      assert.equal(gs.gpu_setting_drift, false, gs.drift_reasons.join('; '));
      assert.equal(res.flags.some((f) => f.code === 'gpu_setting_drift'), false);
      byCap.set(d.requested.power_limit_w, res);
    }
    assert.deepEqual([...byCap.keys()].sort(), [200, 300, null].sort());
    // The fake draws min(load, cap): energy over the window is that power × the window.
    for (const [cap, res] of byCap) {
      const meanW = res.metrics.energy_j! / res.metrics.window_s;
      const expected = Math.min(LOAD_W, cap ?? 700);
      assert.ok(Math.abs(meanW - expected) / expected < 0.03, `cap ${cap}: ${meanW.toFixed(1)} W measured, ${expected} W expected`);
      assert.equal(res.baseline?.source, 'measured', `cap ${cap}: no baseline of another cap reused`);
      assert.ok(Math.abs(res.metrics.baseline_power_w! - expected) / expected < 0.03, `cap ${cap}: baseline ${res.metrics.baseline_power_w} W`);
    }
    // Settings change only between runs: no change of the limit while any child lived.
    const changes = readFakeStateLog(g.state).filter((e) => e.kind === 'power_limit_mw');
    for (const res of byCap.values()) {
      const [t0, t1] = [Date.parse(res.started_at) / 1000, Date.parse(res.ended_at) / 1000];
      assert.deepEqual(changes.filter((e) => e.t > t0 && e.t < t1), [], `no change during ${res.run_id}`);
    }
    // The attempt records what it was started under (the live panel's line reads it).
    for (const run of manifest(dir).runs) assert.equal(run.attempts[0].gpu_settings.length, 1, JSON.stringify(run.attempts[0]));
    // Back at the original limit (the default run put it back before it started), nothing left listed.
    assert.equal(limitMw(g.state), 700_000);
    assert.ok(nothingLeftChanged(dir), JSON.stringify(gpuState(dir)));

    // `llem results`: the cap is a swept field, default read as the recorded 700 W.
    const table = await run(['results', dir, '--format', 'json'], g.env);
    assert.equal(table.code, 0, table.stderr);
    const rows = JSON.parse(table.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(rows.map((row) => row['gpu.power_limit_w']).sort(), [200, 300, 700]);
    // The report plots energy per token against the cap.
    const report = await run(['report', dir, '--out', join(root, `report-${n}.html`)], g.env);
    assert.equal(report.code, 0, report.stderr);
    const html = readFileSync(join(root, `report-${n}.html`), 'utf8');
    assert.match(html, /energy per output token \(J\) vs gpu\.power_limit_w/);
    assert.match(html, /GPU power cap, gpu\.power_limit_w \(W\)/);
  });

  test('someone else changes the cap during a window: the result is flagged gpu_setting_drift and judged invalid; the original is still restored', async () => {
    const g = gpu();
    const argv = `[${JSON.stringify(process.execPath)}, ${JSON.stringify(command)}, "{records_file}", "1500", drift, ${JSON.stringify(g.state)}, "450000"]`;
    const s = study('  gpu.power_limit_w: [300]', { argv });
    const r = await run(['run', s.yaml, '--out', s.out, '--yes', '--no-tui'], g.env);
    const dir = studyDirIn(s.out);
    const [res] = results(dir);
    assert.ok(res, r.stderr.slice(-3000));
    const gs = res.environment.gpu_settings!;
    assert.equal(gs.gpu_setting_drift, true);
    assert.match(gs.drift_reasons.join('\n'), /power limit changed from 300 W to 450 W during the window/);
    const flag = res.flags.find((f) => f.code === 'gpu_setting_drift');
    assert.ok(flag, JSON.stringify(res.flags));
    const verdict = judgeValidity(res, DEFAULT_VALIDITY);
    assert.equal(verdict.valid, false);
    assert.ok(verdict.reasons.some((x) => x.code === 'gpu_setting_drift'));
    assert.equal(limitMw(g.state), 700_000);
    assert.ok(nothingLeftChanged(dir));
  });

  test('a limit the driver does not enforce fails the run (PreflightError, the reason) without spawning its child; the others run', async () => {
    const g = gpu({ devices: [{ power: [[0, LOAD_W * 1000]], enforcedCapMw: 250_000 }] });
    const s = study('  gpu.power_limit_w: [300, 200]');
    const started = join(root, `started-${n}.txt`);
    const r = await run(['run', s.yaml, '--out', s.out, '--yes', '--no-tui'], { ...g.env, GPU_FIXTURE_STARTED: started });
    assert.equal(r.code, 1, r.stderr.slice(-3000));
    const dir = studyDirIn(s.out);
    const runs = manifest(dir).runs;
    const failed = runs.find((x) => x.status === 'failed')!;
    assert.equal(failed.error_type, 'PreflightError');
    assert.match(failed.attempts[0].message, /GPU settings \(mismatch\): GPU 0 .*the driver enforces 250 W, not the 300 W set: another limiter/);
    assert.equal(failed.attempts[0].pid, null);
    assert.equal(runs.filter((x) => x.status === 'completed').length, 1);
    // one child ran (the 200 W run), not two
    assert.equal(readFileSync(started, 'utf8').trim().split('\n').length, 1);
    assert.equal(limitMw(g.state), 700_000);
  });
});

describe('restore after the runner stops', { timeout: 300_000 }, () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    test(`${signal} during a 200 W run: exit 130, the run interrupted, the GPU back at 700 W`, async () => {
      const g = gpu();
      const s = study('  gpu.power_limit_w: [200, 300]', { sleepMs: 60_000 });
      const p = llem(['run', s.yaml, '--out', s.out, '--yes', '--no-tui'], g.env);
      const dir = await runMeasuringAt(s.out, 0, g.state, 200_000);
      process.kill(p.proc.pid!, signal);
      const r = await p.done;
      assert.equal(r.code, 130, r.stderr.slice(-3000));
      assert.equal(manifest(dir).runs[0]!.status, 'interrupted');
      assert.match(r.stderr, /warning: GPU settings restored on \S+: restored Fake H100 0 \(GPU-[0-9a-f-]+\): power limit 200 W → 700 W/);
      assert.equal(limitMw(g.state), 700_000);
      assert.ok(nothingLeftChanged(dir), JSON.stringify(gpuState(dir)));
    });
  }

  test('SIGHUP during a 200 W run: the study goes on headless, and the GPU is restored when it actually stops', async () => {
    const g = gpu();
    const s = study('  gpu.power_limit_w: [200, 300]', { sleepMs: 1500 });
    const p = llem(['run', s.yaml, '--out', s.out, '--yes', '--no-tui'], g.env);
    const dir = await runMeasuringAt(s.out, 0, g.state, 200_000);
    process.kill(p.proc.pid!, 'SIGHUP');
    const r = await p.done;
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    assert.deepEqual(manifest(dir).runs.map((x) => x.status), ['completed', 'completed']);
    assert.equal(limitMw(g.state), 700_000);
    assert.ok(nothingLeftChanged(dir));
  });

  test('SIGKILL of the runner during a 200 W run leaves 200 W; status says so; llem resume restores the original before its first run and finishes', async () => {
    const g = gpu();
    const s = study('  gpu.power_limit_w: [200, 300, default]', { sleepMs: 1200 });
    const gate = join(root, `gate-${n}`);
    mkdirSync(gate);
    const p = llem(['run', s.yaml, '--out', s.out, '--yes', '--no-tui'], { ...g.env, GPU_FIXTURE_GATE: gate });
    const dir = await runMeasuringAt(s.out, 0, g.state, 200_000);
    process.kill(p.proc.pid!, 'SIGKILL');
    await p.done;
    const killedAt = Date.now() / 1000;
    assert.equal(limitMw(g.state), 200_000);
    // the worker left by the runner ends on its own (orphan guard) and measures nothing more
    const status = await run(['status', dir], g.env);
    assert.match(status.stdout, /GPU settings changed on \S+: GPU 0 \(Fake H100 0, GPU-[0-9a-f-]+\): power limit 200 W \(was 700 W\); restore with: llem restore-gpu/);

    writeFileSync(join(gate, 'go'), '');
    const r = await run(['resume', dir, '--no-tui'], g.env);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    assert.match(r.stderr, /a previous runner left GPU settings changed: GPU settings restored on .*power limit 200 W → 700 W/);
    const m = manifest(dir);
    assert.ok(m.runs.every((x) => x.status === 'completed'), JSON.stringify(m.runs.map((x) => x.status)));
    // The restore (back to 700 W) came after the kill and before the resumed study's first run.
    const afterKill = readFakeStateLog(g.state).filter((e) => e.kind === 'power_limit_mw' && e.t > killedAt);
    const firstStart = Math.min(...m.runs.flatMap((x) => x.attempts.filter((a: any) => Date.parse(a.started_at) / 1000 > killedAt).map((a: any) => Date.parse(a.started_at) / 1000)));
    const restore = afterKill.find((e) => e.values[0] === 700_000);
    assert.ok(restore, JSON.stringify(afterKill));
    assert.ok(restore.t < firstStart, `restore at ${restore.t}, first resumed run at ${firstStart}`);
    assert.ok(afterKill.filter((e) => e.t < restore.t).every((e) => e.values[0] === 200_000), 'nothing but a dry set before the restore');
    // the interrupted 200 W run was measured again at 200 W, against the original recorded afresh
    const rerun = results(dir).find((x) => x.environment.gpu_settings?.devices[0]?.requested.power_limit_w === 200)!;
    assert.equal(rerun.environment.gpu_settings!.devices[0]!.original_power_limit_w, 700);
    assert.equal(limitMw(g.state), 700_000);
    assert.ok(nothingLeftChanged(dir));
  });

  test('SIGKILL of the runner, then llem restore-gpu alone restores; status no longer lists it', async () => {
    const g = gpu();
    const s = study('  gpu.power_limit_w: [200]', { sleepMs: 60_000 });
    const p = llem(['run', s.yaml, '--out', s.out, '--yes', '--no-tui'], g.env);
    const dir = await runMeasuringAt(s.out, 0, g.state, 200_000);
    process.kill(p.proc.pid!, 'SIGKILL');
    await p.done;
    assert.equal(limitMw(g.state), 200_000);
    // the orphaned worker ends itself; restore-gpu refuses only while a live runner holds the study
    const r = await run(['restore-gpu', dir], g.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /restored Fake H100 0 \(GPU-[0-9a-f-]+\): power limit 200 W → 700 W/);
    assert.equal(limitMw(g.state), 700_000);
    const status = await run(['status', dir, '--json'], g.env);
    assert.deepEqual(JSON.parse(status.stdout).gpu_settings_unrestored, []);
  });
});

describe('parallel: per_gpu', { timeout: 300_000 }, () => {
  test('each slot applies its own GPU\'s cap (by UUID) and both are restored', async () => {
    const g = gpu({ devices: [{ power: [[0, LOAD_W * 1000]] }, { power: [[0, LOAD_W * 1000]] }] });
    const s = study('  gpu.power_limit_w: [200, 300]', { execution: 'parallel: per_gpu, ' });
    const r = await run(['run', s.yaml, '--out', s.out, '--yes', '--no-tui'], g.env);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const dir = studyDirIn(s.out);
    const res = results(dir);
    assert.equal(res.length, 2);
    const uuids = new Set<string>();
    for (const x of res) {
      const devs = x.environment.gpu_settings!.devices;
      assert.equal(devs.length, 1, 'only the slot\'s GPU');
      assert.equal(x.environment.cuda_visible_devices, devs[0]!.uuid);
      assert.equal(devs[0]!.enforced.power_limit_w, devs[0]!.requested.power_limit_w);
      uuids.add(devs[0]!.uuid);
    }
    assert.equal(uuids.size, 2, 'the two runs ran on the two GPUs');
    // each GPU's log holds only its own run's cap
    for (const x of res) {
      const d = x.environment.gpu_settings!.devices[0]!;
      const sets = readFakeStateLog(g.state).filter((e) => e.device === d.index && e.kind === 'power_limit_mw').map((e) => e.values[0]);
      assert.ok(sets.includes(d.requested.power_limit_w! * 1000) && !sets.includes((d.requested.power_limit_w === 200 ? 300 : 200) * 1000), JSON.stringify(sets));
    }
    assert.equal(limitMw(g.state, 0), 700_000);
    assert.equal(limitMw(g.state, 1), 700_000);
  });
});
