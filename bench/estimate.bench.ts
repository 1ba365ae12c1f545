// `npm run bench -- estimate`: the pre-flight estimate against the real quickstart, twice, with a
// temp state dir. Run 1 is estimated by the heuristic alone; the runner records its runs in the
// history (src/runner/attempt.ts, as every completed run); run 2 is estimated from that history
// (goal: within 25 % of its actual time). Prints estimate against actual for both.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { historyDir, readHistory } from '../src/history/index.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const bin = join(root, 'bin/llem.js');
const study = join(root, 'examples/quickstart.yaml');

function llem(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: root, env, timeout: 600_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

interface PlanEstimate {
  total_seconds: number;
  low_seconds: number;
  high_seconds: number;
  source: string;
  notes: string[];
}

const s = (v: number) => `${v.toFixed(1)} s`;
const pct = (estimate: number, actual: number) => `${(((estimate - actual) / actual) * 100).toFixed(0)} %`;

export default async function bench(): Promise<void> {
  const state = mkdtempSync(join(tmpdir(), 'llem-bench-state-'));
  const out = mkdtempSync(join(tmpdir(), 'llem-bench-out-'));
  const env = { ...process.env, LLEM_STATE_DIR: state };
  console.log(`quickstart twice, state dir ${state} (temp); the runner records each completed run in the history`);
  const rows: Array<{ run: number; estimate: PlanEstimate; actual: number }> = [];
  try {
    for (const run of [1, 2]) {
      const planned = await llem(['plan', study, '--json', '--no-order'], env);
      if (planned.code !== 0) throw new Error(`llem plan failed: ${planned.stderr}`);
      const estimate = (JSON.parse(planned.stdout) as { estimate: PlanEstimate }).estimate;
      const loadBefore = loadavg()[0]!;
      const before = new Set(readdirSync(out));
      const t0 = performance.now();
      const ran = await llem(['run', study, '--out', out, '--yes', '--no-tui'], env);
      const actual = (performance.now() - t0) / 1000;
      if (ran.code !== 0) throw new Error(`llem run failed (${ran.code}): ${ran.stderr.slice(-2000)}`);
      const studyDirName = readdirSync(out).find((d) => !before.has(d));
      rows.push({ run, estimate, actual });
      console.log(
        `run ${run}: estimate ${s(estimate.total_seconds)} (range ${s(estimate.low_seconds)} – ${s(estimate.high_seconds)}, from ${estimate.source}) · ` +
          `actual ${s(actual)} · estimate − actual ${pct(estimate.total_seconds, actual)} · load average ${loadBefore.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}`,
      );
      for (const note of estimate.notes) console.log(`        · ${note}`);
      const history = readHistory(historyDir(env));
      console.log(`        history after ${studyDirName}: ${history.records.length} runs recorded by the runner${history.problems.length ? `; problems: ${history.problems.join('; ')}` : ''}`);
    }
    const second = rows[1]!;
    const err = Math.abs(second.estimate.total_seconds - second.actual) / second.actual;
    console.log(`second pre-flight within ${(err * 100).toFixed(0)} % of the second actual time (goal ≤ 25 %: ${err <= 0.25 ? 'met' : 'NOT met'})`);
    // On a shared box the load other jobs put on it moves run times between two studies more than
    // the estimate can know: this ratio says how much of the error is that.
    console.log(`(run 2 actual / run 1 actual: ${(second.actual / rows[0]!.actual).toFixed(2)}; the history can only predict run 2 as fast as run 1 was)`);
  } finally {
    rmSync(state, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
}
