// Builders of plans, snapshots and results as plain objects, for the results tests and bench.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_EXECUTION } from '../../src/study/plan-schema.ts';
import type { ExperimentConfig, PlanFile } from '../../src/study/types.ts';
import type { RunSnapshot, RunStatus, StudySnapshot } from '../../src/runner/events.ts';
import type { ErrorType } from '../../src/runner/protocol.ts';
import type { FlagCode, RunMetrics, RunResult } from '../../src/results/schema.ts';

export function makeConfig(over: Partial<ExperimentConfig> = {}): ExperimentConfig {
  return {
    model: 'builtin:tiny-random',
    backend: 'llamacpp',
    precision: 'q8_0',
    n: 8,
    max_new_tokens: 32,
    batch_size: 1,
    dataset: { kind: 'builtin', name: 'default' },
    seed: 1,
    warmup: { cv_threshold: 0.05, window: 5, min_prompts: 2, max_prompts: 20 },
    baseline: { enabled: true, duration_seconds: 5, reuse_seconds: 300 },
    energy: { sample_interval_ms: 100, live_interval_ms: 500, rapl: false },
    params: { n_gpu_layers: 99 },
    ...over,
  };
}

export interface ConfigFixture {
  hash: string;
  label: string;
  config: ExperimentConfig;
}

export function makePlan(configs: ConfigFixture[], nCycles: number, over: Partial<PlanFile> = {}): PlanFile {
  const order: PlanFile['order'] = [];
  for (let cycle = 1; cycle <= nCycles; cycle++) {
    for (const c of configs) order.push({ index: order.length, config_hash: c.hash, cycle });
  }
  return {
    schema_version: 1,
    study_name: 'fixture-study',
    study_hash: 'abcdef0123456789',
    source_path: '/tmp/fixture-study.yaml',
    created_at: '2026-01-01T00:00:00.000Z',
    execution: { ...DEFAULT_EXECUTION, n_cycles: nCycles, stall_timeout_seconds: 60 },
    cycle_seed: 12345,
    configs: configs.map((c) => ({ config_hash: c.hash, label: c.label, config: c.config })),
    skipped: [],
    order,
    warnings: [],
    estimate: { total_seconds: 0, low_seconds: 0, high_seconds: 0, finish_at: '2026-01-01T00:00:00.000Z', per_config: [] },
    ...over,
  };
}

export function runIdOf(index: number, hash: string, cycle: number, attempt = 1): string {
  return `${String(index).padStart(4, '0')}-${hash}-c${cycle}${attempt > 1 ? `-a${attempt}` : ''}`;
}

const pct = (v: number | null) => ({ mean: v, p50: v, p90: v, p95: v, p99: v });

export function makeMetrics(over: Partial<RunMetrics> = {}): RunMetrics {
  return {
    energy_j: 100,
    energy_polled_j: 101,
    energy_divergence: 0.01,
    energy_method: 'counter',
    energy_unavailable_reason: null,
    baseline_power_w: 50,
    baseline_reused: false,
    energy_adjusted_j: 50,
    energy_per_output_token_j: 0.5,
    energy_per_output_token_adjusted_j: 0.25,
    energy_per_request_j: 12.5,
    energy_per_request_adjusted_j: 6.25,
    cpu_energy_j: null,
    cpu_energy_unavailable_reason: 'RAPL disabled',
    load_s: 1,
    load_energy_j: 20,
    requests: 8,
    input_tokens: 400,
    output_tokens: 200,
    window_s: 10,
    output_tokens_per_s: 20,
    requests_per_s: 0.8,
    ttft_ms: pct(40),
    ttft_content_ms: pct(40),
    itl_ms: pct(10),
    tpot_ms: pct(11),
    e2e_ms: pct(400),
    power_mean_w: 150,
    power_peak_w: 180,
    temperature_max_c: 60,
    temperature_start_c: 50,
    temperature_end_c: 58,
    memory_peak_bytes: 2e9,
    throttle_s: { thermal: 0, power_cap: 0, power_brake: 0 },
    samples: 100,
    warmup_prompts: 5,
    warmup_cv: 0.03,
    warmup_converged: true,
    ...over,
  };
}

