// A request-rate sweep through the real CLI, runner and worker children against a scripted
// OpenAI-compatible server on 127.0.0.1 with one engine slot (40 ms per request: it keeps up to
// 25 requests/s). Rates below that are not flagged; rates above it are `over_saturated`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startQueueServer } from './fixtures/queue-server.ts';
import { runResultSchema } from '../../src/results/schema.ts';

const llemBin = fileURLToPath(new URL('../../bin/llem.js', import.meta.url));
const run = promisify(execFile);

test('a request-rate sweep flags over_saturated exactly at the rates the server cannot keep up with', { timeout: 300_000 }, async () => {
  const { server, port, served } = await startQueueServer(40);
  const root = mkdtempSync(path.join(os.tmpdir(), 'llem-rate-'));
  try {
    const yaml = path.join(root, 'study.yaml');
    writeFileSync(
      yaml,
      [
        'name: rate-sweep',
        'backend: openai',
        'model: queue-fixture',
        `openai: {base_url: "http://127.0.0.1:${port}/v1", api_key_env: null}`,
        'n: 24',
        'max_new_tokens: 4',
        'batch_size: 64',
        'arrival: constant',
        'warmup: {max_prompts: 0, min_prompts: 0}',
        'baseline: {enabled: false}',
        'energy: {rapl: false}',
        'sweep:',
        '  request_rate: [4, 8, 60, 120]',
        'execution: {n_cycles: 1, cycle_order: sequential, config_gap_seconds: 0, cycle_gap_seconds: 0}',
      ].join('\n') + '\n',
    );
    const out = path.join(root, 'out');
    const r = await run(process.execPath, [llemBin, 'run', yaml, '--out', out, '--yes', '--no-tui'], {
      encoding: 'utf8',
      env: { ...process.env, CI: 'true', LLEM_NVML_LIB: '/nonexistent/libnvidia-ml.so.1' },
      timeout: 280_000,
    }).catch((err: { code: number; stdout: string; stderr: string }) => err);
    const studyDir = path.join(out, readdirSync(out)[0]!);
    const runs = readdirSync(path.join(studyDir, 'runs'));
    const results = runs.map((d) => runResultSchema.parse(JSON.parse(readFileSync(path.join(studyDir, 'runs', d, 'result.json'), 'utf8'))));
    assert.equal(results.length, 4, `${JSON.stringify(r).slice(0, 2000)}`);
    assert.equal(served(), 4 * 24, 'bounded: exactly n requests per run, no warmup');
    const byRate = new Map(results.map((x) => [x.config.request_rate, x]));
    for (const rate of [4, 8, 60, 120]) {
      const res = byRate.get(rate)!;
      const a = res.metrics.arrival!;
      assert.equal(a.offered_rate_per_s, rate);
      assert.equal(a.arrival, 'constant');
      assert.ok(Math.abs(a.scheduled_rate_per_s! - rate) < 1e-6 * rate, `constant schedule at ${a.scheduled_rate_per_s}`);
      const flagged = res.flags.some((f) => f.code === 'over_saturated');
      if (rate < 25) {
        assert.equal(a.over_saturated, false, `rate ${rate}: achieved ${a.achieved_rate_per_s}`);
        assert.equal(flagged, false);
        assert.ok(a.achieved_rate_per_s! > 0.95 * rate);
      } else {
        assert.equal(a.over_saturated, true, `rate ${rate}: achieved ${a.achieved_rate_per_s}`);
        assert.ok(flagged);
        // One slot of 40 ms: departures at most 25 per second.
        assert.ok(a.achieved_rate_per_s! <= 26, `achieved ${a.achieved_rate_per_s}`);
      }
      // batch_size 64 never binds here: requests are sent on schedule, the queue is the server's.
      assert.ok(a.queueing_ms.p95! < 250, `queueing p95 ${a.queueing_ms.p95} ms`);
    }
    // The flag reaches the results table as a short code with its legend.
    const table = await run(process.execPath, [llemBin, 'results', studyDir], { encoding: 'utf8', env: { ...process.env, COLUMNS: '200' } });
    assert.match(table.stdout, /OS×1/);
    assert.match(table.stdout, /OS over_saturated: .*achieved request rate fell more than 5 % short/);
  } finally {
    server.close();
    rmSync(root, { recursive: true, force: true });
  }
});
