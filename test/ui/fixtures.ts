// Plans, snapshots and a scripted runner handle for UI tests (and the e2e fake study).
import type { RunnerEvent, RunSnapshot, StatusCounts, StudySnapshot } from '../../src/runner/events.ts';
import type { ExperimentConfig, PlanFile } from '../../src/study/types.ts';
import type { RunnerHandle } from '../../src/ui/handle.ts';

export function makeConfig(batch: number): ExperimentConfig {
  return {
    model: 'builtin:tiny-random',
    backend: batch % 3 === 2 ? 'vllm' : 'llamacpp',
    precision: 'fp16',
    n: 8,
    max_new_tokens: 32,
    batch_size: batch,
    dataset: { kind: 'builtin', name: 'default' },
    seed: 1,
    warmup: { cv_threshold: 0.05, window: 3, min_prompts: 2, max_prompts: 10 },
    baseline: { enabled: false, duration_seconds: 0, reuse_seconds: 0 },
    energy: { sample_interval_ms: 100, live_interval_ms: 1000, rapl: false },
    params: {},
  };
}

export function makePlan(opts: { configs: number; cycles: number; name?: string; confirmLimit?: number }): PlanFile {
  const configs = Array.from({ length: opts.configs }, (_, i) => ({
    config_hash: `h${String(i).padStart(15, '0')}`,
    label: `${i % 3 === 2 ? 'vllm' : 'llamacpp'} bs=${i + 1} tok=32`,
    config: makeConfig(i + 1),
  }));
  const order = [];
  for (let cycle = 1; cycle <= opts.cycles; cycle++) {
    for (const c of configs) order.push({ index: order.length, config_hash: c.config_hash, cycle });
  }
  return {
    schema_version: 1,
    study_name: opts.name ?? 'fixture-study',
    study_hash: 'abcdef0123456789',
    source_path: '/tmp/fixture-study.yaml',
    created_at: '2026-11-28T12:00:00.000Z',
    execution: {
      n_cycles: opts.cycles,
      cycle_order: 'sequential',
      shuffle_seed: null,
      config_gap_seconds: 0,
      cycle_gap_seconds: 0,
      cooldown: null,
      experiment_timeout_seconds: 600,
      stall_timeout_seconds: 60,
      max_runs_without_confirmation: opts.confirmLimit ?? 100,
      parallel: 'off',
    },
    cycle_seed: 1,
    configs,
    skipped: [{ label: 'vllm bs=64 precision=int2', config: {}, reasons: ['vllm does not support precision int2'] }],
    order,
    warnings: ['fixture warning: GPU clocks not locked'],
    estimate: {
      total_seconds: 3723,
      low_seconds: 3000,
      high_seconds: 4500,
      finish_at: '2026-11-28T13:02:03.000Z',
      per_config: configs.map((c, i) => ({
        config_hash: c.config_hash,
        run_seconds: 10,
        low_seconds: 8,
        high_seconds: 12,
        memory_need_bytes: null,
        memory_free_bytes: null,
        memory_fit: i === 1 ? 'wont_fit' : 'fits',
        memory_reason: i === 1 ? 'needs 90 GiB, 80 GiB free' : '',
      })),
    },
  };
}

export function countsOf(runs: RunSnapshot[]): StatusCounts {
  const counts: StatusCounts = { pending: 0, running: 0, completed: 0, failed: 0, skipped: 0, interrupted: 0 };
  for (const r of runs) counts[r.status] += 1;
  return counts;
}

export function pendingRun(plan: PlanFile, index: number): RunSnapshot {
  const p = plan.order[index];
  return {
    index,
    run_id: `${String(index).padStart(4, '0')}-${p.config_hash}-c${p.cycle}`,
    config_hash: p.config_hash,
    cycle: p.cycle,
    status: 'pending',
    attempts: [],
    error_type: null,
    result: null,
    headline: null,
  };
}

export function makeSnapshot(plan: PlanFile, studyDir = '/tmp/study-dir'): StudySnapshot {
  const runs = plan.order.map((_, i) => pendingRun(plan, i));
  return {
    study_dir: studyDir,
    study_name: plan.study_name,
    study_hash: plan.study_hash,
    status: 'running',
    n_cycles: plan.execution.n_cycles,
    started_at: '2026-11-28T12:00:00.000Z',
    counts: countsOf(runs),
    runs,
    paused: false,
    quit_requested: false,
  };
}

export function withStatus(run: RunSnapshot, status: RunSnapshot['status'], extra: Partial<RunSnapshot> = {}): RunSnapshot {
  const last = run.attempts[run.attempts.length - 1];
  const attempt = {
    attempt: status !== 'running' && last?.status === 'running' ? last.attempt : run.attempts.length + 1,
    started_at: '2026-11-28T12:00:00.000Z',
    ended_at: status === 'running' ? null : '2026-11-28T12:00:10.000Z',
    status,
    error_type: status === 'failed' ? ('ProcessCrash' as const) : status === 'skipped' ? ('UserSkipped' as const) : null,
    message: status === 'failed' ? 'child killed by SIGSEGV' : null,
    phase_reached: 'measure' as const,
    stderr_tail: status === 'failed' ? 'segfault at 0x0\nbacktrace follows' : null,
    pid: 1234,
    run_dir: `runs/${run.run_id}`,
  };
  return {
    ...run,
    status,
    attempts: status !== 'running' && last?.status === 'running' ? [...run.attempts.slice(0, -1), attempt] : [...run.attempts, attempt],
    error_type: attempt.error_type,
    headline:
      status === 'completed'
        ? { energy_j: 123.4, energy_per_output_token_j: 0.5, output_tokens_per_s: 250, window_s: 8, duration_s: 10, flags: ['short_window'] }
        : null,
    result: status === 'completed' ? `runs/${run.run_id}/result.json` : null,
    ...extra,
  };
}

export const at = '2026-11-28T12:00:05.000Z';

/** A handle whose events the test emits by hand and whose control calls it records. */
export class ScriptedHandle implements RunnerHandle {
  calls: Array<{ method: string; args: unknown[] }> = [];
  private listeners = new Set<(e: RunnerEvent) => void>();
  private finish: ((code: number) => void) | null = null;
  constructor(public snap: StudySnapshot) {}
  subscribe(listener: (e: RunnerEvent) => void) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  snapshot() {
    return this.snap;
  }
  run() {
    this.calls.push({ method: 'run', args: [] });
    return new Promise<number>((resolve) => (this.finish = resolve));
  }
  emit(event: RunnerEvent) {
    for (const l of this.listeners) l(event);
  }
  end(code: number) {
    this.finish?.(code);
  }
  get listenerCount() {
    return this.listeners.size;
  }
  private record(method: string, ...args: unknown[]) {
    this.calls.push({ method, args });
  }
  pause() { this.record('pause'); }
  resume() { this.record('resume'); }
  skipCurrent(index?: number) { this.record('skipCurrent', ...(index === undefined ? [] : [index])); }
  skipGap() { this.record('skipGap'); }
  retry(indices: number[]) { this.record('retry', indices); }
  retryAll() { this.record('retryAll'); }
  quitAfterCurrent(requested: boolean) { this.record('quitAfterCurrent', requested); }
  async abortNow() {
    this.record('abortNow');
    this.finish?.(130);
  }
  methods(): string[] {
    return this.calls.map((c) => c.method);
  }
}
