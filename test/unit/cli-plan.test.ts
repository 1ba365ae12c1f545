import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withStudy } from './study-helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(root, 'bin/llem.js');

function llem(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: root, timeout: 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('llem plan', { timeout: 300_000 }, () => {
  it('--json prints the stable form', async () => {
    const r = await llem(['plan', 'examples/quickstart.yaml', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    for (const key of ['study_hash', 'configs', 'cycles', 'runs', 'skipped', 'warnings', 'needs_confirmation', 'estimate', 'order']) assert.ok(key in j, key);
    assert.equal(j.configs, 4);
    assert.equal(j.runs, 8);
    assert.equal(j.order.length, 8);
    assert.deepEqual(Object.keys(j.order[0]).sort(), ['config_hash', 'cycle', 'index']);
    assert.ok(j.estimate.low_seconds <= j.estimate.total_seconds && j.estimate.total_seconds <= j.estimate.high_seconds);
  });

  it('--no-order leaves the order out', async () => {
    const r = await llem(['plan', 'examples/quickstart.yaml', '--json', '--no-order']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal('order' in JSON.parse(r.stdout), false);
  });

  it('the human form lists counts, skipped reasons, estimate and the confirmation note', async () => {
    const r = await llem(['plan', 'examples/multi-backend.yaml']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /19 configs × 3 cycles = 57 runs/);
    assert.match(r.stdout, /Skipped \(18/);
    assert.match(r.stdout, /llamacpp loads GGUF files/);
    assert.match(r.stdout, /Estimate: ~/);
    assert.match(r.stdout, /No confirmation needed \(57 ≤ 100 runs\)/);
  });

  it('bad input exits 2 with file:line:col', async () => {
    await withStudy({ 'bad.yaml': 'backend: llamacpp\nmodel: builtin:tiny-random\nbatch_sise: 2\n' }, async (dir) => {
      const r = await llem(['plan', join(dir, 'bad.yaml')]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /bad\.yaml:3:1: batch_sise: unknown field "batch_sise" \(did you mean "batch_size"\?\)/);
      assert.equal(r.stdout, '');
    });
  });
});
