import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { nodeArgsFor } from '../../src/node-entry.ts';
import { serverArgs, overrideEnvName } from '../../src/backends/managed/flags.ts';
import { startManagedServer } from '../../src/backends/managed/index.ts';
import { ClassifiedError } from '../../src/backends/errors.ts';
import { vllmParamsSchema } from '../../src/backends/specs/vllm.ts';
import { sglangParamsSchema } from '../../src/backends/specs/sglang.ts';
import { trtllmParamsSchema } from '../../src/backends/specs/trtllm.ts';
import { llamaServerParamsSchema } from '../../src/backends/specs/llama-server.ts';
import { runResultSchema } from '../../src/results/schema.ts';
import { baseConfig, makeRun, runWorkerChild } from '../worker/helpers.ts';

const fixture = new URL('./fixtures/sse-server.ts', import.meta.url).pathname;
const fixtureCommand = JSON.stringify([process.execPath, ...nodeArgsFor(fixture)]);

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitDead(pid: number, ms = 15_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !alive(pid);
}

test('managed server argv: real flag names from the scoped params', () => {
  const vllm = serverArgs(
    'vllm',
    baseConfig({ model: 'meta-llama/Llama-3.1-8B', backend: 'vllm', precision: 'bf16', params: vllmParamsSchema.parse({ max_num_seqs: 64, enforce_eager: true, enable_prefix_caching: false, extra_args: ['--disable-log-requests'] }) }),
    8123,
  );
  assert.deepEqual(vllm.slice(0, 5), ['meta-llama/Llama-3.1-8B', '--host', '127.0.0.1', '--port', '8123']);
  const pair = (argv: string[], flag: string) => argv[argv.indexOf(flag) + 1];
  assert.equal(pair(vllm, '--dtype'), 'bfloat16');
  assert.equal(pair(vllm, '--max-num-seqs'), '64');
  assert.equal(pair(vllm, '--gpu-memory-utilization'), '0.9');
  assert.ok(vllm.includes('--enforce-eager'));
  assert.ok(vllm.includes('--no-enable-prefix-caching'));
  assert.equal(vllm.at(-1), '--disable-log-requests');
  assert.ok(!vllm.includes('--max-model-len'), 'null params are left to the server');

  const sg = serverArgs('sglang', baseConfig({ model: 'm', backend: 'sglang', precision: 'fp8', params: sglangParamsSchema.parse({ mem_fraction_static: 0.8, disable_cuda_graph: true }) }), 1);
  assert.equal(pair(sg, '--model-path'), 'm');
  assert.equal(pair(sg, '--mem-fraction-static'), '0.8');
  assert.equal(pair(sg, '--quantization'), 'fp8');
  assert.ok(sg.includes('--disable-cuda-graph'));

  const trt = serverArgs('trtllm', baseConfig({ model: 'm', backend: 'trtllm', params: trtllmParamsSchema.parse({ tp_size: 2 }) }), 1);
  assert.equal(pair(trt, '--tp_size'), '2');
  assert.equal(pair(trt, '--backend'), 'pytorch');

  const ls = serverArgs('llama-server', baseConfig({ model: '/m.gguf', backend: 'llama-server', batch_size: 4, params: llamaServerParamsSchema.parse({ mmap: false }) }), 1);
  assert.equal(pair(ls, '-m'), '/m.gguf');
  assert.equal(pair(ls, '-np'), '4', 'parallel slots default to batch_size');
  assert.ok(ls.includes('--no-mmap'));
  assert.equal(overrideEnvName('llama-server'), 'LLEM_LLAMA_SERVER_COMMAND');
});

// Answers 503 to everything; argv[1..] are the vllm flags, `--port P` among them.
const NEVER_READY_SERVER = `
const fs = require('fs');
fs.writeFileSync(process.env.FIXTURE_PID_FILE, String(process.pid));
const port = Number(process.argv[process.argv.indexOf('--port') + 1]);
require('http').createServer((q, s) => { s.writeHead(503); s.end('loading'); }).listen(port, '127.0.0.1');
`;


