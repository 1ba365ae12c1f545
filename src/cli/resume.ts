// `llem resume <dir> [--retry-failed] [--cycles N] [--force] [--experiment-timeout S]
// [--stall-timeout S] [--yes] [--no-tui] [--json] [--launcher …]`
// Completed runs never rerun; running and interrupted ones do; failed ones with --retry-failed;
// a changed study YAML is refused unless --force; --cycles tops the study up to N cycles; the
// timeouts replace the plan's for every later attempt (recorded in each attempt). The rules are
// src/runner/resume-rules.ts, the same for every launcher.
import type { Command } from 'commander';
import type { ResumeOptions } from '../runner/index.ts';
import { InputError } from './errors.ts';
import { addLauncherOptions, launcherFromFlags, presentExecution, type LauncherFlags } from './launch.ts';
import { requireStudyDir } from './study-dir-arg.ts';

function positiveSeconds(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InputError(`${flag}: expected a number of seconds > 0, got "${v}"`);
  return n;
}

export function register(program: Command): void {
  addLauncherOptions(program.command('resume'))
    .description('continue a study dir where it stopped (completed runs are never rerun)')
    .argument('<dir>', 'study directory')
    .option('--retry-failed', 'also rerun failed and skipped runs (new attempt, history kept)')
    .option('--cycles <n>', 'top the study up to this many cycles')
    .option('--force', 'resume even though the study YAML changed since the study started')
    .option('--experiment-timeout <seconds>', 'total timeout of every run from now on (replaces the study\'s; kept for later resumes)')
    .option('--stall-timeout <seconds>', 'stall timeout (no heartbeat) of every run from now on (kept for later resumes)')
    .option('--no-tui', 'plain progress lines even on a terminal')
    .option('--json', 'print the final status as JSON on stdout')
    .option('--yes', 'start at once, without waiting on the pre-flight')
    .action(
      async (
        dir: string,
        opts: { retryFailed?: boolean; cycles?: string; force?: boolean; experimentTimeout?: string; stallTimeout?: string; tui: boolean; json?: boolean; yes?: boolean } & LauncherFlags,
      ) => {
        const launcher = launcherFromFlags(opts);
        const studyDir = requireStudyDir(dir);
        let cycles: number | undefined;
        if (opts.cycles !== undefined) {
          cycles = Number(opts.cycles);
          if (!Number.isInteger(cycles) || cycles < 1) throw new InputError(`--cycles: expected a whole number ≥ 1, got "${opts.cycles}"`);
        }
        const resume: ResumeOptions = {
          retryFailed: opts.retryFailed === true,
          cycles,
          force: opts.force === true,
          experimentTimeoutSeconds: positiveSeconds('--experiment-timeout', opts.experimentTimeout),
          stallTimeoutSeconds: positiveSeconds('--stall-timeout', opts.stallTimeout),
        };
        process.exitCode = await presentExecution(launcher, await launcher.resume(studyDir, resume), {
          json: opts.json === true,
          tui: opts.tui !== false,
          detach: opts.detach === true,
          yes: opts.yes === true,
          resume,
        });
      },
    );
}
