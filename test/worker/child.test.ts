import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { runChild, type ChildLink } from '../../src/worker/child.ts';
import { runResultSchema } from '../../src/results/schema.ts';
import type { Backend, RequestRecord, Workload } from '../../src/backends/types.ts';
import type { EnergyMeter, EnergyWindow, OpenMeterOptions } from '../../src/measure/types.ts';
import type { ChildMessage } from '../../src/runner/protocol.ts';
import { backendError } from '../../src/backends/errors.ts';
import { baseConfig, makeRun, runWorkerChild } from './helpers.ts';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, writeFakeScript } from '../native/fake.ts';

function windowOf(over: Partial<EnergyWindow>): EnergyWindow {
  return {
    window_s: 10,
    energy_j: null,
    energy_method: null,
    energy_method_reason: null,
    energy_polled_j: null,
    energy_divergence: null,
    unavailable_reason: null,
    power_mean_w: null,
    power_peak_w: null,
    temperature_start_c: null,
    temperature_end_c: null,
    temperature_max_c: null,
    memory_peak_bytes: null,
    throttle_s: { thermal: 0, power_cap: 0, power_brake: 0 },
    throttle_fraction: { thermal: 0, power_cap: 0, power_brake: 0 },
    samples: 100,
    counter_reset: false,
    flags: [],
    per_device: [],
    edges: null,
    ...over,
  };
}

/** A meter whose successive windows are scripted (baseline, load, measure). */
function scriptedMeter(windows: EnergyWindow[], opened: OpenMeterOptions[]) {
  return async (opts: OpenMeterOptions): Promise<EnergyMeter> => {
    opened.push(opts);
    return {
      devices: ['GPU-fake'],
      unavailableReason: null,
      async start() {},
      drainLive: () => [{ t_ms: 1, power_w: 300, temp_c: 50 }],
      energySoFarJ: () => 1,
      async stop() {
        const w = windows.shift();
        if (!w) throw new Error('no scripted window left');
        return w;
      },
      close() {},
      async foreignProcesses() {
        return { processes: [{ pid: 4242, gpu_uuid: 'GPU-fake', memory_bytes: 2 ** 30 }], memory_bytes: 2 ** 30, gpu_util_pct: 0 };
      },
      async environment() {
        return {
          driver_version: '550.1',
          cuda_driver_version: '12.4',
          gpus: [
            {
              index: 0, uuid: 'GPU-fake', name: 'Fake', pci_bus_id: null, memory_total_bytes: 1, memory_used_bytes: 1,
              power_limit_w: 700, power_limit_default_w: 700, persistence_mode: false, mig_mode: false,
              sm_clock_mhz: 1, mem_clock_mhz: 1, temperature_c: 40, foreign_processes: [{ pid: 4242, memory_bytes: 2 ** 30 }],
            },
          ],
        };
      },
    };
  };
}

/** Each request: 50 output tokens, TTFT 100 ms, ITL 10 ms (49 gaps), end at the last token. */
function scriptedBackend(seen: Workload[], opts: { failAll?: boolean; throwOnLoad?: boolean } = {}): Backend {
  return {
    name: 'scripted',
    async load() {
      if (opts.throwOnLoad) throw backendError('scripted load failure');
      return {
        session: {
          async run(workload, onRequest) {
            seen.push(workload);
            const out: RequestRecord[] = [];
            workload.prompts.forEach((p, i) => {
              const start = 1000 * i;
              const first = start + 100;
              const times = Array.from({ length: 49 }, (_, k) => first + 10 * (k + 1));
              const r: RequestRecord = {
                prompt_index: p.index, input_tokens: 20, output_tokens: 50, start_ms: start, first_token_ms: first,
                first_content_token_ms: first, token_times_ms: times, end_ms: times[48]!, error: opts.failAll ? 'boom' : null,
              };
              out.push(r);
              onRequest?.(r);
            });
            return out;
          },
          async dispose() {},
        },
        info: { backend_version: '9.9', model_path: null, model_builtin: false },
      };
    },
  };
}

function recordingLink(ack = true): ChildLink & { messages: ChildMessage[] } {
  const messages: ChildMessage[] = [];
  return {
    messages,
    async send(m) {
      messages.push(m);
    },
    async reportResult(path) {
      messages.push({ v: 1, type: 'result', path });
      return ack;
    },
  };
}

