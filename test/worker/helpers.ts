// Shared by the worker and backend tests: a run directory with run.json, and a parent that spawns
// the real child entry with an IPC channel, records its messages and acks its result.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { runResultSchema, type RunResult } from '../../src/results/schema.ts';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, writeFakeScript, type FakeDevice, type FakeLibs } from '../native/fake.ts';
import { nodeArgsFor, srcPath } from '../../src/node-entry.ts';
import type { ChildMessage, RunSpec } from '../../src/runner/protocol.ts';
import type { ExperimentConfig } from '../../src/study/types.ts';

export function baseConfig(over: Partial<ExperimentConfig> = {}): ExperimentConfig {
  return {
    model: 'builtin:tiny-random',
    backend: 'llamacpp',
    precision: 'auto',
    n: 4,
    max_new_tokens: 8,
    batch_size: 1,
    dataset: { kind: 'builtin', name: 'builtin' },
    seed: 7,
    warmup: { cv_threshold: 0.5, window: 3, min_prompts: 2, max_prompts: 4 },
    baseline: { enabled: true, duration_seconds: 0.2, reuse_seconds: 0 },
    energy: { sample_interval_ms: 100, live_interval_ms: 200, rapl: false },
    params: { gpu: false, threads: 1 },
    ...over,
  };
}

export interface TempRun {
  root: string;
  spec: RunSpec;
  specPath: string;
  cleanup(): void;
}

export function makeRun(config: ExperimentConfig): TempRun {
  const root = mkdtempSync(join(tmpdir(), 'llem-worker-test-'));
  const runDir = join(root, 'runs', '0000-abc-c1');
  mkdirSync(runDir, { recursive: true });
  const spec: RunSpec = {
    v: 1,
    study_dir: root,
    run_dir: runDir,
    run_id: '0000-abc-c1',
    index: 0,
    config_hash: 'abcdef0123456789',
    cycle: 1,
    attempt: 1,
    config,
    result_path: join(runDir, 'result.json'),
    power_csv_path: join(runDir, 'power.csv'),
    heartbeat_ms: 500,
    cuda_visible_devices: null,
  };
  const specPath = join(runDir, 'run.json');
  writeFileSync(specPath, JSON.stringify(spec));
  return { root, spec, specPath, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export interface ChildRun {
  messages: ChildMessage[];
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  pid: number;
}

/** Spawns the real worker entry (own process group) and acks its result. Kills the group on timeout. */
export function runWorkerChild(
  specPath: string,
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; ack?: boolean; onMessage?: (m: ChildMessage, pid: number, send: (msg: unknown) => void) => void } = {},
): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, nodeArgsFor(srcPath('worker/main.ts'), ['--run-spec', specPath]), {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
      env: { ...process.env, ...opts.env },
    });
    const messages: ChildMessage[] = [];
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on('data', () => {});
    child.on('message', (m: ChildMessage) => {
      messages.push(m);
      opts.onMessage?.(m, child.pid!, (msg) => child.send(msg as object));
      if (m.type === 'result' && opts.ack !== false) child.send({ v: 1, type: 'result_ack' });
    });
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
      reject(new Error(`worker child timed out; stderr: ${stderr.slice(-2000)}`));
    }, opts.timeoutMs ?? 120_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ messages, exitCode: code, signal, stderr, pid: child.pid! });
    });
    child.on('error', reject);
  });
}

// ── `llem run` as a user runs it (issue 17's tests of silent errors) ─────────────────────────────

export const llemBin = fileURLToPath(new URL('../../bin/llem.js', import.meta.url));
export const commandFixture = fileURLToPath(new URL('../backends/fixtures/command-fixture.mjs', import.meta.url));

export interface StudyRunOutcome {
  code: number;
  stdout: string;
  stderr: string;
  studyDir: string;
  /** Run directories (runs/<run_id>) in run-id order, with what each left. */
  runs: Array<{ id: string; dir: string; result: RunResult | null; workerLog: string; powerCsv: string | null }>;
}

