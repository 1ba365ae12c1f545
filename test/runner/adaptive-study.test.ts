// Done-when of issue 14 on real studies through the CLI: a quiet and a noisy config of the command
// backend (test/runner/fixtures/noisy-command.mjs: a per-request sleep with a seeded spread) under
// a fake NVML at constant power, `n_cycles: auto`, target ±5 %, min 3, max 12. The quiet config
// stops at 3 cycles with target_met, the noisy one takes more and ends target_met or max_cycles,
// summary.json / status / results / report say which, and the study takes fewer runs than a fixed
// n_cycles giving both the same half-width. A runner SIGKILLed mid-round is resumed and the rule
// continues to the same decisions. With the run history the runner wrote, `llem plan` estimates
// from history, and `llem run` confirms an auto study by its most runs (configs × max_cycles).
//
// The target metric is e2e_p50_ms, whose values the fixture scripts exactly: energy under a
// constant fake power is proportional to the wall-clock window, which the load of a shared box
// moves by more than the 5 % this test decides on.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readManifest, readSummary } from '../../src/study-dir/read.ts';
import type { Manifest } from '../../src/study-dir/schema.ts';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, writeFakeScript } from '../native/fake.ts';
import { llemBin, waitFor } from './helpers.ts';

const fixture = fileURLToPath(new URL('./fixtures/noisy-command.mjs', import.meta.url));
const MAX = 12;