export function makeResult(
  config: ConfigFixture,
  index: number,
  cycle: number,
  metrics: Partial<RunMetrics> = {},
  flags: FlagCode[] = [],
  attempt = 1,
): RunResult {
  const runId = runIdOf(index, config.hash, cycle, attempt);
  return {
    schema_version: 1,
    run_id: runId,
    config_hash: config.hash,
    cycle,
    attempt,
    config: config.config as unknown as Record<string, unknown>,
    backend: { name: String(config.config.backend), version: '3.21.1' },
    model: { id: config.config.model, path: null, size_bytes: 1000, file_hash: null, builtin: true },
    started_at: new Date(Date.UTC(2026, 0, 1, 0, 0, index * 20)).toISOString(),
    ended_at: new Date(Date.UTC(2026, 0, 1, 0, 0, index * 20 + 15)).toISOString(),
    phases: { measure: { start_ms: 1000, end_ms: 11000 } },
    environment: {
      hostname: 'gpu-box',
      platform: 'linux',
      node_version: 'v20.20.2',
      llem_version: '0.1.0',
      cpu_model: 'Fixture CPU',
      cuda_visible_devices: '0',
      nvml: { available: true, reason: null, driver_version: '550.54', cuda_driver_version: '12.4' },
      gpus: [
        {
          index: 0,
          uuid: 'GPU-fixture',
          name: 'NVIDIA H100',
          pci_bus_id: null,
          memory_total_bytes: 8e10,
          memory_used_bytes: 1e9,
          power_limit_w: 700,
          power_limit_default_w: 700,
          persistence_mode: true,
          mig_mode: false,
          sm_clock_mhz: 1980,
          mem_clock_mhz: 2619,
          temperature_c: 40,
          foreign_processes: [],
        },
      ],
      extra: {},
    },
    metrics: makeMetrics(metrics),
    flags: flags.map((code) => ({ code, message: `${code} happened` })),
    definitions: { energy_j: 'counter difference over the window' },
    power_csv: 'power.csv',
  };
}

export interface RunFixture {
  config: ConfigFixture;
  cycle: number;
  status: RunStatus;
  errorType?: ErrorType;
  message?: string;
}

export function makeSnapshot(plan: PlanFile, statuses: Map<string, Partial<RunFixture>>, studyStatus: StudySnapshot['status'] = 'completed'): StudySnapshot {
  const runs: RunSnapshot[] = plan.order.map((o) => {
    const f = statuses.get(`${o.config_hash}:${o.cycle}`) ?? {};
    const status = f.status ?? 'completed';
    const runId = runIdOf(o.index, o.config_hash, o.cycle);
    return {
      index: o.index,
      run_id: runId,
      config_hash: o.config_hash,
      cycle: o.cycle,
      status,
      attempts:
        status === 'pending'
          ? []
          : [
              {
                attempt: 1,
                started_at: '2026-01-01T00:00:00.000Z',
                ended_at: status === 'running' ? null : '2026-01-01T00:00:10.000Z',
                status,
                error_type: f.errorType ?? null,
                message: f.message ?? null,
                phase_reached: f.errorType ? 'measure' : null,
                stderr_tail: null,
                pid: 1234,
                run_dir: `runs/${runId}`,
              },
            ],
      error_type: f.errorType ?? null,
      result: status === 'completed' ? `runs/${runId}/result.json` : null,
      headline: null,
    };
  });
  const counts = { pending: 0, running: 0, completed: 0, failed: 0, skipped: 0, interrupted: 0, invalid: 0 };
  for (const r of runs) counts[r.status]++;
  return {
    study_dir: '/tmp/fixture',
    study_name: plan.study_name,
    study_hash: plan.study_hash,
    status: studyStatus,
    n_cycles: plan.execution.n_cycles,
    started_at: plan.created_at,
    counts,
    runs,
    paused: false,
    quit_requested: false,
  };
}

