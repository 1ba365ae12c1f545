// `llem resume <dir> [--retry-failed] [--cycles N] [--force] [--yes] [--no-tui] [--json]`
// Completed runs never rerun; running and interrupted ones do; failed ones with --retry-failed;
// a changed study YAML is refused unless --force; --cycles tops the study up to N cycles.
import type { Command } from 'commander';
import { InputError } from './errors.ts';
import { executeStudy } from './run.ts';
import { requireStudyDir } from './study-dir-arg.ts';
import { addLauncherOptions, refuseLocalWhileSlurmActive, resumeOnSlurm, slurmOptionsFrom, type SlurmFlags } from './slurm-launch.ts';

export function register(program: Command): void {
  addLauncherOptions(program.command('resume'))
    .description('continue a study dir where it stopped (completed runs are never rerun)')
    .argument('<dir>', 'study directory')
    .option('--retry-failed', 'also rerun failed and skipped runs (new attempt, history kept)')
    .option('--cycles <n>', 'top the study up to this many cycles')
    .option('--force', 'resume even though the study YAML changed since the study started')
    .option('--no-tui', 'plain progress lines even on a terminal')
    .option('--json', 'print the final status as JSON on stdout')
    .option('--yes', 'start at once, without waiting on the pre-flight')
    .action(async (dir: string, opts: { retryFailed?: boolean; cycles?: string; force?: boolean; tui: boolean; json?: boolean; yes?: boolean } & SlurmFlags) => {
      const slurm = slurmOptionsFrom(opts);
      requireStudyDir(dir);
      let cycles: number | undefined;
      if (opts.cycles !== undefined) {
        cycles = Number(opts.cycles);
        if (!Number.isInteger(cycles) || cycles < 1) throw new InputError(`--cycles: expected a whole number ≥ 1, got "${opts.cycles}"`);
      }
      if (slurm) {
        // --launcher slurm: resubmit what is not completed as a new job array (src/cli/slurm-launch.ts)
        process.exitCode = await resumeOnSlurm(dir, slurm, {
          detach: opts.detach === true,
          json: opts.json === true,
          tui: opts.tui !== false,
          retryFailed: opts.retryFailed === true,
          force: opts.force === true,
          cycles,
        });
        return;
      }
      // a study sent to Slurm must not also run here while its tasks may still run
      await refuseLocalWhileSlurmActive(dir);
      await executeStudy(dir, {
        json: opts.json === true,
        tui: opts.tui !== false,
        resume: { retryFailed: opts.retryFailed === true, cycles, force: opts.force === true },
        yes: opts.yes === true,
      });
    });
}
