// From a finished run's result.json to one history record, and the write the runner calls when a
// run completes (phase 2 wires it: src/runner, after the result is classified completed).
import { datasetLabel, METRIC_GETTERS } from '../results/summarize.ts';
import type { RunResult } from '../results/schema.ts';
import { SUMMARY_METRIC_KEYS } from '../results/summary-schema.ts';
import { canonicalJson, sha256Hex16 } from '../study/hash.ts';
import { machineOfEnvironment } from './machine.ts';
import { historyDir } from './paths.ts';
import { HISTORY_RECORD_VERSION, type HistoryRecord } from './schema.ts';
import { appendHistoryRecord, type AppendOutcome } from './store.ts';

/** Strings in a record are capped so that a line stays one atomic append. */
const MAX_STRING = 400;
const cap = (s: string) => (s.length > MAX_STRING ? `${s.slice(0, MAX_STRING - 1)}…` : s);

const MEASURED_PHASES = ['baseline', 'load', 'warmup', 'measure'] as const;

function phaseSeconds(result: RunResult, name: string): number | null {
  const p = result.phases[name];
  return p ? Math.max(0, (p.end_ms - p.start_ms) / 1000) : null;
}

/** The history record of a run. `runWallSeconds`: spawn to exit as the parent saw it, or null. */
export function historyRecordOf(result: RunResult, runWallSeconds: number | null, opts: { now?: Date; studyHash?: string | null } = {}): HistoryRecord {
  const c = result.config as Record<string, unknown>;
  const num = (v: unknown, fallback: number) => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
  const baseline = (c.baseline ?? {}) as Record<string, unknown>;
  const warmup = (c.warmup ?? {}) as Record<string, unknown>;
  const phases = {
    startup: null as number | null,
    baseline: phaseSeconds(result, 'baseline'),
    load: phaseSeconds(result, 'load'),
    warmup: phaseSeconds(result, 'warmup'),
    measure: phaseSeconds(result, 'measure'),
  };
  const inPhases = MEASURED_PHASES.reduce((s, p) => s + (phases[p] ?? 0), 0);
  if (runWallSeconds !== null && Number.isFinite(runWallSeconds)) phases.startup = Math.max(0, runWallSeconds - inPhases);
  else {
    // Without the parent's wall time: the child's own start-up (time origin → preflight) and its
    // preflight and teardown; the spawn and exit are not in the file.
    const pre = result.phases.preflight;
    phases.startup = pre ? pre.end_ms / 1000 + (phaseSeconds(result, 'teardown') ?? 0) : null;
  }
  const metrics: HistoryRecord['metrics'] = {};
  for (const key of SUMMARY_METRIC_KEYS) metrics[key] = METRIC_GETTERS[key](result.metrics);
  const baselineTaken = (phases.baseline ?? 0) > 0;
  return {
    v: HISTORY_RECORD_VERSION,
    recorded_at: (opts.now ?? new Date()).toISOString(),
    machine: machineOfEnvironment(result.environment),
    config_hash: result.config_hash,
    study_hash: opts.studyHash ?? null,
    run_id: cap(result.run_id),
    key: {
      backend: cap(String(c.backend ?? result.backend.name)),
      model: cap(String(c.model ?? result.model.id)),
      precision: cap(String(c.precision ?? 'auto')),
      batch_size: num(c.batch_size, 1),
      max_new_tokens: num(c.max_new_tokens, 0),
      n: num(c.n, 0),
      dataset: cap(String(datasetLabel(c.dataset))),
      params_hash: sha256Hex16(canonicalJson(c.params ?? {})),
      baseline_seconds: baseline.enabled === false ? 0 : num(baseline.duration_seconds, 0),
      warmup_max_prompts: num(warmup.max_prompts, 0),
    },
    run_wall_s: runWallSeconds !== null && Number.isFinite(runWallSeconds) ? runWallSeconds : null,
    phases_s: phases,
    baseline_measured: result.metrics.baseline_reused === null ? (baselineTaken ? true : null) : !result.metrics.baseline_reused,
    warmup_prompts: result.metrics.warmup_prompts,
    output_tokens: result.metrics.output_tokens,
    requests: result.metrics.requests,
    output_tokens_per_s: result.metrics.output_tokens_per_s,
    metrics,
    flags: result.flags.map((f) => f.code),
  };
}

/**
 * Records a completed run in the history. Call it when a run completes (the runner, after the
 * result is read back); `runWallSeconds` is the attempt's spawn-to-exit time. Never throws and
 * never blocks the study: a failure comes back as a reason to log.
 */
export function recordRunInHistory(
  result: RunResult,
  runWallSeconds: number | null,
  opts: { dir?: string; now?: Date; studyHash?: string | null } = {},
): AppendOutcome {
  try {
    return appendHistoryRecord(historyRecordOf(result, runWallSeconds, opts), opts.dir ?? historyDir());
  } catch (err) {
    return { recorded: false, reason: `history not written: ${(err as Error).message}` };
  }
}
