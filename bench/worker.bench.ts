// `npm run bench -- worker`: the measuring child's overhead on builtin:tiny-random (CPU, 1 thread).
//  1. output tokens/s through the full child vs node-llama-cpp called directly on the same prompts
//     in the same process run (harness overhead as a ratio; target under 5 %);
//  2. child start → first measured token;
//  3. CPU share of the measuring machinery during the window (a child whose workload is a program
//     that just sleeps, under the fake NVML when it can be built: JS loop, meter thread, heartbeats,
//     live power messages).
// Figures, not pass/fail: the machines are shared and noisy.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { nodeArgsFor, srcPath } from '../src/node-entry.ts';
import type { ChildMessage, RunSpec } from '../src/runner/protocol.ts';
import type { ExperimentConfig } from '../src/study/types.ts';
import { ensureTinyRandomModel } from '../src/backends/llamacpp/tiny-random.ts';
import { buildRunPrompts } from '../src/worker/workload.ts';

const N = 16;
const MAX_NEW = 32;
const SEED = 3;

function config(over: Partial<ExperimentConfig> = {}): ExperimentConfig {
  return {
    model: 'builtin:tiny-random',
    backend: 'llamacpp',
    precision: 'auto',
    n: N,
    max_new_tokens: MAX_NEW,
    batch_size: 1,
    dataset: { kind: 'builtin', name: 'builtin' },
    seed: SEED,
    warmup: { cv_threshold: 0.05, window: 3, min_prompts: 2, max_prompts: 3 },
    baseline: { enabled: false, duration_seconds: 0, reuse_seconds: 0 },
    energy: { sample_interval_ms: 100, live_interval_ms: 1000, rapl: false },
    params: { gpu: false, threads: 1, gpu_layers: 0, context_size: 'auto', eval_batch_size: 512, flash_attention: false, use_mmap: true },
    ...over,
  };
}

interface ChildRun {
  messages: ChildMessage[];
  spawnToMeasureMs: number | null;
  result: { metrics: { output_tokens_per_s: number | null; output_tokens: number; window_s: number } } | null;
  firstMeasuredTokenChildMs: number | null;
  cpuLog: { cpuMs: number; wallMs: number } | null;
  exitCode: number | null;
}

