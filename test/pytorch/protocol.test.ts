// The Python process against scripts that misbehave, and environments that cannot run it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ClassifiedError } from '../../src/backends/errors.ts';
import { DEFAULT_PYTORCH_PARAMS, environmentProblem, loadPytorch, startPython, type PytorchParams } from '../../src/backends/pytorch/index.ts';
import { PythonWorker } from '../../src/backends/pytorch/process.ts';
import { parsePythonLine, type PythonHello } from '../../src/backends/pytorch/protocol.ts';
import { nodeArgsFor } from '../../src/node-entry.ts';
import { TEST_PYTHON, fixture, isAlive, noopCtx, tempDir, tinyConfig, waitUntil } from './helpers.ts';

const GENERATE = {
  type: 'generate' as const,
  prompts: [{ prompt_index: 0, text: 'hi', messages: [] }],
  max_new_tokens: 4,
  greedy: true,
  seed: 0,
  batch_size: 1,
};
const LOAD = { type: 'load' as const, model: 'builtin:tiny-torch', precision: 'fp32', seed: 0, params: {} };

async function rejection(promise: Promise<unknown>): Promise<ClassifiedError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ClassifiedError, `a ClassifiedError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

async function startFixture(name: string, extra: Partial<Parameters<typeof PythonWorker.start>[0]> = {}): Promise<PythonWorker> {
  return PythonWorker.start({ python: TEST_PYTHON, scriptPath: fixture(name), killGraceMs: 500, ...extra });
}

describe('pytorch protocol parsing', () => {
  const table: Array<[string, string, RegExp | null]> = [
    ['valid progress', '{"v":1,"type":"progress","id":3,"tokens":10}', null],
    ['not JSON', 'Loading checkpoint shards: 100%', /not JSON/],
    ['unknown type', '{"v":1,"type":"telemetry","id":1}', /type/],
    ['wrong version', '{"v":2,"type":"progress","id":3,"tokens":10}', /^v:/],
    ['missing field', '{"v":1,"type":"synced","id":3,"edge":"start","t_ns":1}', /memory_peak_bytes/],
    ['bad edge', '{"v":1,"type":"synced","id":3,"edge":"middle","memory_peak_bytes":null,"t_ns":1}', /edge/],
  ];
  for (const [name, line, problem] of table) {
    test(name, () => {
      const parsed = parsePythonLine(line);
      if (problem === null) assert.ok(parsed.ok);
      else {
        assert.ok(!parsed.ok);
        assert.match(parsed.reason, problem);
      }
    });
  }
});

describe('pytorch Python process misbehaving', { timeout: 300_000 }, () => {
  test('a malformed line is a BackendError naming the line, and Python is stopped', async () => {
    const worker = await startFixture('malformed_line.py');
    await worker.request(LOAD);
    const err = await rejection(worker.request(GENERATE));
    assert.equal(err.errorType, 'BackendError');
    assert.match(err.message, /malformed protocol line 3 \(not JSON.*\): "Warning: something printed this to stdout"/);
    await worker.close();
    assert.ok(!isAlive(worker.pid!));
    // Later commands fail with the same error instead of hanging.
    assert.equal((await rejection(worker.request(GENERATE))).message, err.message);
  });

  test('valid JSON of the wrong shape is a BackendError naming the field', async () => {
    const worker = await startFixture('wrong_shape.py');
    await worker.request(LOAD);
    const err = await rejection(worker.request(GENERATE));
    assert.equal(err.errorType, 'BackendError');
    assert.match(err.message, /malformed protocol line 3 \(record\.prompt_sha256: Required\)/);
    await worker.close();
  });

  test('an uncaught Python exception: BackendError with the traceback from stderr', async () => {
    const lines: string[] = [];
    const worker = await startFixture('crash_on_load.py', { log: (l) => lines.push(l) });
    const err = await rejection(worker.request(LOAD));
    assert.equal(err.errorType, 'BackendError');
    assert.match(err.message, /exited with code 1 during load/);
    assert.match(err.message, /RuntimeError: fixture: CUDA error: device-side assert triggered/);
    assert.ok(lines.some((l) => l.startsWith('python: Traceback')), 'stderr lines go to the log');
    await worker.close();
  });

  test('an exception inside worker.py is reported with its type, and the process keeps serving', async () => {
    const worker = await PythonWorker.start({ python: TEST_PYTHON });
    try {
      const early = await rejection(worker.request(GENERATE));
      assert.equal(early.errorType, 'BackendError');
      assert.match(early.message, /generate before load/);
      const bad = await rejection(worker.request({ ...LOAD, model: 'builtin:tiny-torch@layers=two' }));
      assert.equal(bad.errorType, 'PreflightError');
      assert.match(bad.message, /layers="two" is not a number/);
      const loaded = await worker.request({ ...LOAD, params: { num_threads: 1 } });
      assert.equal(loaded.type, 'loaded');
    } finally {
      await worker.close();
    }
    assert.deepEqual(worker.exitStatus, { code: 0, signal: null });
  });

  test('a hang during generate: BackendError after the silence timeout, Python killed', async () => {
    const worker = await startFixture('hang_on_generate.py', { silenceTimeoutMs: 1500 });
    await worker.request(LOAD);
    const err = await rejection(worker.request(GENERATE));
    assert.equal(err.errorType, 'BackendError');
    assert.match(err.message, /sent nothing for 1\.5 s during generate/);
    await worker.close();
    await waitUntil('hung python to die', () => !isAlive(worker.pid!));
  });

  test('an abort during generate: BackendError naming the abort, Python stopped', async () => {
    const worker = await startFixture('hang_on_generate.py');
    await worker.request(LOAD);
    const controller = new AbortController();
    setTimeout(() => controller.abort('user skipped the run'), 300);
    const err = await rejection(worker.request(GENERATE, undefined, controller.signal));
    assert.equal(err.errorType, 'BackendError');
    assert.match(err.message, /generate aborted \(user skipped the run\)/);
    await worker.close();
    await waitUntil('aborted python to die', () => !isAlive(worker.pid!));
  });

  test('a script that never says hello: PreflightError after the hello timeout', async () => {
    const started = Date.now();
    const err = await rejection(startFixture('silent.py', { helloTimeoutMs: 1500 }));
    assert.equal(err.errorType, 'PreflightError');
    assert.match(err.message, /said nothing within 2 s of starting \(no hello\)/);
    assert.ok(Date.now() - started < 60_000);
  });

  test('a script of another protocol version: PreflightError', async () => {
    const err = await rejection(startFixture('wrong_protocol.py'));
    assert.equal(err.errorType, 'PreflightError');
    assert.match(err.message, /speaks protocol 99, this llem speaks 1/);
  });

  test('ignoring SIGTERM and shutdown: SIGKILL after the grace period, its own child killed too', async () => {
    const worker = await startFixture('ignores_sigterm.py');
    const loaded = await worker.request(LOAD);
    const grandchild = Number(loaded.type === 'loaded' ? loaded.model_path : NaN);
    assert.ok(isAlive(worker.pid!) && isAlive(grandchild));
    const exit = await worker.close();
    assert.equal(exit.signal, 'SIGKILL');
    await waitUntil('python and its child to be gone', () => !isAlive(worker.pid!) && !isAlive(grandchild));
  });
});

describe('pytorch Python dies with the measuring child', { timeout: 300_000 }, () => {
  /** Starts the fixture child in its own process group (as the runner does); returns its pids. */
  async function startChild(script: string): Promise<{ childPid: number; pythonPid: number; grandchild: number | null; exited: Promise<void> }> {
    const child = spawn(process.execPath, nodeArgsFor(fixture('child-with-python.ts'), [TEST_PYTHON, script]), {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.resume();
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const first = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout! });
      rl.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`fixture child exited with ${code} before reporting`)));
    });
    const report = JSON.parse(first) as { python_pid: number; model_path: string | null };
    const grandchild = script.endsWith('ignores_sigterm.py') ? Number(report.model_path) : null;
    return { childPid: child.pid!, pythonPid: report.python_pid, grandchild, exited };
  }

  test('killing the child\'s process group (SIGTERM, then SIGKILL) leaves nothing, even a Python ignoring SIGTERM', async () => {
    const { childPid, pythonPid, grandchild, exited } = await startChild(fixture('ignores_sigterm.py'));
    assert.ok(isAlive(pythonPid) && isAlive(grandchild!));
    process.kill(-childPid, 'SIGTERM');
    await exited;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(isAlive(pythonPid), 'SIGTERM alone does not stop this Python (it ignores it)');
    process.kill(-childPid, 'SIGKILL');
    await waitUntil('every process of the group to be gone', () => !isAlive(pythonPid) && !isAlive(grandchild!));
  });

  test('the real worker.py exits by itself when the child is SIGKILLed alone (no group kill)', async () => {
    const { childPid, pythonPid, exited } = await startChild(fixture('../../../src/backends/pytorch/worker.py'));
    try {
      process.kill(childPid, 'SIGKILL');
      await exited;
      await waitUntil('orphaned worker.py to exit', () => !isAlive(pythonPid), 30_000);
    } finally {
      try {
        process.kill(-childPid, 'SIGKILL');
      } catch {
        // group already empty
      }
    }
  });
});

describe('pytorch preflight: broken environments fail in seconds with the reason', { timeout: 300_000 }, () => {
  test('a Python that does not exist', async () => {
    const dir = tempDir();
    try {
      const started = Date.now();
      const err = await rejection(loadPytorch(tinyConfig({}, { python: '/nonexistent/bin/python3' }), noopCtx(dir.path)));
      assert.equal(err.errorType, 'PreflightError');
      assert.match(err.message, /\/nonexistent\/bin\/python3.*was not found/);
      assert.ok(Date.now() - started < 30_000);
    } finally {
      dir.remove();
    }
  });

  test('a Python without torch', async () => {
    const dir = tempDir();
    try {
      const started = Date.now();
      const env = { ...process.env, PYTHONPATH: fixture('no_torch') };
      const err = await rejection(startPython(tinyConfig().params, tinyConfig(), { env }));
      assert.equal(err.errorType, 'PreflightError');
      assert.match(err.message, /torch is not importable \(ImportError: No module named 'torch' \(test fixture\)\)/);
      assert.match(err.message, new RegExp(`set pytorch.python`));
      assert.ok(Date.now() - started < 60_000);
    } finally {
      dir.remove();
    }
  });

  test('torch_compile and sdpa need torch >= 2: PreflightError naming the version on an older torch', async () => {
    const dir = tempDir();
    try {
      const { worker } = await startPython(tinyConfig().params, tinyConfig());
      const torchMajor = Number(worker.hello.torch!.split('.')[0]);
      await worker.close();
      for (const params of [{ torch_compile: true }, { attn_implementation: 'sdpa' }]) {
        const attempt = loadPytorch(tinyConfig({ max_new_tokens: 2 }, params), noopCtx(dir.path));
        if (torchMajor < 2) {
          const err = await rejection(attempt);
          assert.equal(err.errorType, 'PreflightError');
          assert.match(err.message, /needs torch >= 2\.0; this Python has torch 1\./);
        } else {
          const { session } = await attempt;
          const [record] = await session.run({ prompts: [{ index: 0, text: 'hi', messages: [] }], max_new_tokens: 2, concurrency: 1, seed: 1, greedy: true });
          assert.equal(record!.output_tokens, 2);
          await session.dispose();
        }
      }
    } finally {
      dir.remove();
    }
  });

  test('a Hugging Face model without transformers installed: PreflightError before any load', async () => {
    const dir = tempDir();
    const lines: string[] = [];
    try {
      const err = await rejection(loadPytorch(tinyConfig({ model: 'Qwen/Qwen2.5-0.5B-Instruct' }), noopCtx(dir.path, lines)));
      assert.equal(err.errorType, 'PreflightError');
      // The environment this test runs in has no transformers (Debian's python3-torch only); if
      // one day it does, the model is still missing from the cache: both are the right answer.
      assert.match(err.message, /needs transformers, which .* cannot import|is not in the Hugging Face cache/);
    } finally {
      dir.remove();
    }
  });

  // What the child checks from hello before any model loads: a table over fake hellos, so the
  // answers do not depend on what this machine has installed.
  const hello: PythonHello = {
    v: 1, type: 'hello', protocol: 1, pid: 1, python: '3.11.2', python_executable: '/usr/bin/python3',
    torch: '2.4.0', torch_error: null, transformers: '4.44.0', transformers_error: null, accelerate: null,
    bitsandbytes: null, flash_attn: null, cuda_available: true, cuda_version: '12.4', cuda_device_count: 1,
    cuda_devices: ['NVIDIA H200'], monotonic_ns: 0,
  };
  const table: Array<[string, Partial<PythonHello>, { model?: string; precision?: string }, Partial<PytorchParams>, RegExp | null]> = [
    ['HF model, all present', {}, { model: 'org/m' }, {}, null],
    ['HF model, no transformers', { transformers: null, transformers_error: "ModuleNotFoundError: No module named 'transformers'" }, { model: 'org/m' }, {}, /needs transformers, which \/usr\/bin\/python3 cannot import \(ModuleNotFoundError/],
    ['tiny-torch needs no transformers', { transformers: null }, {}, {}, null],
    ['int8 without bitsandbytes', {}, { model: 'org/m', precision: 'int8' }, {}, /precision int8 needs bitsandbytes/],
    ['int4 with bitsandbytes', { bitsandbytes: '0.43.0' }, { model: 'org/m', precision: 'int4' }, {}, null],
    ['int4 with bitsandbytes but no CUDA', { bitsandbytes: '0.43.0', cuda_available: false }, { model: 'org/m', precision: 'int4' }, {}, /needs a CUDA device/],
    ['flash_attention_2 without flash_attn', {}, { model: 'org/m', precision: 'bf16' }, { attn_implementation: 'flash_attention_2' }, /needs the flash_attn package/],
    ['cuda:0 without CUDA', { cuda_available: false }, {}, { device_map: 'cuda:0' }, /device_map is "cuda:0" but torch sees no CUDA device/],
  ];
  for (const [name, helloChange, configChange, paramsChange, problem] of table) {
    test(`environment check: ${name}`, () => {
      const found = environmentProblem(
        { ...hello, ...helloChange },
        { ...DEFAULT_PYTORCH_PARAMS, ...paramsChange },
        { model: 'builtin:tiny-torch', precision: 'fp16', ...configChange },
      );
      if (problem === null) assert.equal(found, null);
      else assert.match(found ?? '', problem);
    });
  }
});
