// Shared by the worker and backend tests: a run directory with run.json, and a parent that spawns
// the real child entry with an IPC channel, records its messages and acks its result.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
