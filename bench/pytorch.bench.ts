// pytorch backend figures on builtin:tiny-torch (CPU): Python start to hello, load, tokens/s
// through the line protocol vs the generation span Python itself measured (protocol overhead),
// and the delay from a request's end in Python to its record in the child.
// LLEM_TEST_PYTHON picks the Python (default /usr/bin/python3, where Debian's python3-torch is).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadPytorch } from '../src/backends/pytorch/index.ts';
import { PythonWorker } from '../src/backends/pytorch/process.ts';
import type { Prompt, RequestRecord } from '../src/backends/types.ts';
import type { ExperimentConfig } from '../src/study/types.ts';

const PYTHON = process.env.LLEM_TEST_PYTHON ?? '/usr/bin/python3';

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

export default async function bench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'llem-pytorch-bench-'));
  try {
    const helloMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const w = await PythonWorker.start({ python: PYTHON });
      helloMs.push(performance.now() - t0);
      await w.close();
    }
    console.log(`spawn → hello (Python + torch import), 3 starts: ${helloMs.map((x) => x.toFixed(0)).join(', ')} ms`);

    const config: ExperimentConfig = {
      model: 'builtin:tiny-torch',
      backend: 'pytorch',
      precision: 'fp32',
      n: 32,
      max_new_tokens: 64,
      batch_size: 1,
      dataset: { kind: 'builtin', name: 'builtin' },
      seed: 1,
      warmup: { cv_threshold: 0.05, window: 3, min_prompts: 0, max_prompts: 0 },
      baseline: { enabled: false, duration_seconds: 0, reuse_seconds: 0 },
      energy: { sample_interval_ms: 100, live_interval_ms: 1000, rapl: false },
      params: { python: PYTHON, num_threads: 1 },
    };
    const t0 = performance.now();
    const { session } = await loadPytorch(config, { runDir: dir, signal: new AbortController().signal, log: () => {} });
    console.log(`loadPytorch (start + load tiny-torch, ${session.loaded.parameters} params): ${(performance.now() - t0).toFixed(0)} ms`);
    try {
      const prompts: Prompt[] = Array.from({ length: 32 }, (_, i) => {
        const text = `Prompt number ${i}: tell me about the number ${i * 7}.`;
        return { index: i, text, messages: [{ role: 'user', content: text }] };
      });
      for (const batch of [1, 8]) {
        const arrivals: number[] = [];
        const start = performance.now();
        const records: RequestRecord[] = await session.run(
          { prompts, max_new_tokens: 64, concurrency: batch, seed: 1, greedy: true },
          (r) => arrivals.push(performance.now() - r.end_ms),
        );
        const wallMs = performance.now() - start;
        const tokens = records.reduce((s, r) => s + r.output_tokens, 0);
        const pythonSpanMs = Math.max(...records.map((r) => r.end_ms)) - Math.min(...records.map((r) => r.start_ms));
        console.log(
          `batch ${batch}: ${tokens} tokens, ${(tokens / (wallMs / 1000)).toFixed(0)} tok/s through the protocol, ` +
            `${(tokens / (pythonSpanMs / 1000)).toFixed(0)} tok/s over Python's own span; ` +
            `overhead ${(((wallMs - pythonSpanMs) / pythonSpanMs) * 100).toFixed(1)} % ` +
            `(${(wallMs - pythonSpanMs).toFixed(1)} ms: one command round trip + records)`,
        );
        console.log(
          `  request end (Python) → record in the child: mean ${(arrivals.reduce((a, b) => a + b, 0) / arrivals.length).toFixed(2)} ms, ` +
            `p50 ${quantile(arrivals, 0.5).toFixed(2)} ms, max ${Math.max(...arrivals).toFixed(2)} ms`,
        );
      }
    } finally {
      await session.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
