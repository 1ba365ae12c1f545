// Shared by the pytorch tests: the Python that has torch, a config for builtin:tiny-torch, and
// process checks.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExperimentConfig } from '../../src/study/types.ts';

/** CI installs Debian's python3-torch into the system Python; LLEM_TEST_PYTHON overrides. */
export const TEST_PYTHON = process.env.LLEM_TEST_PYTHON ?? '/usr/bin/python3';

export function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

export function tinyConfig(overrides: Partial<ExperimentConfig> = {}, params: Record<string, unknown> = {}): ExperimentConfig {
  return {
    model: 'builtin:tiny-torch',
    backend: 'pytorch',
    precision: 'fp32',
    n: 4,
    max_new_tokens: 12,
    batch_size: 1,
    dataset: { kind: 'builtin', name: 'builtin' },
    seed: 7,
    warmup: { cv_threshold: 0.05, window: 3, min_prompts: 0, max_prompts: 0 },
    baseline: { enabled: false, duration_seconds: 0, reuse_seconds: 0 },
    energy: { sample_interval_ms: 100, live_interval_ms: 1000, rapl: false },
    ...overrides,
    params: { python: TEST_PYTHON, num_threads: 1, ...params },
  };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie is dead for our purposes (its parent has not reaped it yet).
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    return state !== 'Z';
  } catch {
    return true;
  }
}

export async function waitUntil(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function tempDir(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'llem-pytorch-test-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export const noopCtx = (runDir: string, lines: string[] = []) => ({
  runDir,
  signal: new AbortController().signal,
  log: (line: string) => {
    lines.push(line);
  },
});
