// `npm run bench -- plan`: three figures for the study grammar.
//  1. time to plan a 10^6-run grid (target < 50 ms): as 10^6 configs × 1 cycle (lazy: above the
//     up-front check limit) and as 10^5 configs × 10 cycles (every config checked and hashed).
//  2. configs expanded, checked and hashed per second (target > 100,000/s).
//  3. peak memory while counting 10^7 runs (flat: nothing proportional to the run count).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { planStudy } from '../src/study/plan.ts';
import { buildStudyModel, expandConfig } from '../src/study/grammar.ts';
import { loadStudy } from '../src/study/load.ts';
import { configHashOfSorted } from '../src/study/hash.ts';

const list = (n: number) => `[${Array.from({ length: n }, (_, i) => i + 1).join(', ')}]`;

function gridYaml(dims: number[], cycles: number): string {
  const keys = ['n', 'max_new_tokens', 'seed', 'batch_size'];
  const sweep = dims.map((d, i) => `  ${keys[i]}: ${list(d)}`).join('\n');
  return `backend: llamacpp\nmodel: builtin:tiny-random\nsweep:\n${sweep}\nexecution:\n  n_cycles: ${cycles}\n`;
}

// Wall time on a shared 2-core box swings with everyone else's builds; CPU time of this process is
// printed beside it as the steadier figure.
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

export default async function bench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'llem-bench-plan-'));
  try {
    const write = (name: string, yaml: string) => {
      const p = join(dir, name);
      writeFileSync(p, yaml);
      return p;
    };

    // 1. Plan a 10^6-run grid.
    const lazyPath = write('lazy.yaml', gridYaml([100, 100, 100], 1));
    await planStudy(lazyPath, { gpuFreeMemoryBytes: null }); // warm the module and JIT
    let t = performance.now();
    let c = cpuMs();
    const lazy = await planStudy(lazyPath, { gpuFreeMemoryBytes: null });
    console.log(
      `plan 10^6 runs (10^6 configs × 1 cycle, lazy):           ${(performance.now() - t).toFixed(1)} ms wall, ${(cpuMs() - c).toFixed(1)} ms CPU  (runs ${lazy.run_count}, target < 50 ms)`,
    );

    const fullPath = write('full.yaml', gridYaml([100, 100, 10], 10));
    t = performance.now();
    c = cpuMs();
    const full = await planStudy(fullPath, { gpuFreeMemoryBytes: null });
    console.log(
      `plan 10^6 runs (10^5 configs × 10 cycles, all checked):  ${(performance.now() - t).toFixed(0)} ms wall, ${(cpuMs() - c).toFixed(0)} ms CPU  (runs ${full.run_count}, expansion ${full.expansion})`,
    );

    // 2. Configs expanded + checked + hashed per second.
    const model = buildStudyModel(loadStudy(lazyPath), lazyPath);
    const N = 200_000;
    for (let i = 0; i < 5000; i++) configHashOfSorted(expandConfig(model, i).config);
    t = performance.now();
    c = cpuMs();
    let sink = 0;
    for (let i = 0; i < N; i++) sink += configHashOfSorted(expandConfig(model, i * 5).config).length;
    const wallRate = N / ((performance.now() - t) / 1000);
    const cpuRate = N / ((cpuMs() - c) / 1000);
    console.log(
      `configs expanded, checked and hashed:                    ${Math.round(wallRate).toLocaleString('en-US')}/s wall, ${Math.round(cpuRate).toLocaleString('en-US')}/s CPU  (target > 100,000/s; ${sink} hash chars)`,
    );

    // 3. Memory while counting 10^7 runs.
    global.gc?.();
    const before = process.memoryUsage();
    const hugePath = write('huge.yaml', gridYaml([100, 100, 100], 10));
    let peakHeap = before.heapUsed;
    let peakRss = before.rss;
    const sample = () => {
      const m = process.memoryUsage();
      peakHeap = Math.max(peakHeap, m.heapUsed);
      peakRss = Math.max(peakRss, m.rss);
    };
    t = performance.now();
    const huge = await planStudy(hugePath, { gpuFreeMemoryBytes: null });
    const hugeMs = performance.now() - t;
    sample();
    // Walk runs spread over the whole order (each one generated on demand).
    const step = Math.floor(huge.run_count / 100_000);
    for (let k = 0; k < huge.run_count; k += step) {
      huge.runAt(k);
      if (k % (step * 5000) === 0) sample();
    }
    sample();
    console.log(
      `count 10^7 runs: planned in ${hugeMs.toFixed(1)} ms (runs ${huge.run_count}); heap ${mib(before.heapUsed)} before → peak ${mib(peakHeap)}` +
        ` (+${mib(peakHeap - before.heapUsed)}), rss peak ${mib(peakRss)} (+${mib(peakRss - before.rss)}) while planning and visiting 100,000 runs across the order`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