let root = '';
let env: NodeJS.ProcessEnv = {};
let yamlPath = '';
let first = '';

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function llem(args: string[], timeoutMs = 400_000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, [llemBin, ...args], { env, timeout: timeoutMs, maxBuffer: 32 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function studyYaml(name: string, extraExecution = ''): string {
  const argv = (spread: string) => `[${JSON.stringify(process.execPath)}, ${JSON.stringify(fixture)}, "{records_file}", "{run_dir}", "40", "${spread}", "7"]`;
  return [
    `name: ${name}`,
    'backend: command',
    'model: scripted',
    'n: 4',
    'max_new_tokens: 4',
    'baseline: {enabled: true, duration_seconds: 0.3, reuse_seconds: 600}',
    'energy: {rapl: false, sample_interval_ms: 50}',
    'command:',
    '  expected_load_seconds: 0.5',
    '  expected_tokens_per_second: 100',
    'sweep:',
    `  command.argv: [${argv('0')}, ${argv('0.08')}]`,
    'execution:',
    '  n_cycles: auto',
    `  target: {metric: e2e_p50_ms, ci_half_width: "5%", min_cycles: 3, max_cycles: ${MAX}}`,
    '  cycle_order: interleaved',
    '  config_gap_seconds: 0',
    '  cycle_gap_seconds: 0',
    extraExecution,
  ].join('\n') + '\n';
}

function onlyDir(out: string): string {
  return path.join(out, readdirSync(out)[0]!);
}

/** Config hashes in plan order: [quiet, noisy] (the sweep lists the quiet argv first). */
function hashes(studyDir: string): [string, string] {
  const plan = JSON.parse(readFileSync(path.join(studyDir, 'plan.json'), 'utf8')) as { configs: Array<{ config_hash: string; config: { params: { argv: string[] } } }> };
  const quiet = plan.configs.find((c) => c.config.params.argv[5] === '0')!.config_hash;
  const noisy = plan.configs.find((c) => c.config.params.argv[5] === '0.08')!.config_hash;
  return [quiet, noisy];
}

function stopsOf(m: Manifest): Array<[string, string, number]> {
  return m.rounds!.stops.map((s) => [s.config_hash, s.reason, s.cycles] as [string, string, number]).sort((a, b) => a[0].localeCompare(b[0]));
}

before(async () => {
  await ensureAddonBuilt();
  const libs = await buildFakeLibs();
  root = mkdtempSync(path.join(os.tmpdir(), 'llem-adaptive-'));
  const script = writeFakeScript(root, { devices: [{ power: [[0, 200_000]], temp: [[0, 40]] }] });
  env = { ...process.env, CI: 'true', COLUMNS: '200', LLEM_STATE_DIR: path.join(root, 'state'), ...fakeGpuEnv(libs, script.path) };
  // every GPU the fake NVML scripts is visible
  delete env.CUDA_VISIBLE_DEVICES;
  yamlPath = path.join(root, 'adaptive.yaml');
  writeFileSync(yamlPath, studyYaml('adaptive'));
}, { timeout: 300_000 });

after(() => {
  if (root && !process.env.KEEP) rmSync(root, { recursive: true, force: true });
});

describe('n_cycles: auto on a real study', { timeout: 900_000 }, () => {
  it('quiet stops at 3 (target_met), noisy runs more and says why; fewer runs than a fixed n_cycles; every surface says it', async () => {
    const out = path.join(root, 'out-a');
    const r = await llem(['run', yamlPath, '--out', out, '--yes', '--no-tui']);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    first = onlyDir(out);
    const [quiet, noisy] = hashes(first);
    const summary = readSummary(path.join(first, 'summary.json'));
    const by = new Map(summary.configs.map((c) => [c.config_hash, c]));
    const q = by.get(quiet)!;
    const n = by.get(noisy)!;
    assert.equal(q.stopping!.reason, 'target_met');
    assert.equal(q.stopping!.cycles, 3);
    assert.equal(q.counts.completed, 3);
    assert.ok(n.stopping!.reason === 'target_met' || n.stopping!.reason === 'max_cycles', n.stopping!.reason);
    assert.ok(n.stopping!.cycles > 3 && n.stopping!.cycles <= MAX, `noisy took ${n.stopping!.cycles} cycles`);
    assert.equal(n.counts.completed, n.stopping!.cycles);
    assert.ok(n.stopping!.detail.length > 0);
    // the rule decided on the published interval: the noisy config's half-width is the one recorded
    const e2e = n.metrics.e2e_p50_ms!;
    const published = Math.max(e2e.ci95_t![1] - e2e.ci95_t![0], e2e.ci95_bootstrap![1] - e2e.ci95_bootstrap![0]) / 2;
    assert.ok(Math.abs(published - n.stopping!.half_width!) < 1e-9 * published, `${published} vs ${n.stopping!.half_width}`);
    if (n.stopping!.reason === 'max_cycles') assert.ok(published > n.stopping!.target_half_width!);

    // runs: 3 + k, against a fixed n_cycles giving both the half-width the noisy one needed:
    // k cycles each if it met the target at k, more than max_cycles each if it never did
    const total = summary.study.counts.planned;
    assert.equal(total, 3 + n.stopping!.cycles);
    const fixedCycles = n.stopping!.reason === 'target_met' ? n.stopping!.cycles : MAX + 1;
    assert.ok(total < 2 * fixedCycles, `${total} runs < fixed ${2 * fixedCycles}`);
    // energy was measured under the fake NVML at its constant 200 W
    assert.ok(Math.abs(q.metrics.power_mean_w!.mean! - 200) < 1, `power ${q.metrics.power_mean_w!.mean}`);

    // the plain reporter said what each round decided
    assert.match(r.stderr, /round 1: 1 config\(s\) measure another cycle/);
    assert.match(r.stderr, /stopped target_met after 3 cycle\(s\)/);
    assert.match(r.stderr, /ETA /);

    const status = await llem(['status', first, '--json']);
    assert.equal(status.code, 0, status.stderr);
    const st = JSON.parse(status.stdout) as { status: string; stopping: { configs: Array<{ config_hash: string; reason: string; cycles: number }> } };
    assert.equal(st.status, 'completed');
    assert.deepEqual(st.stopping.configs.find((c) => c.config_hash === quiet), { config_hash: quiet, reason: 'target_met', cycles: 3, detail: q.stopping!.detail });
    const statusText = await llem(['status', first]);
    assert.match(statusText.stdout, /stopped target_met after 3 cycle/);

    const results = await llem(['results', first, '--format', 'json']);
    assert.equal(results.code, 0, results.stderr);
    const rows = JSON.parse(results.stdout) as Array<Record<string, unknown>>;
    assert.equal(rows.find((x) => x.config_hash === quiet)!.stop_reason, 'target_met');
    assert.equal(rows.find((x) => x.config_hash === noisy)!.stop_reason, n.stopping!.reason);
    const table = await llem(['results', first]);
    assert.match(table.stdout, /stopped/);
    assert.match(table.stdout, /n_cycles: auto: /);

    const report = await llem(['report', first, '--out', path.join(root, 'report.html')]);
    assert.equal(report.code, 0, report.stderr);
    const html = readFileSync(path.join(root, 'report.html'), 'utf8');
    assert.match(html, /<th>stopped<\/th>/);
    assert.match(html, /target_met/);
  });

  it('a runner SIGKILLed mid-round resumes the rule where it stood and reaches the same decisions', async () => {
    assert.ok(first, 'the first study ran');
    const out = path.join(root, 'out-b');
    mkdirSync(out);
    const child = spawn(process.execPath, [llemBin, 'run', yamlPath, '--out', out, '--yes', '--no-tui'], { env, stdio: 'ignore', detached: true });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    let studyDir = '';
    // a round appended (run 6 is the noisy config's cycle 4) and running: kill the runner then
    await waitFor(
      () => {
        try {
          studyDir ||= onlyDir(out);
          const m = readManifest(studyDir);
          return m.runs.length > 6 && m.runs.slice(6).some((x) => x.status === 'running');
        } catch {
          return false;
        }
      },
      300_000,
      'a run of a later round running',
    );
    process.kill(child.pid!, 'SIGKILL');
    await exited;
    const killed = readManifest(studyDir);
    assert.equal(killed.status, 'running', 'the manifest still says running: its runner was killed');
    const midStatus = JSON.parse((await llem(['status', studyDir, '--json'])).stdout) as { status: string };
    assert.equal(midStatus.status, 'stopped');

    const resumed = await llem(['resume', studyDir, '--no-tui']);
    assert.equal(resumed.code, 0, resumed.stderr.slice(-3000));
    const m = readManifest(studyDir);
    const a = readManifest(first);
    assert.equal(m.status, 'completed');
    assert.deepEqual(stopsOf(m), stopsOf(a), 'the same stops, reasons and cycles as the study that was never killed');
    assert.deepEqual(m.runs.map((x) => [x.config_hash, x.cycle]), a.runs.map((x) => [x.config_hash, x.cycle]), 'the same rounds in the same order');
    assert.ok(m.runs.every((x) => x.status === 'completed'));
    const interrupted = m.runs.filter((x) => x.attempts.length > 1);
    assert.ok(interrupted.length <= 1, 'only the run in flight was measured again');
  });

  it('with the history the runner wrote, the pre-flight estimates from it, and an auto study is confirmed by its most runs', async () => {
    assert.ok(first, 'the first study ran');
    const plan = await llem(['plan', yamlPath, '--json', '--no-order']);
    assert.equal(plan.code, 0, plan.stderr);
    const j = JSON.parse(plan.stdout) as { estimate: { source: string; per_config: Array<{ source: string; cycles: { expected: number } }> }; max_runs: number };
    assert.equal(j.estimate.source, 'history');
    assert.ok(j.estimate.per_config.every((c) => c.source === 'history'));
    // the quiet config's spread was 0 in history: it is expected to stop at min_cycles
    assert.ok(j.estimate.per_config.some((c) => c.cycles.expected === 3));

    const big = path.join(root, 'confirm.yaml');
    writeFileSync(big, studyYaml('adaptive-confirm', '  max_runs_without_confirmation: 10'));
    const out = path.join(root, 'out-c');
    const r = await llem(['run', big, '--out', out, '--no-tui']);
    assert.equal(r.code, 2, `6 runs planned, up to ${2 * MAX}: above 10, so it asks (and refuses without a terminal): ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`up to ${2 * MAX} runs`));
    assert.match(r.stderr, /estimated from history/);
  });
});
