// Pure helpers for a job array submission: the `--array` spec, the time limit, the task script.
import type { Estimate } from '../../study/types.ts';

/** `[0,1,2,3,5,7,8,9]` + 4 → `0-3,5,7-9%4`. Indices must be non-negative integers. */
export function arraySpec(indices: number[], maxConcurrent: number | null): string {
  if (indices.length === 0) throw new Error('arraySpec: no indices');
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  for (const i of sorted) if (!Number.isInteger(i) || i < 0) throw new Error(`arraySpec: bad index ${i}`);
  const parts: string[] = [];
  let start = sorted[0]!;
  let prev = start;
  const flush = () => parts.push(start === prev ? `${start}` : `${start}-${prev}`);
  for (const i of sorted.slice(1)) {
    if (i === prev + 1) {
      prev = i;
      continue;
    }
    flush();
    start = prev = i;
  }
  flush();
  return maxConcurrent !== null && maxConcurrent > 0 ? `${parts.join(',')}%${maxConcurrent}` : parts.join(',');
}

/** Seconds → Slurm `D-HH:MM:SS` / `HH:MM:SS`, rounded up to whole minutes (Slurm's granularity). */
export function slurmTime(seconds: number): string {
  const minutes = Math.max(1, Math.ceil(seconds / 60));
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const m = minutes % 60;
  const hms = `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:00`;
  return d > 0 ? `${d}-${hms}` : hms;
}

/** Checks `--time` as given by the user: `HH:MM:SS`, `MM:SS`, `D-HH:MM:SS`, or minutes. */
export function parseTimeOption(value: string): string {
  const v = value.trim();
  if (/^\d+$/.test(v) || /^\d+:\d{1,2}(:\d{1,2})?$/.test(v) || /^\d+-\d{1,2}(:\d{1,2}){0,2}$/.test(v)) return v;
  throw new Error(`--time "${value}": expected auto, HH:MM:SS, MM:SS, D-HH:MM:SS or minutes`);
}

/**
 * The per-task time limit from the pre-flight estimate: the slowest (high) estimate among the
 * configs in the array, doubled, plus 5 minutes for process start, model load variance and the
 * shared filesystem; plus, for each of `remeasure.count` re-measurements a task may make of a run
 * the validity gate judged invalid, one more estimate and `remeasure.gapSeconds` (the config gap
 * and the longest cooldown before it). One limit applies to every task of an array.
 */
export function timeLimitFromEstimate(estimate: Estimate, configHashes: Iterable<string>, remeasure: { count: number; gapSeconds: number } = { count: 0, gapSeconds: 0 }): string {
  const wanted = new Set(configHashes);
  let worst = 0;
  for (const c of estimate.per_config) {
    if (!wanted.has(c.config_hash)) continue;
    worst = Math.max(worst, c.high_seconds, c.run_seconds);
  }
  if (worst === 0) worst = 30 * 60; // no estimate for these configs: a generous default
  return slurmTime(worst * (2 + remeasure.count) + 300 + remeasure.count * remeasure.gapSeconds);
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The batch script of one array: every task runs the same worker entry, `llem worker --study
 * <dir> --run $SLURM_ARRAY_TASK_ID` (the array index is the run index). `exec` keeps the worker
 * the direct child of slurmstepd so Slurm's SIGTERM (time limit, scancel) reaches it.
 */
export function taskScript(options: { nodePath: string; llemArgs: string[]; studyDir: string; workerEntry?: string | null }): string {
  const argv = [
    options.nodePath,
    ...options.llemArgs,
    'worker',
    '--study',
    options.studyDir,
    ...(options.workerEntry ? ['--worker-entry', options.workerEntry] : []),
  ]
    .map(shellQuote)
    .join(' ');
  return [
    '#!/bin/bash',
    '# Written by llem (launcher slurm): one task of the job array = one run of the study.',
    'set -u',
    `exec ${argv} --run "$SLURM_ARRAY_TASK_ID"`,
    '',
  ].join('\n');
}
