// `npm run bench -- study-dir`: reading a study directory's files through their schemas.
//  1. readPlan of a 10^4-config plan.json (10^4 configs × 3 cycles, written by the real planner),
//     beside reading + JSON.parse alone: the ratio is what the zod check adds. Reference, 2-core
//     box under load, min of 20: 100–134 ms when configs were checked only for model/backend,
//     152–181 ms with the full config schema (zod 3 parses ~5 µs per config; the parse is ~45 ms).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { planStudy } from '../src/study/plan.ts';
import { writePlan } from '../src/runner/study-dir.ts';
import { readPlan } from '../src/study-dir/read.ts';

const list = (n: number) => `[${Array.from({ length: n }, (_, i) => i + 1).join(', ')}]`;

/** Median and minimum of `reps` timed calls (after a warm-up), in ms. */
function timed(reps: number, fn: () => unknown): { median: number; min: number } {
  for (let i = 0; i < 3; i++) fn();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { median: ms[ms.length >> 1]!, min: ms[0]! };
}

export default async function bench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'llem-bench-study-dir-'));
  try {
    const yaml = join(dir, 'study.yaml');
    writeFileSync(yaml, `name: big\nbackend: llamacpp\nmodel: builtin:tiny-random\nsweep:\n  n: ${list(100)}\n  max_new_tokens: ${list(100)}\nexecution:\n  n_cycles: 3\n`);
    const plan = await planStudy(yaml, { gpuFreeMemoryBytes: null });
    const studyDir = join(dir, 'study');
    mkdirSync(studyDir);
    writePlan(studyDir, plan.toPlanFile());
    const file = join(studyDir, 'plan.json');
    const mib = statSync(file).size / 2 ** 20;

    const read = timed(20, () => readPlan(studyDir));
    const parse = timed(20, () => JSON.parse(readFileSync(file, 'utf8')));
    console.log(
      `readPlan, ${plan.config_count} configs × ${plan.cycles} cycles (${mib.toFixed(1)} MiB): ${read.median.toFixed(0)} ms median (min ${read.min.toFixed(0)}); read + JSON.parse alone ${parse.median.toFixed(0)} ms (min ${parse.min.toFixed(0)}); readPlan = ×${(read.min / parse.min).toFixed(2)} read + parse (min)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
