// Service-level objectives: goodput and joules per good token (issue 16). Pure.
//
// A condition is `<quantity>_<stat>_ms <= <number>` (or `<`), quantity ttft|itl|tpot|e2e and stat
// mean|p50|p90|p95|p99, e.g. `ttft_p95_ms<=200`. It is used twice:
//  - per request (goodput): a request is good when it completed and meets every condition with
//    its own value: its TTFT, TPOT or E2E (one value per request; the stat is the run-level one
//    and does not apply), and for ITL the stat over the request's own inter-token gaps (a request
//    with fewer than two tokens has no gap and meets an ITL condition);
//  - per config (does it meet the SLO): the run-level statistic as every result records it
//    (ttft_ms.p95 …), averaged over cycles; "with confidence" when the whole 95 % interval meets it.
import type { RequestRecord } from '../backends/types.ts';
import type { Percentiles, RunResult } from './schema.ts';
import { percentiles } from '../worker/metrics.ts';
import { describe, intervalsOverlap, seedFor, shownInterval, type MetricStats } from './stats.ts';
import type { StudySummary } from './summary-schema.ts';

export const SLO_QUANTITIES = ['ttft', 'itl', 'tpot', 'e2e'] as const;
export const SLO_STATS = ['mean', 'p50', 'p90', 'p95', 'p99'] as const;
export type SloQuantity = (typeof SLO_QUANTITIES)[number];
export type SloStat = (typeof SLO_STATS)[number];

export interface SloCondition {
  /** As written, e.g. ttft_p95_ms. */
  key: string;
  quantity: SloQuantity;
  stat: SloStat;
  op: '<=' | '<';
  threshold_ms: number;
}

export class SloParseError extends Error {}

const CONDITION = /^\s*(ttft|itl|tpot|e2e)_(mean|p50|p90|p95|p99)_ms\s*(<=|<)\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*$/i;

/** `ttft_p95_ms<=200,itl_p95_ms<=50`, or a list of such strings; conditions on one quantity and
 * stat may not repeat. */
export function parseSlo(input: string | readonly string[]): SloCondition[] {
  const parts = (typeof input === 'string' ? [input] : input).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  if (parts.length === 0) throw new SloParseError('expected at least one condition such as ttft_p95_ms<=200');
  const out: SloCondition[] = [];
  for (const part of parts) {
    const m = CONDITION.exec(part);
    if (!m) {
      throw new SloParseError(
        `"${part}": expected <quantity>_<stat>_ms<=<milliseconds> with quantity ${SLO_QUANTITIES.join('|')} and stat ${SLO_STATS.join('|')}, e.g. ttft_p95_ms<=200`,
      );
    }
    const threshold = Number(m[4]);
    if (!Number.isFinite(threshold) || threshold <= 0) throw new SloParseError(`"${part}": expected a positive number of milliseconds`);
    const cond: SloCondition = {
      key: `${m[1]!.toLowerCase()}_${m[2]!.toLowerCase()}_ms`,
      quantity: m[1]!.toLowerCase() as SloQuantity,
      stat: m[2]!.toLowerCase() as SloStat,
      op: m[3] as '<=' | '<',
      threshold_ms: threshold,
    };
    if (out.some((c) => c.key === cond.key)) throw new SloParseError(`"${part}": ${cond.key} is given twice`);
    out.push(cond);
  }
  return out;
}

export function formatSlo(conds: readonly SloCondition[]): string {
  return conds.map((c) => `${c.key}${c.op}${c.threshold_ms}`).join(',');
}

function holds(value: number, c: SloCondition): boolean {
  return c.op === '<=' ? value <= c.threshold_ms : value < c.threshold_ms;
}

/** The request's own value of a condition's quantity (null: it has none, e.g. no token at all). */
function requestValue(r: RequestRecord, c: SloCondition): number | null | 'no_gap' {
  switch (c.quantity) {
    case 'e2e':
      return r.end_ms - r.start_ms;
    case 'ttft':
      return r.first_token_ms === null ? null : r.first_token_ms - r.start_ms;
    case 'tpot':
      if (r.first_token_ms === null) return null;
      return r.output_tokens > 1 ? (r.end_ms - r.first_token_ms) / (r.output_tokens - 1) : 'no_gap';
    case 'itl': {
      if (r.first_token_ms === null) return null;
      if (r.token_times_ms.length === 0) return 'no_gap';
      const gaps: number[] = [];
      let prev = r.first_token_ms;
      for (const t of r.token_times_ms) {
        gaps.push(t - prev);
        prev = t;
      }
      return percentiles(gaps)[c.stat];
    }
  }
}

