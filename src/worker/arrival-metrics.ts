// Open-loop workloads (issue 16): the arrival schedule the worker hands the client, and what the
// run's records say about it afterwards: the rate actually achieved, the queueing delay (scheduled
// → sent) and whether the server kept up (`over_saturated`). Pure.
import type { RequestRecord } from '../backends/types.ts';
import type { ExperimentConfig } from '../study/types.ts';
import type { ArrivalMetrics, ValidityFlag } from '../results/schema.ts';
import { DEFAULT_ARRIVAL, parseArrival, type WorkloadArrival } from '../arrival.ts';
import { percentile } from './metrics.ts';

/** Achieved below (1 − this) × scheduled rate: the server did not keep up. */
export const OVER_SATURATION_SHORTFALL = 0.05;

/** The open-loop arrival of a config, or undefined for a closed loop (no request_rate). */
export function workloadArrival(config: ExperimentConfig): WorkloadArrival | undefined {
  if (config.request_rate === undefined) return undefined;
  const process = parseArrival(config.arrival ?? DEFAULT_ARRIVAL);
  if (!process) throw new Error(`arrival "${config.arrival}" is not an arrival process (the study grammar should have refused it)`);
  return { rate_per_s: config.request_rate, process };
}

/** (k − 1) ÷ (last − first) of sorted times; null below two times or over a zero span. */
function rateOf(times: number[]): number | null {
  if (times.length < 2) return null;
  const sorted = [...times].sort((a, b) => a - b);
  const span = sorted[sorted.length - 1]! - sorted[0]!;
  return span > 0 ? ((sorted.length - 1) * 1000) / span : null;
}

/**
 * Arrival metrics of an open-loop run; null for a closed loop. The achieved rate is the departure
 * rate of completed requests, (k − 1) ÷ (last − first completion): a server that keeps up departs
 * requests as fast as they arrive, one that does not departs them at its own service rate. It is
 * compared with the rate of the schedule as drawn (a short seeded Poisson schedule is itself off
 * the nominal rate by chance), never with the nominal one.
 */
export function arrivalMetrics(config: ExperimentConfig, records: readonly RequestRecord[]): ArrivalMetrics | null {
  const arrival = workloadArrival(config);
  if (!arrival) return null;
  const scheduled = records.map((r) => r.scheduled_ms).filter((t): t is number => typeof t === 'number');
  const queueing = records.filter((r) => typeof r.scheduled_ms === 'number').map((r) => Math.max(0, r.start_ms - r.scheduled_ms!)).sort((a, b) => a - b);
  const scheduledRate = arrival.rate_per_s === 'inf' ? null : rateOf(scheduled);
  const achieved = rateOf(records.filter((r) => r.error === null).map((r) => r.end_ms));
  return {
    offered_rate_per_s: arrival.rate_per_s,
    arrival: config.arrival ?? DEFAULT_ARRIVAL,
    scheduled_rate_per_s: scheduledRate,
    achieved_rate_per_s: achieved,
    queueing_ms: {
      mean: queueing.length ? queueing.reduce((s, q) => s + q, 0) / queueing.length : null,
      p50: percentile(queueing, 50),
      p95: percentile(queueing, 95),
    },
    over_saturated: scheduledRate === null ? null : achieved === null ? true : achieved < (1 - OVER_SATURATION_SHORTFALL) * scheduledRate,
  };
}

export function arrivalFlags(m: ArrivalMetrics | null): ValidityFlag[] {
  if (!m?.over_saturated) return [];
  const achieved = m.achieved_rate_per_s === null ? 'no measurable rate' : `${m.achieved_rate_per_s.toFixed(2)} requests/s`;
  return [
    {
      code: 'over_saturated',
      message: `achieved ${achieved} against ${m.scheduled_rate_per_s!.toFixed(2)} requests/s scheduled (offered ${m.offered_rate_per_s}, ${m.arrival}): more than ${OVER_SATURATION_SHORTFALL * 100} % short, the server did not keep up; latencies include its queue`,
    },
  ];
}
