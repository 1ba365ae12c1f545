// The study as published to readers (UI, `llem watch`, results): the manifest's runs plus the
// control state the runner holds in memory. Read from the manifest when no runner is at hand.
import path from 'node:path';
import type { RunResult } from '../results/schema.ts';
import { readManifest } from './read.ts';
import type { Manifest, RunHeadline, RunRecord, StudySnapshot } from './schema.ts';

export function snapshotOf(studyDir: string, m: Manifest, control: { paused: boolean; quit_requested: boolean } = { paused: m.status === 'paused', quit_requested: false }): StudySnapshot {
  return {
    study_dir: studyDir,
    study_name: m.study_name,
    study_hash: m.study_hash,
    status: m.status,
    n_cycles: m.n_cycles,
    started_at: m.started_at,
    counts: { ...m.counts },
    runs: m.runs.map(runSnapshotOf),
    paused: control.paused,
    quit_requested: control.quit_requested,
    ...(m.rounds ? { rounds: structuredClone(m.rounds) } : {}),
  };
}

/** A copy of a run record that later transitions do not change under a listener's feet. */
export function runSnapshotOf(r: RunRecord): RunRecord {
  return structuredClone(r);
}

/** The study as its manifest records it (throws StudyDirError for a damaged one). */
export function readStudySnapshot(studyDir: string): StudySnapshot {
  const dir = path.resolve(studyDir);
  return snapshotOf(dir, readManifest(dir));
}

export function headlineOf(result: RunResult): RunHeadline {
  const started = Date.parse(result.started_at);
  const ended = Date.parse(result.ended_at);
  return {
    energy_j: result.metrics.energy_j,
    energy_per_output_token_j: result.metrics.energy_per_output_token_j,
    output_tokens_per_s: result.metrics.output_tokens_per_s,
    window_s: result.metrics.window_s,
    duration_s: Number.isFinite(started) && Number.isFinite(ended) ? (ended - started) / 1000 : null,
    flags: result.flags.map((f) => f.code),
    energy_unavailable_reason: result.metrics.energy_unavailable_reason,
  };
}