/** Completed, and every condition holds for this request's own values. */
export function requestMeetsSlo(r: RequestRecord, conds: readonly SloCondition[]): boolean {
  if (r.error !== null) return false;
  return conds.every((c) => {
    const v = requestValue(r, c);
    if (v === 'no_gap') return true;
    return v !== null && holds(v, c);
  });
}

export interface RunGoodput {
  run_id: string;
  config_hash: string;
  /** Every measured request of the run, failed ones included. */
  requests: number;
  good_requests: number;
  good_output_tokens: number;
  window_s: number;
  goodput_requests_per_s: number | null;
  goodput_tokens_per_s: number | null;
  /** energy_j ÷ good output tokens; null (with reason) when energy is unknown or nothing was good. */
  energy_per_good_token_j: number | null;
  reason: string | null;
}

export function runGoodput(result: RunResult, records: readonly RequestRecord[], conds: readonly SloCondition[]): RunGoodput {
  let good = 0;
  let goodTokens = 0;
  for (const r of records) {
    if (requestMeetsSlo(r, conds)) {
      good++;
      goodTokens += r.output_tokens;
    }
  }
  const w = result.metrics.window_s;
  const energy = result.metrics.energy_j;
  let reason: string | null = null;
  if (records.length === 0) reason = 'no request records (requests.jsonl missing or empty)';
  else if (energy === null) reason = `energy not measured: ${result.metrics.energy_unavailable_reason ?? 'unknown reason'}`;
  else if (goodTokens === 0) reason = 'no request met the SLO';
  return {
    run_id: result.run_id,
    config_hash: result.config_hash,
    requests: records.length,
    good_requests: good,
    good_output_tokens: goodTokens,
    window_s: w,
    goodput_requests_per_s: records.length && w > 0 ? good / w : null,
    goodput_tokens_per_s: records.length && w > 0 ? goodTokens / w : null,
    energy_per_good_token_j: energy !== null && goodTokens > 0 ? energy / goodTokens : null,
    reason,
  };
}

export interface ConditionCheck {
  key: string;
  threshold_ms: number;
  op: '<=' | '<';
  /** Mean over cycles of the run-level statistic (e.g. each run's ttft_ms.p95). */
  mean: number | null;
  ci: [number, number] | null;
  meets: boolean | null;
  /** The whole interval meets it (null below n = 2). */
  meets_with_confidence: boolean | null;
}

export interface ConfigSlo {
  config_hash: string;
  label: string;
  runs: RunGoodput[];
  good_fraction: MetricStats;
  goodput_requests_per_s: MetricStats;
  goodput_tokens_per_s: MetricStats;
  energy_per_good_token_j: MetricStats;
  conditions: ConditionCheck[];
  /** Every condition's mean meets it; null when some condition was not measured. */
  meets_slo: boolean | null;
  meets_slo_with_confidence: boolean | null;
}

export interface SloRecommendation {
  config_hash: string;
  label: string;
  energy_per_good_token_j: { mean: number; ci: [number, number] | null; n: number };
  /** The next-lowest config that meets the SLO, and whether the two intervals separate. */
  runner_up: { config_hash: string; label: string; mean: number; ci: [number, number] | null; separable: boolean | null } | null;
  with_confidence: boolean | null;
}

export interface SloAnswer {
  conditions: SloCondition[];
  configs: ConfigSlo[];
  recommendation: SloRecommendation | null;
  /** Why there is no recommendation, or what limits it. */
  notes: string[];
}

const PERCENTILE_OF: Record<SloQuantity, (m: RunResult['metrics']) => Percentiles> = {
  ttft: (m) => m.ttft_ms,
  itl: (m) => m.itl_ms,
  tpot: (m) => m.tpot_ms,
  e2e: (m) => m.e2e_ms,
};

/**
 * Goodput, J per good token and the SLO check per config, from the completed runs the summary
 * uses (`results`) and each run's request records (by run_id). Failed requests count in the run
 * and are never good; a run without records has no goodput (reason given), never 0.
 */
