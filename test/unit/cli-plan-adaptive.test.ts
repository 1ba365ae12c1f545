// `llem plan` through the real CLI: n_cycles: auto shown with its range of runs, and the estimate's
// source (heuristic, then history) read from a temp LLEM_STATE_DIR, never the user's.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { appendHistoryRecord } from '../../src/history/store.ts';
import { planStudy } from '../../src/study/plan.ts';
import { CPU_HERE, makeRecord } from './history-helpers.ts';
import { withStudy } from './study-helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(root, 'bin/llem.js');

function llem(args: string[], stateDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: root, timeout: 120_000, env: { ...process.env, LLEM_STATE_DIR: stateDir } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const yaml = 'name: adaptive\nbackend: llamacpp\nmodel: builtin:tiny-random\nn: 4\nsweep:\n  batch_size: [1, 2]\nexecution:\n  n_cycles: auto\n  target:\n    metric: output_tokens_per_s\n    ci_half_width: "3%"\n';

describe('llem plan with n_cycles: auto and history', { timeout: 240_000 }, () => {
  it('shows the target, the range of runs and where the estimate comes from', async () => {
    const state = mkdtempSync(join(tmpdir(), 'llem-state-'));
    try {
      await withStudy({ 'study.yaml': yaml }, async (dir) => {
        const study = join(dir, 'study.yaml');
        const first = await llem(['plan', study], state);
        assert.equal(first.code, 0, first.stderr);
        assert.match(first.stdout, /n_cycles: auto — each config runs 3–12 cycles, until the interval of output_tokens_per_s is within ±3 % of the mean/);
        assert.match(first.stdout, /at most 24 runs/);
        assert.match(first.stdout, /runs expected: ~\d+ \(range 6 – 24\)/);
        assert.match(first.stdout, /\[from heuristic\]/);
        assert.match(first.stdout, /pilot assumption of a 3 % per-cycle CV/);

        // history of this machine for one of the two configs (its key names no knob the other shares)
        const plan = await planStudy(study, { gpuFreeMemoryBytes: null });
        const hash = plan.configAt(0).config_hash;
        const key = { ...makeRecord().key, backend: 'elsewhere', model: 'elsewhere' };
        for (const v of [1000, 1010, 990, 1005]) {
          assert.equal(appendHistoryRecord(makeRecord({ machine: CPU_HERE, config_hash: hash, key, metrics: { output_tokens_per_s: v } }), join(state, 'history')).recorded, true);
        }
        const second = await llem(['plan', study, '--json'], state);
        assert.equal(second.code, 0, second.stderr);
        const j = JSON.parse(second.stdout);
        assert.equal(j.estimate.source, 'mixed');
        assert.equal(j.max_runs, 24);
        assert.equal(j.target.metric, 'output_tokens_per_s');
        const byHash = new Map(j.estimate.per_config.map((c: { config_hash: string }) => [c.config_hash, c]));
        assert.equal((byHash.get(hash) as { source: string }).source, 'history');
        assert.match((byHash.get(hash) as { match: string }).match, /same config on this machine \(4 runs\)/);
        assert.equal((byHash.get(hash) as { cycles: { expected: number } }).cycles.expected, 3, 'a quiet history: min_cycles');
      });
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});