async function runChild(cfg: ExperimentConfig, env: NodeJS.ProcessEnv = {}): Promise<ChildRun> {
  const root = mkdtempSync(join(tmpdir(), 'llem-bench-'));
  const runDir = join(root, 'runs', '0000-bench-c1');
  mkdirSync(runDir, { recursive: true });
  const spec: RunSpec = {
    v: 1, study_dir: root, run_dir: runDir, run_id: '0000-bench-c1', index: 0, config_hash: 'bench', cycle: 1, attempt: 1,
    config: cfg, result_path: join(runDir, 'result.json'), power_csv_path: join(runDir, 'power.csv'), heartbeat_ms: 500,
    cuda_visible_devices: null,
  };
  const specPath = join(runDir, 'run.json');
  writeFileSync(specPath, JSON.stringify(spec));
  const t0 = performance.now();
  let spawnToMeasureMs: number | null = null;
  const messages: ChildMessage[] = [];
  try {
    let stderr = '';
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, nodeArgsFor(srcPath('worker/main.ts'), ['--run-spec', specPath]), {
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        detached: true,
        env: { ...process.env, ...env },
      });
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('message', (m: ChildMessage) => {
        messages.push(m);
        if (m.type === 'phase' && m.phase === 'measure') spawnToMeasureMs = performance.now() - t0;
        if (m.type === 'result') child.send({ v: 1, type: 'result_ack' });
      });
      child.on('error', reject);
      child.on('exit', (code) => {
        if (code !== 0) process.stderr.write(stderr.slice(-2000));
        resolve(code);
      });
    });
    let result: ChildRun['result'] = null;
    let firstMeasuredTokenChildMs: number | null = null;
    try {
      result = JSON.parse(readFileSync(spec.result_path, 'utf8'));
      const recs = readFileSync(join(runDir, 'requests.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { first_token_ms: number | null });
      firstMeasuredTokenChildMs = Math.min(...recs.map((r) => r.first_token_ms ?? Infinity));
    } catch {
      // reported as missing below
    }
    // The worker's log lines come on its stderr (the runner's worker.log).
    const match = /cpu_ms=([\d.]+) wall_ms=([\d.]+)/.exec(stderr);
    const cpuLog: ChildRun['cpuLog'] = match ? { cpuMs: Number(match[1]), wallMs: Number(match[2]) } : null;
    return { messages, spawnToMeasureMs, result, firstMeasuredTokenChildMs, cpuLog, exitCode };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function directTokensPerSecond(): Promise<{ tokPerS: number; tokens: number }> {
  const { getLlama, LlamaCompletion } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never' });
  const model = await llama.loadModel({ modelPath: ensureTinyRandomModel(), gpuLayers: 0 });
  const context = await model.createContext({ sequences: 1, threads: 1, batchSize: 512 });
  const seq = context.getSequence();
  const completion = new LlamaCompletion({ contextSequence: seq });
  const { measured, warmup } = await buildRunPrompts({ kind: 'builtin', name: 'builtin' }, SEED, N, 3);
  for (const p of warmup) {
    await seq.clearHistory();
    await completion.generateCompletion(p.text, { maxTokens: MAX_NEW, temperature: 0 });
  }
  let tokens = 0;
  const t0 = performance.now();
  for (const p of measured) {
    await seq.clearHistory();
    await completion.generateCompletion(p.text, { maxTokens: MAX_NEW, temperature: 0, onToken: (t) => (tokens += t.length) });
  }
  const s = (performance.now() - t0) / 1000;
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return { tokPerS: tokens / s, tokens };
}

async function machineryCpuShare(): Promise<{ share: number | null; note: string }> {
  let env: NodeJS.ProcessEnv = { LLEM_NVML_LIB: '/nonexistent/libnvidia-ml.so.1' };
  let note = 'no NVML (meter unavailable): JS loop, heartbeats only';
  try {
    const fake = await import('../test/native/fake.ts');
    await fake.ensureAddonBuilt();
    const libs = await fake.buildFakeLibs();
    const dir = mkdtempSync(join(tmpdir(), 'llem-bench-fake-'));
    const script = fake.writeFakeScript(dir, { devices: [{ power: [[0, 300_000]] }] });
    env = fake.fakeGpuEnv(libs, script.path);
    note = 'fake NVML, 10 Hz sampler, 1 Hz live messages';
  } catch (err) {
    note += ` (fake NVML unavailable: ${(err as Error).message.slice(0, 80)})`;
  }
  // The workload: a program that sleeps 5 s and writes records, so the child itself only measures.
  const program = `const fs=require('fs');const t=performance.now();setTimeout(()=>{const p=fs.readFileSync(process.env.LLEM_PROMPTS_FILE,'utf8').trim().split('\\n').map(JSON.parse);fs.writeFileSync(process.env.LLEM_RECORDS_FILE,p.map(x=>JSON.stringify({prompt_index:x.index,input_tokens:1,output_tokens:1,start_ms:t,first_token_ms:t+1,end_ms:t+2})).join('\\n'))},5000)`;
  const r = await runChild(
    config({ backend: 'command', model: 'sleep', n: 1, params: { argv: [process.execPath, '-e', program], cwd: null, env: {} } }),
    env,
  );
  if (!r.cpuLog) return { share: null, note: `${note}; child exit ${r.exitCode}` };
  return { share: r.cpuLog.cpuMs / r.cpuLog.wallMs, note };
}

export default async function bench(): Promise<void> {
  ensureTinyRandomModel();
  const d1 = await directTokensPerSecond();
  const child = await runChild(config());
  const d2 = await directTokensPerSecond();
  const direct = (d1.tokPerS + d2.tokPerS) / 2;
  const viaChild = child.result?.metrics.output_tokens_per_s ?? null;
  console.log(`tiny-random, CPU, 1 thread, n=${N}, max_new_tokens=${MAX_NEW}, concurrency 1`);
  console.log(`  node-llama-cpp direct:      ${d1.tokPerS.toFixed(1)} / ${d2.tokPerS.toFixed(1)} tok/s (before / after the child run)`);
  if (viaChild === null) {
    console.log(`  full child:                 failed (exit ${child.exitCode})`);
  } else {
    console.log(`  full child (window):        ${viaChild.toFixed(1)} tok/s over ${child.result!.metrics.window_s.toFixed(2)} s`);
    console.log(`  harness overhead:           ${((1 - viaChild / direct) * 100).toFixed(1)} % (target < 5 %; negative = noise)`);
  }
  console.log(`  child start → measure phase: ${child.spawnToMeasureMs?.toFixed(0) ?? 'n/a'} ms (spawn seen by the parent)`);
  console.log(`  child start → first measured token: ${child.firstMeasuredTokenChildMs?.toFixed(0) ?? 'n/a'} ms (child clock, from its process start)`);
  const cpu = await machineryCpuShare();
  console.log(`  measuring machinery CPU share during a 5 s window: ${cpu.share === null ? 'n/a' : (cpu.share * 100).toFixed(2) + ' % of one core'} (${cpu.note})`);
}