export function sloAnswer(summary: StudySummary, results: readonly RunResult[], recordsByRun: ReadonlyMap<string, readonly RequestRecord[]>, conds: SloCondition[]): SloAnswer {
  const byId = new Map(results.map((r) => [r.run_id, r]));
  const stats = summary.statistics;
  const opts = (c: string, what: string) => ({
    confidence: stats.confidence,
    bootstrapResamples: stats.bootstrap_resamples,
    highVarianceCv: stats.high_variance_cv,
    seed: seedFor(stats.bootstrap_seed, c, `slo:${what}`),
  });
  const configs: ConfigSlo[] = summary.configs.map((c) => {
    const runResults = c.runs.map((id) => byId.get(id)).filter((r): r is RunResult => !!r);
    const runs = runResults.map((r) => runGoodput(r, recordsByRun.get(r.run_id) ?? [], conds));
    const conditions: ConditionCheck[] = conds.map((cond) => {
      const s = describe(runResults.map((r) => PERCENTILE_OF[cond.quantity](r.metrics)[cond.stat]), opts(c.config_hash, cond.key));
      const ci = shownInterval(s);
      return {
        key: cond.key,
        threshold_ms: cond.threshold_ms,
        op: cond.op,
        mean: s.mean,
        ci,
        meets: s.mean === null ? null : holds(s.mean, cond),
        meets_with_confidence: ci === null ? null : holds(ci[1], cond),
      };
    });
    const all = (vals: Array<boolean | null>): boolean | null => (vals.some((v) => v === false) ? false : vals.some((v) => v === null) ? null : true);
    return {
      config_hash: c.config_hash,
      label: c.label,
      runs,
      good_fraction: describe(runs.map((r) => (r.requests ? r.good_requests / r.requests : null)), opts(c.config_hash, 'good_fraction')),
      goodput_requests_per_s: describe(runs.map((r) => r.goodput_requests_per_s), opts(c.config_hash, 'goodput_requests_per_s')),
      goodput_tokens_per_s: describe(runs.map((r) => r.goodput_tokens_per_s), opts(c.config_hash, 'goodput_tokens_per_s')),
      energy_per_good_token_j: describe(runs.map((r) => r.energy_per_good_token_j), opts(c.config_hash, 'energy_per_good_token_j')),
      conditions,
      meets_slo: all(conditions.map((x) => x.meets)),
      meets_slo_with_confidence: all(conditions.map((x) => x.meets_with_confidence)),
    };
  });
  const notes: string[] = [];
  const candidates = configs
    .filter((c) => c.meets_slo === true && c.energy_per_good_token_j.mean !== null)
    .sort((a, b) => a.energy_per_good_token_j.mean! - b.energy_per_good_token_j.mean! || a.label.localeCompare(b.label));
  let recommendation: SloRecommendation | null = null;
  if (candidates.length === 0) {
    const meeting = configs.filter((c) => c.meets_slo === true).length;
    notes.push(
      meeting === 0
        ? `no config meets ${formatSlo(conds)} on the mean over cycles`
        : `${meeting} config(s) meet ${formatSlo(conds)} but none has a measured energy per good token`,
    );
  } else {
    const best = candidates[0]!;
    const next = candidates[1] ?? null;
    const ci = shownInterval;
    recommendation = {
      config_hash: best.config_hash,
      label: best.label,
      energy_per_good_token_j: { mean: best.energy_per_good_token_j.mean!, ci: ci(best.energy_per_good_token_j), n: best.energy_per_good_token_j.n },
      runner_up: next
        ? {
            config_hash: next.config_hash,
            label: next.label,
            mean: next.energy_per_good_token_j.mean!,
            ci: ci(next.energy_per_good_token_j),
            separable: (() => {
              const o = intervalsOverlap(ci(best.energy_per_good_token_j), ci(next.energy_per_good_token_j));
              return o === null ? null : !o;
            })(),
          }
        : null,
      with_confidence: best.meets_slo_with_confidence,
    };
    if (recommendation.runner_up && recommendation.runner_up.separable !== true) {
      notes.push(`the recommendation is not separable from ${recommendation.runner_up.label}: their 95 % intervals of J per good token ${recommendation.runner_up.separable === null ? 'are undefined (n < 2)' : 'overlap'}`);
    }
    if (best.meets_slo_with_confidence !== true) {
      notes.push(`${best.label} meets the SLO on the mean, but not with its whole 95 % interval`);
    }
  }
  return { conditions: conds, configs, recommendation, notes };
}