test('a server that never gets ready is a PreflightError after its timeout, and is killed', { timeout: 120_000 }, async () => {
  const run = makeRun(baseConfig({ backend: 'vllm', model: 'm', params: vllmParamsSchema.parse({}) }));
  try {
    const pidFile = join(run.root, 'server.pid');
    const t0 = Date.now();
    await assert.rejects(
      startManagedServer('vllm', run.spec.config, run.spec.run_dir, {
        // Plain node (no tsx) so that it is up well before the timeout even on a busy machine.
        env: {
          ...process.env,
          FIXTURE_PID_FILE: pidFile,
          [overrideEnvName('vllm')]: JSON.stringify([process.execPath, '-e', NEVER_READY_SERVER]),
        },
        startupTimeoutMs: 5000,
        pollMs: 200,
      }),
      (err: unknown) => err instanceof ClassifiedError && err.errorType === 'PreflightError' && /not ready after 5 s/.test(err.message),
    );
    // it waited for the startup timeout rather than failing at once (loose: timers and Date.now differ by their granularity)
    assert.ok(Date.now() - t0 >= 4000, `gave up after ${Date.now() - t0} ms`);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(await waitDead(pid), 'the unready server was killed');
  } finally {
    run.cleanup();
  }
});

test('a server that exits during startup is a PreflightError quoting its log', { timeout: 60_000 }, async () => {
  const run = makeRun(baseConfig({ backend: 'vllm', model: 'm', params: vllmParamsSchema.parse({}) }));
  try {
    const env = { ...process.env, [overrideEnvName('vllm')]: JSON.stringify([process.execPath, '-e', 'console.error("CUDA out of memory (scripted)"); process.exit(3)']) };
    await assert.rejects(
      startManagedServer('vllm', run.spec.config, run.spec.run_dir, { env, startupTimeoutMs: 30_000, pollMs: 100 }),
      (err: unknown) => err instanceof ClassifiedError && err.errorType === 'PreflightError' && /code 3/.test(err.message) && /scripted/.test(err.message),
    );
  } finally {
    run.cleanup();
  }
});

test('managed backend end to end: started, ready-polled, measured, stopped with the child', { timeout: 300_000 }, async () => {
  const config = baseConfig({ backend: 'vllm', model: 'fixture-model', n: 5, batch_size: 2, params: vllmParamsSchema.parse({ max_num_seqs: 8, startup_timeout_seconds: 60 }) });
  const run = makeRun(config);
  try {
    const pidFile = join(run.root, 'server.pid');
    const requests = join(run.root, 'requests.jsonl');
    const r = await runWorkerChild(run.specPath, {
      env: {
        [overrideEnvName('vllm')]: fixtureCommand,
        FIXTURE_SCRIPT: JSON.stringify({ ttftMs: 30, itlMs: 5, tokens: 6, usage: true, readyAfterMs: 1500 }),
        FIXTURE_PID_FILE: pidFile,
        FIXTURE_REQUESTS: requests,
      },
    });
    assert.equal(r.exitCode, 0, r.stderr);
    const result = runResultSchema.parse(JSON.parse(readFileSync(run.spec.result_path, 'utf8')));
    assert.equal(result.metrics.requests, 5);
    assert.equal(result.metrics.output_tokens, 30);
    // the scripted 30 ms first-token delay is inside TTFT (a loose bound: a timer may fire early by its granularity)
    assert.ok(result.metrics.ttft_ms.p50! >= 20, `ttft p50 ${result.metrics.ttft_ms.p50}`);
    const log = readFileSync(join(run.spec.run_dir, 'server.log'), 'utf8');
    assert.match(log, /--max-num-seqs","8"/);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(await waitDead(pid, 5000), 'no server survives the child');
    const bodies = readFileSync(requests, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { model: string; max_tokens: number });
    assert.ok(bodies.every((b) => b.model === 'fixture-model' && b.max_tokens === 8));
  } finally {
    run.cleanup();
  }
});

test('killing the child group mid-run leaves no server behind', { timeout: 300_000 }, async () => {
  const config = baseConfig({ backend: 'vllm', model: 'fixture-model', n: 200, params: vllmParamsSchema.parse({ startup_timeout_seconds: 60 }) });
  const run = makeRun(config);
  try {
    const pidFile = join(run.root, 'server.pid');
    const r = await runWorkerChild(run.specPath, {
      env: {
        [overrideEnvName('vllm')]: fixtureCommand,
        FIXTURE_SCRIPT: JSON.stringify({ ttftMs: 50, itlMs: 50, tokens: 20 }),
        FIXTURE_PID_FILE: pidFile,
      },
      onMessage: (m, childPid) => {
        if (m.type === 'phase' && m.phase === 'measure') process.kill(-childPid, 'SIGKILL');
      },
    });
    assert.equal(r.signal, 'SIGKILL');
    assert.ok(existsSync(pidFile));
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(await waitDead(pid, 5000), 'the server died with the child group');
  } finally {
    run.cleanup();
  }
});
