// One `n_cycles: auto` round appended to a plan: the next cycle of each config the stopping rule
// (src/results/stopping-rule.ts decideRound) left running, in the study's order discipline
// (src/study/order.ts roundOrder). Pure; the runner (phase 2) writes the plan and the manifest,
// as the `--cycles N` top-up does (src/runner/top-up.ts).
import { roundOrder } from './order.ts';
import type { PlanFile, PlannedRun } from './types.ts';

/**
 * The plan with one more cycle for each of `configHashes` after its first `runCount` runs.
 * Each config gets the cycle after the highest it already has; `execution.n_cycles` becomes the
 * highest cycle planned (what the UI and manifest show as the cycle count so far).
 */
export function appendRound(plan: PlanFile, runCount: number, configHashes: ReadonlyArray<string>): { plan: PlanFile; added: PlannedRun[] } {
  const order = plan.order.slice(0, runCount);
  if (configHashes.length === 0) return { plan: { ...plan, order }, added: [] };
  const indexOf = new Map(plan.configs.map((c, i) => [c.config_hash, i]));
  const lastCycle = new Map<string, number>();
  for (const r of order) lastCycle.set(r.config_hash, Math.max(lastCycle.get(r.config_hash) ?? 0, r.cycle));
  const entries = [...new Set(configHashes)].map((h) => {
    const configIndex = indexOf.get(h);
    if (configIndex === undefined) throw new RangeError(`config ${h} is not in plan.json`);
    return { configIndex, cycle: (lastCycle.get(h) ?? 0) + 1 };
  });
  for (const e of roundOrder(entries, plan.configs.length, plan.execution.cycle_order, plan.cycle_seed)) {
    order.push({ index: order.length, config_hash: plan.configs[e.configIndex]!.config_hash, cycle: e.cycle });
  }
  const maxCycle = order.reduce((m, r) => Math.max(m, r.cycle), 0);
  return { plan: { ...plan, order, execution: { ...plan.execution, n_cycles: Math.max(plan.execution.n_cycles, maxCycle) } }, added: order.slice(runCount) };
}
