// `llem status <dir> [--json]`. The JSON form is a stable interface:
// {status, counts: {pending, running, completed, failed, skipped, interrupted},
//  runs: [{index, config_hash, cycle, status, error_type, attempts, result}]}
// A study submitted to Slurm is refreshed from Slurm once first (briefly takes the study lock).
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { readLockOwner, readManifest, statusJson } from '../runner/index.ts';
import { pidAlive } from '../runner/lock.ts';
import { slurmStatePath } from '../runner/slurm/state-file.ts';
import { requireStudyDir } from './study-dir-arg.ts';

export function register(program: Command): void {
  program
    .command('status')
    .description("a study dir's progress from its manifest")
    .argument('<dir>', 'study directory')
    .option('--json', 'machine-readable (stable fields)')
    .action(async (dir: string, opts: { json?: boolean }) => {
      requireStudyDir(dir);
      // A Slurm study: first record what Slurm did to tasks whose worker never could (killed on a
      // failed node, cancelled while pending). One rate-limited squeue shared with every poller.
      if (existsSync(slurmStatePath(path.resolve(dir)))) {
        const { refreshStudyFromSlurm } = await import('../runner/slurm/follow.ts');
        const refresh = await refreshStudyFromSlurm(path.resolve(dir));
        if (refresh.kind === 'unavailable') process.stderr.write(`note: ${refresh.reason}; showing the manifest as recorded\n`);
      }
      const m = readManifest(dir);
      if (opts.json) {
        process.stdout.write(JSON.stringify(statusJson(m), null, 2) + '\n');
        return;
      }
      const c = m.counts;
      const owner = readLockOwner(dir);
      const lines = [
        `${m.study_name}: ${m.status} — ${c.completed}/${m.runs.length} completed, ${c.failed} failed, ${c.skipped} skipped, ${c.interrupted} interrupted, ${c.running} running, ${c.pending} pending`,
      ];
      if (owner && pidAlive(owner.pid)) lines.push(`being run by pid ${owner.pid} since ${owner.started_at}`);
      for (const r of m.runs) {
        const a = r.attempts.at(-1);
        const detail = r.error_type ? `  ${r.error_type}${a?.message ? `: ${a.message.slice(0, 120)}` : ''}` : '';
        const tries = r.attempts.length > 1 ? `  (${r.attempts.length} attempts)` : '';
        lines.push(`  ${a?.run_dir.split('/').pop() ?? r.run_id}  ${r.status}${tries}${detail}`);
      }
      process.stdout.write(lines.join('\n') + '\n');
    });
}
