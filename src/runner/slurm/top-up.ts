// `llem resume <dir> --launcher slurm --cycles N`: more cycles of the same configs, appended to the
// plan and the manifest under the study lock, exactly as the local runner's top-up does
// (StudyRunner.topUpCycles in src/runner/study-runner.ts): cycle by cycle after the existing
// order, `shuffled` reshuffled per cycle with seed cycle_seed + cycle, completed runs untouched.
// The caller then submits the new pending runs as a job array.
import { ManifestStore, runSnapshotOf } from '../manifest.ts';
import { pendingRecord, readPlan, writePlan } from '../study-dir.ts';
import type { RunnerEvent } from '../events.ts';
import type { PlanFile, PlannedRun } from '../../study/types.ts';
import { withStudyLock } from './study-lock.ts';

export interface TopUpResult {
  /** The study's cycles before the top-up (from the manifest). */
  fromCycles: number;
  /** The study's cycles after it (unchanged when `cycles` was not above fromCycles). */
  toCycles: number;
  /** Run indices appended (pending). */
  added: number[];
}

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
    const hashes = plan.execution.cycle_order === 'shuffled' ? seededShuffle(configs, plan.cycle_seed + cycle) : configs;
    for (const config_hash of hashes) order.push({ index: order.length, config_hash, cycle });
  }
  return { plan: { ...plan, order, execution: { ...plan.execution, n_cycles: cycles } }, added: order.slice(runCount) };
}

/** Tops the study up to `cycles` under the study lock; a lower or equal count changes nothing. */
export async function topUpStudyCycles(studyDir: string, cycles: number): Promise<TopUpResult> {
  return withStudyLock(studyDir, () => {
    const store = ManifestStore.open(studyDir);
    try {
      const have = store.manifest.n_cycles;
      const { plan, added } = appendCycles(readPlan(studyDir), store.manifest.runs.length, have, cycles);
      if (added.length === 0) return { fromCycles: have, toCycles: have, added: [] };
      writePlan(studyDir, plan);
      store.setRuns([...store.manifest.runs, ...added.map(pendingRecord)]);
      store.manifest.n_cycles = cycles;
      const at = new Date().toISOString();
      const events: RunnerEvent[] = added.map((r) => ({ type: 'run_status', at, run: runSnapshotOf(store.run(r.index)) }));
      store.commit(events);
      return { fromCycles: have, toCycles: cycles, added: added.map((r) => r.index) };
    } finally {
      store.close();
    }
  });
}

/** The local runner's run-order shuffle (mulberry32 + Fisher-Yates); must stay identical to it. */
function seededShuffle<T>(items: T[], seed: number): T[] {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
