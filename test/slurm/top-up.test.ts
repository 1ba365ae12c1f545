// The Slurm top-up (`resume --launcher slurm --cycles N`, the resume rules under a short lock)
// appends exactly what the local runner's `resume --cycles N` appends: same order (shuffled
// cycles included), same run ids, plan and manifest.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StudyRunner } from '../../src/runner/index.ts';
import { readManifest } from '../../src/study-dir/read.ts';
import { readPlan } from '../../src/study-dir/read.ts';
import { applyResumeUnderLock } from '../../src/runner/launchers/slurm.ts';
import { appendCycles } from '../../src/runner/top-up.ts';
import { fixtureWorker, makePlan, tempStudy } from '../runner/helpers.ts';

const fourConfigs = [{ fixture_mode: 'ok' }, { fixture_mode: 'ok' }, { fixture_mode: 'ok' }, { fixture_mode: 'ok' }];

describe('slurm top-up', () => {
  it('appendCycles: interleaved cycles after the existing runs; nothing when not above', () => {
    const plan = makePlan([{ a: 1 }, { b: 2 }], { nCycles: 1 });
    const { plan: topped, added } = appendCycles(plan, 2, 1, 3);
    assert.deepEqual(added.map((r) => [r.index, r.cycle, r.config_hash]), [
      [2, 2, plan.configs[0]!.config_hash],
      [3, 2, plan.configs[1]!.config_hash],
      [4, 3, plan.configs[0]!.config_hash],
      [5, 3, plan.configs[1]!.config_hash],
    ]);
    assert.equal(topped.execution.n_cycles, 3);
    assert.equal(topped.order.length, 6);
    assert.equal(plan.order.length, 2, 'the input plan is not changed');
    assert.deepEqual(appendCycles(plan, 2, 1, 1).added, []);
    assert.deepEqual(appendCycles(plan, 2, 3, 2).added, []);
  });

  it('appends the same runs as the local resume --cycles, shuffled cycle order included', async () => {
    const local = tempStudy(makePlan(fourConfigs, { nCycles: 1, order: 'shuffled' }));
    const slurm = tempStudy(makePlan(fourConfigs, { nCycles: 1, order: 'shuffled' }));
    try {
      assert.equal(await new StudyRunner(local.studyDir, { workerCommand: fixtureWorker, killGraceMs: 1000, resume: { cycles: 3 } }).run(), 0);
      await applyResumeUnderLock(slurm.studyDir, { cycles: 3 }, (m) => assert.fail(m));
      const localPlan = readPlan(local.studyDir);
      const slurmPlan = readPlan(slurm.studyDir);
      assert.deepEqual(slurmPlan.order, localPlan.order);
      assert.equal(slurmPlan.execution.n_cycles, 3);
      const localRuns = readManifest(local.studyDir).runs;
      const slurmManifest = readManifest(slurm.studyDir);
      assert.deepEqual(slurmManifest.runs.map((x) => x.run_id), localRuns.map((x) => x.run_id));
      assert.equal(slurmManifest.n_cycles, 3);
      assert.deepEqual(slurmManifest.counts, { pending: 12, running: 0, completed: 0, failed: 0, skipped: 0, interrupted: 0, invalid: 0 });
      // shuffled: cycles 2 and 3 are not both in config order (seed cycle_seed + cycle)
      const hashes = slurmPlan.configs.map((c) => c.config_hash);
      const cycleOrder = (c: number) => slurmPlan.order.filter((x) => x.cycle === c).map((x) => x.config_hash);
      assert.ok(JSON.stringify(cycleOrder(2)) !== JSON.stringify(hashes) || JSON.stringify(cycleOrder(3)) !== JSON.stringify(hashes));
      // journal: one run_status per added run
      const { readFileSync } = await import('node:fs');
      const events = readFileSync(`${slurm.studyDir}/events.jsonl`, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
      assert.deepEqual(events.filter((e) => e.type === 'run_status').map((e) => e.run.index), [4, 5, 6, 7, 8, 9, 10, 11]);
    } finally {
      local.cleanup();
      slurm.cleanup();
    }
  });
});
