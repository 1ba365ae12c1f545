// Builders of run-history records, and a temp LLEM_STATE_DIR so no test touches the user's own.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HistoryRecord } from '../../src/history/schema.ts';
import type { Machine } from '../../src/history/machine.ts';

/** This machine as `currentMachine()` sees it here (no NVML in the test environment). */
export const CPU_HERE: Machine = { kind: 'cpu', gpu: null, driver: null, cpu: cpus()[0]?.model ?? null };
export const H100: Machine = { kind: 'gpu', gpu: 'NVIDIA H100', driver: '550.54', cpu: 'Fixture CPU' };

export function makeRecord(over: Partial<HistoryRecord> = {}): HistoryRecord {
  return {
    v: 1,
    recorded_at: '2026-01-01T00:00:00.000Z',
    machine: CPU_HERE,
    config_hash: 'aaaaaaaaaaaaaaaa',
    study_hash: 'ssssssssssssssss',
    run_id: '0000-aaaaaaaa-c1',
    key: {
      backend: 'llamacpp',
      model: 'builtin:tiny-random',
      precision: 'auto',
      batch_size: 1,
      max_new_tokens: 16,
      n: 8,
      dataset: 'builtin:default',
      params_hash: '0000000000000000',
      baseline_seconds: 2,
      warmup_max_prompts: 4,
    },
    run_wall_s: 1.2,
    phases_s: { startup: 0.25, baseline: 0, load: 0.7, warmup: 0.1, measure: 0.15 },
    baseline_measured: null,
    warmup_prompts: 4,
    output_tokens: 128,
    requests: 8,
    output_tokens_per_s: 900,
    metrics: { energy_per_output_token_j: null, output_tokens_per_s: 900 },
    flags: [],
    ...over,
  };
}

/** Points LLEM_STATE_DIR at a fresh temp dir for the rest of this test file's process. */
export function isolateStateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'llem-state-'));
  process.env.LLEM_STATE_DIR = dir;
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
