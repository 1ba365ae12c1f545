import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { manifestSchema } from '../../src/study-dir/schema.ts';
import type { StudySnapshot } from '../../src/runner/events.ts';
import { writeSummary } from '../../src/results/summary.ts';
import { readSummary } from '../../src/study-dir/read.ts';
import { resultsText } from '../../src/cli/results.ts';
import { makeGrid, makePlan, makeResult, makeSnapshot, writeStudyDir, type RunFixture } from './fixtures.ts';

/** manifest.json as the runner writes it, from a snapshot (validated by the runner's own schema). */
function manifestOf(snapshot: StudySnapshot) {
  return manifestSchema.parse({
    schema_version: 1,
    study_name: snapshot.study_name,
    study_hash: snapshot.study_hash,
    study_yaml_sha256: null,
    status: snapshot.status,
    n_cycles: snapshot.n_cycles,
    created_at: snapshot.started_at,
    started_at: snapshot.started_at,
    updated_at: snapshot.started_at,
    counts: snapshot.counts,
    runs: snapshot.runs,
  });
}

test('with a manifest: statuses and failure reasons come from the runner snapshot (llem results and writeSummary)', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'llem-studydir-'));
  try {
    const [a, b] = makeGrid([1, 2]);
    const plan = makePlan([a!, b!], 2);
    const snapshot = makeSnapshot(
      plan,
      new Map<string, Partial<RunFixture>>([
        [`${b!.hash}:2`, { status: 'failed', errorType: 'ProcessCrash', message: 'killed by SIGSEGV' }],
        [`${a!.hash}:2`, { status: 'pending' }],
      ]),
      'interrupted',
    );
    const idx = (hash: string, cycle: number) => plan.order.find((o) => o.config_hash === hash && o.cycle === cycle)!.index;
    const results = [
      makeResult(a!, idx(a!.hash, 1), 1),
      makeResult(b!, idx(b!.hash, 1), 1, { energy_per_output_token_j: 0.3 }),
      // A crashed run that still left a result file behind: never averaged in.
      makeResult(b!, idx(b!.hash, 2), 2, { energy_per_output_token_j: 99 }),
    ];
    await writeStudyDir(dir, plan, results);
    await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifestOf(snapshot), null, 2));

    const runs = parse((await resultsText(dir, { format: 'csv', where: [], runs: true })).stdout, { columns: true }) as Array<Record<string, string>>;
    assert.deepEqual(
      runs.map((r) => [r.status, r.error_type]),
      plan.order.map((o) => (o.config_hash === b!.hash && o.cycle === 2 ? ['failed', 'ProcessCrash'] : o.config_hash === a!.hash && o.cycle === 2 ? ['pending', ''] : ['completed', ''])),
    );
    assert.match(runs.find((r) => r.status === 'failed')!.reason, /ProcessCrash: killed by SIGSEGV/);

    await writeSummary(dir);
    const s = readSummary(path.join(dir, 'summary.json'));
    assert.equal(s.study.status, 'interrupted');
    assert.equal(s.study.partial, true);
    const cb = s.configs.find((c) => c.config_hash === b!.hash)!;
    assert.equal(cb.metrics.energy_per_output_token_j!.n, 1);
    assert.equal(cb.metrics.energy_per_output_token_j!.mean, 0.3);
    assert.equal(s.excluded_runs.length, 1);

    await writeFile(path.join(dir, 'manifest.json'), '{"schema_version": 1}');
    await assert.rejects(resultsText(dir, { format: 'table', where: [] }), (err: Error & { exitCode?: number }) => err.exitCode === 2 && /manifest\.json/.test(err.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
