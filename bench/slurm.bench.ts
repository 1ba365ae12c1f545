// Slurm launcher figures: the cost of one manifest transition made under the shared study lock
// (what every array task pays twice: claim and finish), alone and with 8 processes contending,
// and, when a Slurm cluster answers (SLURM_CONF), sbatch/squeue latency for a 100-task array.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from '../src/node-entry.ts';
import { createStudyDir } from '../src/runner/study-dir.ts';
import { readManifest } from '../src/study-dir/read.ts';
import { writeSlurmState } from '../src/runner/slurm/state-file.ts';
import { claimRun, finishRun } from '../src/runner/slurm/transitions.ts';
import { sbatch, scancel, squeue } from '../src/runner/slurm/commands.ts';
import type { PlanFile } from '../src/study/types.ts';

function plan(nRuns: number): PlanFile {
  const config_hash = 'ab'.repeat(8);
  return {
    schema_version: 1,
    study_name: 'bench',
    study_hash: 'f'.repeat(16),
    source_path: '/nonexistent.yaml',
    created_at: new Date().toISOString(),
    execution: {
      n_cycles: nRuns, cycle_order: 'sequential', shuffle_seed: null, config_gap_seconds: 0, cycle_gap_seconds: 0,
      cooldown: null, experiment_timeout_seconds: 60, stall_timeout_seconds: 30, max_runs_without_confirmation: 1e9, parallel: 'off',
    },
    cycle_seed: 1,
    configs: [{ config_hash, label: 'bench', config: {} as never }],
    skipped: [],
    order: Array.from({ length: nRuns }, (_, index) => ({ index, config_hash, cycle: index + 1 })),
    warnings: [],
    estimate: { total_seconds: 0, low_seconds: 0, high_seconds: 0, finish_at: '', per_config: [] },
  };
}

function studyWithSubmission(root: string, nRuns: number): string {
  const yaml = path.join(root, 'study.yaml');
  writeFileSync(yaml, 'name: bench\n');
  const dir = createStudyDir(plan(nRuns), yaml, path.join(root, `out-${nRuns}`));
  writeSlurmState(dir, {
    schema_version: 1,
    provisional: [],
    submissions: [{
      job_id: '1', submitted_at: new Date().toISOString(), indices: Array.from({ length: nRuns }, (_, i) => i), array: `0-${nRuns - 1}`,
      time_limit: '10', partition: null, gpus_per_run: null, sbatch_args: [], worker_entry: null, script: 'x', cancelled_at: null, released_at: null,
    }],
  });
  return dir;
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const identity = { jobId: '1', taskJobId: null, node: 'bench' };
const end = { status: 'failed' as const, error_type: 'ProcessCrash' as const, message: 'bench', phase_reached: null, stderr_tail: null, tree_cleanup: null, result_path: null, result: null, validity: null };
const policy = { max_invalid_retries: 2 };
const timeouts = () => ({ timeout_seconds: 60, stall_timeout_seconds: 30 });

/** Child mode: claim+finish every run in `indices` (argv), as concurrent array tasks would. */
async function child(dir: string, indices: number[]): Promise<void> {
  for (const i of indices) {
    const c = await claimRun(dir, i, identity, timeouts);
    if (c.kind === 'claimed') await finishRun(dir, i, c.attempt, end, policy);
  }
}

export default async function bench(): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'llem-slurm-bench-'));
  try {
    for (const n of [100, 1000]) {
      const dir = studyWithSubmission(root, n);
      const ms: number[] = [];
      for (let i = 0; i < Math.min(n, 100); i++) {
        const t0 = performance.now();
        const c = await claimRun(dir, i, identity, timeouts);
        if (c.kind === 'claimed') await finishRun(dir, i, c.attempt, end, policy);
        ms.push((performance.now() - t0) / 2);
      }
      console.log(`transition under the study lock, ${n}-run study, one process: median ${pct(ms, 0.5).toFixed(1)} ms, p95 ${pct(ms, 0.95).toFixed(1)} ms`);
    }

    const procs = 8;
    const perProc = 25;
    const dir = studyWithSubmission(root, procs * perProc);
    const self = fileURLToPath(import.meta.url);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: procs }, (_, p) =>
        new Promise<void>((resolve, reject) => {
          const idx = Array.from({ length: perProc }, (_, k) => p * perProc + k).join(',');
          const c = spawn(process.execPath, nodeArgsFor(self, ['--child', dir, idx]), { stdio: ['ignore', 'ignore', 'inherit'] });
          c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bench child exited ${code}`))));
        }),
      ),
    );
    const wall = (performance.now() - t0) / 1000;
    const m = readManifest(dir);
    const recorded = m.runs.filter((r) => r.status === 'failed' && r.attempts.length === 1).length;
    console.log(
      `${procs} processes × ${perProc} runs contending (claim + finish each): ${wall.toFixed(1)} s wall incl. process start, ${((procs * perProc * 2) / wall).toFixed(0)} transitions/s, ${recorded}/${procs * perProc} runs recorded (lost updates: ${procs * perProc - recorded})`,
    );

    if (process.env.SLURM_CONF) {
      try {
        execFileSync('sinfo', ['-h'], { stdio: 'ignore', timeout: 10_000 });
        const script = path.join(root, 'noop.sh');
        writeFileSync(script, '#!/bin/bash\ntrue\n');
        const t1 = performance.now();
        const jobId = await sbatch(script, ['--array=0-99%1', '--hold', `--output=/dev/null`, '--time=1']);
        const sbatchMs = performance.now() - t1;
        const t2 = performance.now();
        const q = await squeue([jobId]);
        const squeueMs = performance.now() - t2;
        await scancel([jobId]);
        console.log(`sbatch --parsable of a 100-task array: ${sbatchMs.toFixed(0)} ms; one squeue -r over it (${q.length} tasks): ${squeueMs.toFixed(0)} ms`);
      } catch (err) {
        console.log(`Slurm figures skipped: ${(err as Error).message.split('\n')[0]}`);
      }
    } else {
      console.log('Slurm figures skipped: SLURM_CONF unset (eval "$(scripts/slurm/up.sh)" first)');
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  await child(process.argv[3]!, process.argv[4]!.split(',').map(Number));
}
