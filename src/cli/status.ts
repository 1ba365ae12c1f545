// `llem status <dir> [--json]`. The JSON form is a stable interface (src/runner/status-json.ts):
// {status, counts: {pending, running, completed, failed, skipped, interrupted, invalid},
//  runs: [{index, config_hash, cycle, status, error_type, attempts, result, validity, invalid_attempts}],
//  runner: {launcher, pid, host, alive, since, slurm_jobs},
//  stopping: null | {rounds, configs: [{config_hash, reason, cycles, detail}]},   (n_cycles: auto)
//  gpu_settings_unrestored: [one line per GPU a study changed and has not restored]}
// The launcher holding the study first records what happened out of sight (a Slurm study: one
// rate-limited poll, briefly under the study lock); `stopped` means no live runner holds a study
// whose manifest still says running.
import type { Command } from 'commander';
import { statusJson, type StatusJson } from '../runner/index.ts';
import { launcherOf } from '../runner/launchers/index.ts';
import { readManifest, readPlan } from '../study-dir/read.ts';
import { requireStudyDir } from './study-dir-arg.ts';
import { unrestoredLines } from '../gpu-settings/index.ts';

export function register(program: Command): void {
  program
    .command('status')
    .description("a study dir's progress from its manifest")
    .argument('<dir>', 'study directory')
    .option('--json', 'machine-readable (stable fields)')
    .action(async (dir: string, opts: { json?: boolean }) => {
      const studyDir = requireStudyDir(dir);
      const launcher = launcherOf(studyDir);
      const note = await launcher.refresh(studyDir);
      if (note) process.stderr.write(`note: ${note}; showing the manifest as recorded\n`);
      const m = readManifest(studyDir);
      const status = statusJson(m, await launcher.runner(studyDir));
      // GPU settings a study changed and did not put back (a killed runner, a failed restore)
      const gpuLeft = unrestoredLines(studyDir);
      if (opts.json) {
        process.stdout.write(JSON.stringify({ ...status, gpu_settings_unrestored: gpuLeft }, null, 2) + '\n');
        return;
      }
      const c = m.counts;
      const lines = [
        `${m.study_name}: ${status.status} — ${c.completed}/${m.runs.length} completed, ${c.failed} failed, ${c.invalid} invalid, ${c.skipped} skipped, ${c.interrupted} interrupted, ${c.running} running, ${c.pending} pending`,
      ];
      const r = status.runner;
      if (r.alive && r.pid !== null) lines.push(`being run by pid ${r.pid}${r.host ? ` on ${r.host}` : ''} since ${r.since}`);
      if (r.alive && r.slurm_jobs.length > 0) lines.push(`being run by Slurm job(s) ${r.slurm_jobs.join(', ')}`);
      if (status.status === 'stopped') {
        lines.push(`no runner holds this study any more${r.pid !== null ? ` (pid ${r.pid}${r.host ? ` on ${r.host}` : ''} is gone)` : ''}: continue with llem resume ${studyDir}`);
      } else if (!r.alive && (c.pending > 0 || c.interrupted > 0)) {
        lines.push(`continue with llem resume ${studyDir}`);
      }
      // while a runner holds the study the settings are changed by design; it restores them itself
      if (!r.alive) lines.push(...gpuLeft);
      if (status.stopping) lines.push(...stoppingLines(studyDir, status.stopping));
      for (const run of m.runs) {
        const a = run.attempts.at(-1);
        const detail = run.error_type ? `  ${run.error_type}${a?.message ? `: ${a.message.slice(0, 120)}` : ''}` : run.status === 'invalid' && a?.message ? `  ${a.message}` : '';
        const tries = run.attempts.length > 1 ? `  (${run.attempts.length} attempts)` : '';
        lines.push(`  ${a?.run_dir.split('/').pop() ?? run.run_id}  ${run.status}${tries}${detail}`);
      }
      process.stdout.write(lines.join('\n') + '\n');
    });
}

/** n_cycles: auto: one line per config, why it stopped or that it is still measuring. */
function stoppingLines(studyDir: string, stopping: NonNullable<StatusJson['stopping']>): string[] {
  let labelOf = new Map<string, string>();
  try {
    labelOf = new Map(readPlan(studyDir).configs.map((c) => [c.config_hash, c.label]));
  } catch {
    // the manifest alone still says it, by config hash
  }
  const stopped = stopping.configs.filter((c) => c.reason !== null).length;
  const lines = [`n_cycles: auto: ${stopping.rounds} round(s) decided, ${stopped} of ${stopping.configs.length} configs stopped`];
  for (const c of stopping.configs) {
    const what = c.reason ? `stopped ${c.reason} after ${c.cycles} cycle(s)${c.detail ? ` — ${c.detail}` : ''}` : `measuring (${c.cycles} cycle(s) so far)`;
    lines.push(`  ${c.config_hash} ${labelOf.get(c.config_hash) ?? ''}  ${what}`);
  }
  return lines;
}