test('whole run with a scripted meter: energy, adjusted energy, per token and flags as hand-computed', async () => {
  const config = baseConfig({ n: 4, warmup: { cv_threshold: 0.05, window: 3, min_prompts: 3, max_prompts: 5 }, baseline: { enabled: true, duration_seconds: 0.05, reuse_seconds: 0 } });
  const run = makeRun(config);
  try {
    const opened: OpenMeterOptions[] = [];
    const meterWindows = [
      windowOf({ window_s: 0.05, power_mean_w: 100, energy_j: 5 }), // baseline
      windowOf({ window_s: 2, energy_j: 400 }), // load
      windowOf({ window_s: 10, energy_j: 3000, energy_polled_j: 2940, energy_divergence: 0.02, energy_method: 'counter', power_mean_w: 300, power_peak_w: 350 }),
    ];
    const seen: Workload[] = [];
    const link = recordingLink();
    const outcome = await runChild(run.spec, { link, openMeter: scriptedMeter(meterWindows, opened), loadBackend: async () => scriptedBackend(seen) });
    assert.equal(outcome.error, null);
    assert.equal(outcome.exitCode, 0);
    const result = runResultSchema.parse(JSON.parse(readFileSync(run.spec.result_path, 'utf8')));
    const m = result.metrics;
    // Hand-computed: 4 requests × 50 tokens = 200 tokens; baseline 100 W over a 10 s window.
    assert.equal(m.energy_j, 3000);
    assert.equal(m.baseline_power_w, 100);
    assert.equal(m.energy_adjusted_j, 3000 - 100 * 10);
    assert.equal(m.output_tokens, 200);
    assert.equal(m.energy_per_output_token_j, 3000 / 200);
    assert.equal(m.energy_per_output_token_adjusted_j, 2000 / 200);
    assert.equal(m.energy_per_request_j, 750);
    assert.equal(m.energy_per_request_adjusted_j, 500);
    assert.equal(m.load_energy_j, 400);
    assert.equal(m.output_tokens_per_s, 20);
    assert.equal(m.ttft_ms.p50, 100);
    assert.equal(m.itl_ms.mean, 10);
    assert.equal(m.tpot_ms.mean, 10);
    assert.equal(m.e2e_ms.mean, 590);
    // Identical scripted latencies: CV 0 converges as soon as min_prompts are done.
    assert.equal(m.warmup_converged, true);
    assert.equal(m.warmup_prompts, 3);
    const codes = result.flags.map((f) => f.code).sort();
    assert.deepEqual(codes, ['foreign_gpu_process', 'persistence_mode_off']);
    assert.equal(result.environment.gpus[0]!.uuid, 'GPU-fake');
    assert.equal(result.environment.nvml.driver_version, '550.1');
    assert.equal(opened.at(-1)!.powerCsvPath, run.spec.power_csv_path);
    // Messages: phases in order, progress, power, result last.
    const phases = link.messages.filter((x) => x.type === 'phase').map((x) => (x as { phase: string }).phase);
    assert.deepEqual(phases, ['preflight', 'baseline', 'load', 'warmup', 'measure', 'teardown']);
    assert.equal(link.messages.at(-1)!.type, 'result');
    assert.equal(seen.at(-1)!.prompts.length, 4);
    assert.equal(readFileSync(`${run.spec.run_dir}/requests.jsonl`, 'utf8').trim().split('\n').length, 4);
    assert.deepEqual(readdirSync(run.spec.run_dir).filter((f) => f.endsWith('.tmp')), [], 'no temp file left');
  } finally {
    run.cleanup();
  }
});

test('a failing backend gives a structured error with the phase, and no result file', async () => {
  const run = makeRun(baseConfig());
  try {
    const link = recordingLink();
    const outcome = await runChild(run.spec, {
      link,
      openMeter: scriptedMeter([windowOf({}), windowOf({})], []),
      loadBackend: async () => scriptedBackend([], { throwOnLoad: true }),
    });
    assert.equal(outcome.exitCode, 1);
    const err = link.messages.find((x) => x.type === 'error') as Extract<ChildMessage, { type: 'error' }>;
    assert.equal(err.error_type, 'BackendError');
    assert.equal(err.phase, 'load');
    assert.match(err.message, /scripted load failure/);
    assert.ok((err.stack ?? '').length <= 8192);
    assert.ok(!existsSync(run.spec.result_path));
  } finally {
    run.cleanup();
  }
});

test('every measured request failing is a BackendError in the measure phase', async () => {
  const run = makeRun(baseConfig({ warmup: { cv_threshold: 0.05, window: 3, min_prompts: 0, max_prompts: 0 } }));
  try {
    const link = recordingLink();
    const outcome = await runChild(run.spec, {
      link,
      openMeter: scriptedMeter([windowOf({ power_mean_w: 1 }), windowOf({}), windowOf({})], []),
      loadBackend: async () => scriptedBackend([], { failAll: true }),
    });
    assert.equal(outcome.exitCode, 1);
    assert.equal(outcome.error?.phase, 'measure');
    assert.match(outcome.error?.message ?? '', /every measured request failed/);
  } finally {
    run.cleanup();
  }
});

