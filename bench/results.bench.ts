// Figures for src/results: summary of 10,000 runs (target < 1 s), HTML report of 500 configs
// (target < 5 s) and its size. Inputs are built in memory first; only the work itself is timed.
import { performance } from 'node:perf_hooks';
import { summarizeStudy } from '../src/results/summarize.ts';
import { buildReportHtml } from '../src/results/report.ts';
import { makeConfig, makePlan, makePowerCsv, makeResult, type ConfigFixture } from '../test/results/fixtures.ts';
import type { RunResult } from '../src/results/schema.ts';

function grid(n: number): ConfigFixture[] {
  const backends = ['llamacpp', 'vllm', 'sglang', 'trtllm'];
  const precisions = ['fp16', 'bf16', 'q8_0', 'q4_k_m', 'fp8'];
  const tokens = [32, 64, 128, 256, 512];
  const batch = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
  const out: ConfigFixture[] = [];
  for (const backend of backends)
    for (const precision of precisions)
      for (const max_new_tokens of tokens)
        for (const batch_size of batch) {
          if (out.length >= n) return out;
          const hash = out.length.toString(16).padStart(16, '0');
          out.push({ hash, label: `${backend} ${precision} tok=${max_new_tokens} bs=${batch_size}`, config: makeConfig({ backend, precision, max_new_tokens, batch_size }) });
        }
  return out;
}

function study(nConfigs: number, nCycles: number) {
  const configs = grid(nConfigs);
  const plan = makePlan(configs, nCycles);
  const byHash = new Map(configs.map((c) => [c.hash, c]));
  const results: RunResult[] = plan.order.map((o) => {
    const c = byHash.get(o.config_hash)!;
    const bs = c.config.batch_size;
    const jitter = 1 + 0.04 * Math.sin(o.index * 1.7);
    // Every summarised metric varies across cycles, as on a real GPU (constant ones skip the bootstrap).
    const pct = (v: number) => ({ mean: v * 1.1, p50: v, p90: v * 1.5, p95: v * 1.7, p99: v * 2 });
    return makeResult(c, o.index, o.cycle, {
      energy_per_output_token_j: (0.5 / Math.sqrt(bs)) * jitter,
      energy_per_output_token_adjusted_j: (0.3 / Math.sqrt(bs)) * jitter,
      output_tokens_per_s: 20 * bs * (2 - jitter),
      requests_per_s: 0.8 * bs * (2 - jitter),
      energy_j: 100 * jitter,
      energy_adjusted_j: 60 * jitter,
      energy_per_request_j: 12 * jitter,
      energy_divergence: 0.02 * jitter,
      ttft_ms: pct(40 * jitter),
      itl_ms: pct(10 * jitter),
      tpot_ms: pct(11 * jitter),
      e2e_ms: pct(400 * jitter),
      power_mean_w: 150 + 2 * Math.log2(bs) * jitter,
      power_peak_w: 200 * jitter,
      temperature_max_c: 60 * jitter,
      memory_peak_bytes: 2e9 * jitter,
    }, o.index % 7 === 0 ? ['thermal_throttle'] : []);
  });
  return { plan, results };
}

/** [value, wall ms, CPU ms]: CPU time too, because these machines are shared and wall time
 * under a load of 20 says more about the neighbours than about this code. */
function time<T>(fn: () => T): [T, number, number] {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const v = fn();
  const cpu = process.cpuUsage(cpu0);
  return [v, performance.now() - t0, (cpu.user + cpu.system) / 1000];
}

export default async function bench(): Promise<void> {
  {
    const { plan, results } = study(1000, 10);
    summarizeStudy({ plan, snapshot: null, results: results.slice(0, 500) }); // warm the JIT
    const [summary, ms, cpuMs] = time(() => summarizeStudy({ plan, snapshot: null, results }));
    const bytes = Buffer.byteLength(JSON.stringify(summary, null, 2));
    console.log(`summary of ${results.length} runs (1000 configs × 10 cycles, ${summary.statistics.metrics.length} metrics, ${summary.statistics.bootstrap_resamples} bootstrap resamples): ${ms.toFixed(0)} ms wall, ${cpuMs.toFixed(0)} ms CPU (target < 1000 ms); summary.json ${(bytes / 1024 / 1024).toFixed(1)} MiB`);
  }
  {
    const { plan, results } = study(500, 3);
    const [summary, sumMs] = time(() => summarizeStudy({ plan, snapshot: null, results }));
    const powerRuns = results.slice(0, 12).map((r) => ({ run_id: r.run_id, label: r.run_id, csvText: makePowerCsv(3000, 200), flags: [] }));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const html = await buildReportHtml({ summary, plan, powerRuns });
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const charts = (html.match(/<figure class="chart"/g) ?? []).length;
    console.log(`report of 500 configs (${results.length} runs, ${charts} charts, 12 power timelines of 3000 samples): ${ms.toFixed(0)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU (target < 5000 ms; summary before it ${sumMs.toFixed(0)} ms)`);
    console.log(`report file size: ${(Buffer.byteLength(html) / 1024).toFixed(0)} KiB`);
  }
}
