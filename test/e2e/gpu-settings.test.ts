// GPU settings in the full-screen view (issue 15), in a real terminal (tmux, CI unset): `llem run`
// of a power-limit sweep on the fake GPU with the real measuring worker; the live panel shows the
// cap the running run was started under, and Ctrl+C or q (quit after the run) leave the GPU at its
// original limit.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, fakeStateFile, readFakeStateLog, writeFakeScript, type FakeLibs } from '../native/fake.ts';
import { Tmux } from './tmux.ts';
import { gpuStudyYaml } from '../native/fixtures/gpu-study.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
let libs: FakeLibs;

before(async () => {
  await ensureAddonBuilt();
  libs = await buildFakeLibs();
});

function setup(name: string) {
  const tmp = mkdtempSync(join(tmpdir(), `llem-e2e-gpu-${name}-`));
  const { path: script } = writeFakeScript(tmp, { devices: [{ power: [[0, 500_000]] }] });
  const yaml = join(tmp, 'study.yaml');
  writeFileSync(yaml, gpuStudyYaml({ name: `e2e-gpu-${name}`, sweep: '  gpu.power_limit_w: [200, 300]', sleepMs: 500, sampleIntervalMs: 100 }));
  // a run finishes only once the test writes <gate>/go: the keys always land during the 200 W run
  const gate = join(tmp, 'gate');
  mkdirSync(gate);
  const env = Object.entries({ ...fakeGpuEnv(libs, script), GPU_FIXTURE_GATE: gate })
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const state = fakeStateFile(script);
  return {
    tmp,
    gate,
    exitFile: join(tmp, 'exit'),
    line: `env -u CI -u CUDA_VISIBLE_DEVICES -u LLEM_WORKER_ENTRY ${env} node bin/llem.js run ${yaml} --out ${join(tmp, 'out')}; echo $? > ${join(tmp, 'exit')}`,
    limitMw: () => readFakeStateLog(state).filter((e) => e.kind === 'power_limit_mw').at(-1)?.values[0] ?? 700_000,
    studyDir: () => join(tmp, 'out', readdirSync(join(tmp, 'out'))[0]!),
  };
}

async function untilExit(exitFile: string, tmux: Tmux): Promise<number> {
  await tmux.waitFor(() => existsSync(exitFile) && readFileSync(exitFile, 'utf8').trim() !== '', 'llem to exit', 120_000);
  return Number(readFileSync(exitFile, 'utf8').trim());
}

describe('GPU settings in the TUI', { timeout: 300_000 }, () => {
  const cleanups: Array<() => void> = [];
  after(() => cleanups.forEach((c) => c()));

  /** `llem run` in tmux, past the pre-flight screen (Enter). */
  async function started(name: string): Promise<{ s: ReturnType<typeof setup>; tmux: Tmux }> {
    const s = setup(name);
    const tmux = new Tmux(`gpu-${name}`);
    cleanups.push(() => tmux.kill(), () => rmSync(s.tmp, { recursive: true, force: true }));
    tmux.start(120, 30, repo);
    tmux.sendLine(s.line);
    await tmux.waitFor((x) => x.includes('Press Enter to start'), 'the pre-flight screen', 120_000);
    tmux.keys('Enter');
    return { s, tmux };
  }

  test('the live panel shows the cap of the running run; Ctrl+C exits 130 with the GPU back at its original limit', async () => {
    const { s, tmux } = await started('ctrlc');
    const screen = await tmux.waitFor((x) => /GPU 0 cap 200 W \(requested 200 W\) · SM \d+ MHz · mem \d+ MHz/.test(x), 'the live panel with the cap', 120_000);
    assert.equal(s.limitMw(), 200_000, screen);
    tmux.keys('C-c');
    assert.equal(await untilExit(s.exitFile, tmux), 130);
    assert.equal(s.limitMw(), 700_000);
    const m = JSON.parse(readFileSync(join(s.studyDir(), 'manifest.json'), 'utf8'));
    assert.equal(m.runs[0].status, 'interrupted');
  });

  test('q (quit after the run): the 200 W run finishes, nothing more starts, the GPU is back at its original limit', async () => {
    const { s, tmux } = await started('quit');
    await tmux.waitFor((x) => x.includes('GPU 0 cap 200 W (requested 200 W)'), 'the 200 W run', 120_000);
    tmux.keys('q', true);
    await tmux.waitFor((x) => x.includes('press q again to confirm'), 'the quit confirmation');
    tmux.keys('q', true);
    await tmux.waitFor((x) => x.includes('cancel quit'), 'the quit to register');
    writeFileSync(join(s.gate, 'go'), '');
    assert.equal(await untilExit(s.exitFile, tmux), 130);
    assert.equal(s.limitMw(), 700_000);
    const m = JSON.parse(readFileSync(join(s.studyDir(), 'manifest.json'), 'utf8'));
    assert.deepEqual(m.runs.map((r: { status: string }) => r.status), ['completed', 'pending']);
  });
});