test('the real child on tiny-random without NVML: exit 0 after ack, energy null with a reason, flags', { timeout: 300_000 }, async () => {
  const run = makeRun(baseConfig({ n: 3 }));
  try {
    const r = await runWorkerChild(run.specPath, { env: { LLEM_NVML_LIB: '/nonexistent/libnvidia-ml.so.1' } });
    assert.equal(r.exitCode, 0, r.stderr);
    const types = r.messages.map((m) => m.type);
    assert.equal(types[0], 'hello');
    assert.ok(types.includes('heartbeat'));
    assert.equal(types.filter((t) => t === 'result').length, 1);
    const result = runResultSchema.parse(JSON.parse(readFileSync(run.spec.result_path, 'utf8')));
    assert.equal(result.metrics.energy_j, null);
    assert.ok((result.metrics.energy_unavailable_reason ?? '').length > 0, 'a reason, never 0 J');
    assert.equal(result.metrics.output_tokens, 3 * 8);
    assert.equal(result.model.builtin, true);
    assert.match(result.model.file_hash ?? '', /^sha256:[0-9a-f]{64}$/);
    const codes = result.flags.map((f) => f.code);
    for (const c of ['energy_unavailable', 'short_window', 'builtin_model']) assert.ok(codes.includes(c as never), c);
  } finally {
    run.cleanup();
  }
});

test('the real child without an ack exits non-zero', { timeout: 300_000 }, async () => {
  const run = makeRun(baseConfig({ n: 1, warmup: { cv_threshold: 0.5, window: 2, min_prompts: 0, max_prompts: 0 }, baseline: { enabled: false, duration_seconds: 0, reuse_seconds: 0 } }));
  try {
    // The child waits 30 s for the ack; answer with nothing and let it give up.
    const r = await runWorkerChild(run.specPath, { ack: false, timeoutMs: 200_000 });
    assert.notEqual(r.exitCode, 0);
    assert.ok(r.messages.some((m) => m.type === 'result'));
  } finally {
    run.cleanup();
  }
});

test('the whole child under the fake NVML: counter energy of a constant 250 W trace, baseline, per token, flags', { timeout: 600_000 }, async () => {
  await ensureAddonBuilt();
  const libs = await buildFakeLibs();
  const config = baseConfig({ n: 3, baseline: { enabled: true, duration_seconds: 0.5, reuse_seconds: 0 } });
  const run = makeRun(config);
  try {
    const script = writeFakeScript(run.root, {
      devices: [{ power: [[0, 250_000]], temp: [[0, 45]], persistence: false, processes: [{ pid: 999_999, bytes: 3 * 2 ** 30 }] }],
    });
    const r = await runWorkerChild(run.specPath, { env: { ...fakeGpuEnv(libs, script.path), CUDA_VISIBLE_DEVICES: '' } });
    assert.equal(r.exitCode, 0, r.stderr);
    const result = runResultSchema.parse(JSON.parse(readFileSync(run.spec.result_path, 'utf8')));
    const m = result.metrics;
    // Hand-computed: the fake's counter is the exact integral of 250 W, so energy = 250 × window.
    assert.ok(m.energy_j !== null);
    assert.ok(Math.abs(m.energy_j - 250 * m.window_s) <= 0.01 * 250 * m.window_s + 0.002, `energy ${m.energy_j} vs 250 W × ${m.window_s} s`);
    // Counter energy ÷ duration: the counter is whole mJ (≤ 2 mW over 0.5 s) and read on other clocks.
    assert.ok(Math.abs(m.baseline_power_w! - 250) < 0.05, `baseline ${m.baseline_power_w}`);
    assert.equal(result.baseline?.method, 'counter');
    assert.equal(result.baseline?.source, 'measured');
    assert.ok(Math.abs(m.energy_adjusted_j! - (m.energy_j - m.baseline_power_w! * m.window_s)) < 1e-9);
    assert.equal(m.energy_per_output_token_j, m.energy_j / m.output_tokens);
    assert.equal(m.output_tokens, 3 * 8);
    const codes = result.flags.map((f) => f.code);
    for (const c of ['foreign_gpu_process', 'persistence_mode_off', 'short_window', 'builtin_model']) assert.ok(codes.includes(c as never), `flag ${c} in ${codes}`);
    assert.ok(!codes.includes('energy_unavailable'));
    assert.equal(result.environment.gpus.length, 1);
    assert.ok(r.messages.some((x) => x.type === 'power'), 'live power samples sent');
  } finally {
    run.cleanup();
  }
});

test('a shutdown from the parent stops the run: UserInterrupted with the phase, non-zero exit', { timeout: 300_000 }, async () => {
  const run = makeRun(baseConfig({ n: 2000, max_new_tokens: 32, warmup: { cv_threshold: 0.5, window: 2, min_prompts: 0, max_prompts: 0 }, baseline: { enabled: false, duration_seconds: 0, reuse_seconds: 0 } }));
  try {
    let sent = false;
    const r = await runWorkerChild(run.specPath, {
      onMessage: (m, _pid, send) => {
        if (!sent && m.type === 'progress' && m.phase === 'measure') {
          sent = true;
          send({ v: 1, type: 'shutdown', reason: 'user skipped' });
        }
      },
    });
    assert.notEqual(r.exitCode, 0);
    const err = r.messages.find((m) => m.type === 'error') as Extract<ChildMessage, { type: 'error' }> | undefined;
    assert.equal(err?.error_type, 'UserInterrupted');
    assert.equal(err?.phase, 'measure');
    assert.ok(!existsSync(run.spec.result_path));
  } finally {
    run.cleanup();
  }
});