/** A power.csv as src/measure's meter writes it: one row per (sample, device), time in seconds. */
export function makePowerCsv(samples: number, basePowerW: number, devices = 1): string {
  const lines = ['t_s,device_index,device_uuid,power_w,energy_j,temp_c,sm_clock_mhz,mem_clock_mhz,util_gpu_pct,util_mem_pct,mem_used_bytes,throttle_reasons'];
  for (let d = 0; d < devices; d++) {
    for (let i = 0; i < samples; i++) {
      const p = basePowerW + 20 * Math.sin(i / 5) + d * 15;
      lines.push(`${(i * 0.1).toFixed(6)},${d},GPU-${d},${p.toFixed(3)},${(i * p * 0.1).toFixed(3)},${(50 + i * 0.05).toFixed(1)},1980,2619,95,40,2000000000,0x0`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Writes plan.json and result.json/power.csv files of `results` into studyDir (no manifest). */
export async function writeStudyDir(studyDir: string, plan: PlanFile, results: RunResult[], powerCsv?: (r: RunResult) => string): Promise<void> {
  await mkdir(path.join(studyDir, 'runs'), { recursive: true });
  await writeFile(path.join(studyDir, 'plan.json'), JSON.stringify(plan, null, 2));
  for (const r of results) {
    const dir = path.join(studyDir, 'runs', r.run_id);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'result.json'), JSON.stringify(r, null, 2));
    if (powerCsv) await writeFile(path.join(dir, 'power.csv'), powerCsv(r));
  }
}

/** A swept grid: backends × batch sizes, each config's metrics a function of its position. */
export function makeGrid(batchSizes: number[], backends: string[] = ['llamacpp']): ConfigFixture[] {
  const out: ConfigFixture[] = [];
  for (const backend of backends) {
    for (const bs of batchSizes) {
      const hash = `${backend.slice(0, 4)}${String(bs).padStart(4, '0')}`.padEnd(16, '0');
      out.push({ hash, label: `${backend} bs=${bs}`, config: makeConfig({ backend, batch_size: bs }) });
    }
  }
  return out;
}

/** Every percentile of a latency the same value. */
export const flatPercentiles = (v: number) => ({ mean: v, p50: v, p90: v, p95: v, p99: v });

/** A study for the energy–TTFT p95 frontier, 3 cycles: bs1 slow and costly; bs2 better beyond the
 * CIs; bs3 better than bs1 but overlapping bs2; bs4 frugal but slow, the same value every cycle;
 * bs5 without energy. */
export function frontierFixture(): { configs: ConfigFixture[]; plan: PlanFile; results: RunResult[] } {
  const configs = makeGrid([1, 2, 3, 4, 5]);
  const ttft: Record<number, number[]> = { 1: [100, 102, 104], 2: [50, 52, 54], 3: [49, 53, 57], 4: [200, 200, 200], 5: [10, 10, 10] };
  const ept: Record<number, Array<number | null>> = { 1: [1.0, 1.02, 1.04], 2: [0.5, 0.52, 0.54], 3: [0.49, 0.53, 0.57], 4: [0.1, 0.1, 0.1], 5: [null, null, null] };
  const plan = makePlan(configs, 3);
  const results = plan.order.map((o) => {
    const c = configs.find((x) => x.hash === o.config_hash)!;
    const bs = c.config.batch_size;
    return makeResult(c, o.index, o.cycle, { ttft_ms: flatPercentiles(ttft[bs]![o.cycle - 1]!), energy_per_output_token_j: ept[bs]![o.cycle - 1]! });
  });
  return { configs, plan, results };
}
