// `llem resume <dir> --launcher slurm --cycles N`: more cycles of the same configs, appended to the
// plan and the manifest under the study lock, exactly as the local runner's top-up does
// (both use appendCycles from src/runner/top-up.ts), completed runs untouched.
// The caller then submits the new pending runs as a job array.
import { ManifestStore, runSnapshotOf } from '../manifest.ts';
import { pendingRecord, readPlan, writePlan } from '../study-dir.ts';
import type { RunnerEvent } from '../events.ts';
import { appendCycles } from '../top-up.ts';
import { withStudyLock } from './study-lock.ts';

export interface TopUpResult {
  /** The study's cycles before the top-up (from the manifest). */
  fromCycles: number;
  /** The study's cycles after it (unchanged when `cycles` was not above fromCycles). */
  toCycles: number;
  /** Run indices appended (pending). */
  added: number[];
}

export { appendCycles };

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