/** The environment variables that point llem at real or fake GPUs, removed so a test sets its own. */
const GPU_ENV = ['LLEM_NVML_LIB', 'LLEM_CUDA_LIB', 'LLEM_FAKE_GPU_SCRIPT', 'LLEM_FAKE_GPU_LOG', 'CUDA_VISIBLE_DEVICES'];

/** Writes `yaml` to `<root>/study.yaml` and runs `llem run … --yes --no-tui` on it. */
export async function runStudy(root: string, yaml: string, env: Record<string, string> = {}, timeoutMs = 240_000): Promise<StudyRunOutcome> {
  const studyPath = join(root, 'study.yaml');
  writeFileSync(studyPath, yaml);
  const out = join(root, 'out');
  const clean: NodeJS.ProcessEnv = { ...process.env };
  for (const k of GPU_ENV) delete clean[k];
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    execFile(process.execPath, [llemBin, 'run', studyPath, '--out', out, '--yes', '--no-tui'], { env: { ...clean, ...env }, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err && typeof (err as { code?: unknown }).code !== 'number') reject(err);
      else resolve({ code: err ? Number((err as { code: number }).code) : 0, stdout, stderr });
    });
  });
  const dirs = existsSync(out) ? readdirSync(out) : [];
  if (dirs.length !== 1) throw new Error(`expected one study dir in ${out}, got ${dirs.join(', ') || 'none'}; stderr: ${r.stderr.slice(-2000)}`);
  const studyDir = join(out, dirs[0]!);
  const runIds = readdirSync(join(studyDir, 'runs')).sort();
  const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : null);
  const runs = runIds.map((id) => {
    const dir = join(studyDir, 'runs', id);
    const resultText = read(join(dir, 'result.json'));
    return {
      id,
      dir,
      result: resultText === null ? null : runResultSchema.parse(JSON.parse(resultText)),
      workerLog: read(join(dir, 'worker.log')) ?? '',
      powerCsv: read(join(dir, 'power.csv')),
    };
  });
  return { ...r, studyDir, runs };
}

/** A one-config, one-cycle study of the command backend running the fixture program. */
export function commandStudy(opts: { n?: number; env?: Record<string, string>; extra?: string; cycles?: number; baseline?: string; validity?: string } = {}): string {
  const env = Object.entries(opts.env ?? {}).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`).join('\n');
  return [
    'name: silent',
    'backend: command',
    'model: fixture-model',
    `n: ${opts.n ?? 8}`,
    'max_new_tokens: 4',
    `baseline: ${opts.baseline ?? '{enabled: true, duration_seconds: 0.3, reuse_seconds: 0}'}`,
    'energy: {sample_interval_ms: 50, live_interval_ms: 200, rapl: false}',
    'command:',
    `  argv: [${JSON.stringify(process.execPath)}, ${JSON.stringify(commandFixture)}, good, '{records_file}']`,
    ...(env ? ['  env:', env.replace(/^ {6}/gm, '    ')] : []),
    `execution: {n_cycles: ${opts.cycles ?? 1}, cycle_order: sequential, config_gap_seconds: 0, cycle_gap_seconds: 0${opts.validity ? `, validity: ${opts.validity}` : ''}}`,
    opts.extra ?? '',
  ].join('\n') + '\n';
}

/**
 * For a test file that runs studies on the fake NVML: builds the fakes before the tests, gives
 * each study a temp root and the env pointing at a fake GPU scripted there, removes the roots after.
 */
export function fakeGpuStudies(): { root(): string; gpu(root: string, devices: FakeDevice[], extra?: Record<string, string>): Record<string, string> } {
  let libs: FakeLibs | null = null;
  const roots: string[] = [];
  before(async () => {
    await ensureAddonBuilt();
    libs = await buildFakeLibs();
  });
  after(() => {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });
  return {
    root() {
      const r = mkdtempSync(join(tmpdir(), 'llem-study-'));
      roots.push(r);
      return r;
    },
    gpu(root, devices, extra = {}) {
      const script = writeFakeScript(root, { devices });
      return { ...fakeGpuEnv(libs!, script.path), ...extra };
    },
  };
}
