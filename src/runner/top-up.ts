// `--cycles N` top-up, shared by the local runner and the Slurm launcher: more cycles of the same
// configs appended after the existing order, completed runs untouched. A `shuffled` cycle uses the
// planner's own permutation (src/study/order.ts, keyed by cycle_seed and the cycle number), so a
// topped-up cycle is ordered exactly as it would have been had the study been planned with N
// cycles from the start.
import { permuteIndex } from '../study/order.ts';
import type { PlanFile, PlannedRun } from '../study/types.ts';

/**
 * The plan with cycles `haveCycles + 1 … cycles` appended after its first `runCount` runs. Pure.
 * The manifest is the truth for `runCount`/`haveCycles`: a plan.json rewritten just before a
 * crash may be ahead of it.
 */
export function appendCycles(plan: PlanFile, runCount: number, haveCycles: number, cycles: number): { plan: PlanFile; added: PlannedRun[] } {
  if (cycles <= haveCycles) return { plan, added: [] };
  const order = plan.order.slice(0, runCount);
  const configs = plan.configs.map((c) => c.config_hash);
  for (let cycle = haveCycles + 1; cycle <= cycles; cycle++) {
    for (let i = 0; i < configs.length; i++) {
      const pick = plan.execution.cycle_order === 'shuffled' ? permuteIndex(i, configs.length, plan.cycle_seed, cycle) : i;
      order.push({ index: order.length, config_hash: configs[pick]!, cycle });
    }
  }
  return { plan: { ...plan, order, execution: { ...plan.execution, n_cycles: cycles } }, added: order.slice(runCount) };
}
