// `llem run <study.yaml|experiment.yaml> [--out DIR] [--yes] [--no-tui] [--json] [--dry-run] [--launcher …]`
// Plans the study, confirms big ones, creates the study dir and hands it to the launcher.
// `executeStudy` (a runner in this process, TUI or plain) is shared with `llem resume`.
import { accessSync, constants as fsConstants, mkdirSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { createStudyDir, type ResumeOptions, type StudyRunner } from '../runner/index.ts';
import type { PlanFile } from '../study/types.ts';
import { StudyInputError } from '../study/errors.ts';
import { localInputIssues } from '../study/local-inputs.ts';
import { CliError, InputError } from './errors.ts';
import { installRunnerSignals, restoreTerminal, writeErr } from './lifecycle.ts';
import { attachPlainReporter } from './plain-reporter.ts';
import { formatDuration } from '../ui/format.ts';
import { addLauncherOptions, launcherFromFlags, presentExecution, type LauncherFlags } from './launch.ts';
import { printPlan } from './plan.ts';
import { chooseFullScreen } from './terminal-choice.ts';

export function register(program: Command): void {
  addLauncherOptions(program.command('run'))
    .description('plan a study (or a single experiment), confirm, and run every (config, cycle) in a fresh child process')
    .argument('<study>', 'study or experiment YAML')
    .option('--out <dir>', 'where the study directory is created', 'results')
    .option('--yes', 'run without confirmation even above max_runs_without_confirmation')
    .option('--no-tui', 'plain progress lines even on a terminal')
    .option('--json', 'print the final status as JSON (as `llem status --json`) on stdout')
    .option('--dry-run', 'print the plan (the same as `llem plan`) and run nothing')
    .action(async (studyPath: string, opts: { out: string; yes?: boolean; tui: boolean; json?: boolean; dryRun?: boolean } & LauncherFlags) => {
      if (opts.dryRun) return printPlan(studyPath, { json: opts.json === true });
      const launcher = launcherFromFlags(opts);
      const { planFile, maxRuns } = await planFromYaml(studyPath);
      // before any study dir exists: a missing dataset or model is bad input, not N failed runs
      const inputIssues = await localInputIssues(studyPath, planFile.configs.map((c) => c.config));
      if (inputIssues.length) throw new StudyInputError(inputIssues);
      // gpu.* settings need NVML and root: refused here, before a study dir exists (exit 2)
      if (launcher.executesHere) (await import('./gpu-preflight.ts')).gpuSettingsPreflight(planFile);
      checkOutDir(opts.out);
      // an n_cycles: auto study may take up to max_cycles per config: that is what is confirmed
      const needsConfirmation = opts.yes !== true && maxRuns > planFile.execution.max_runs_without_confirmation;
      const newStudy = () => launcher.start(createStudyDir(planFile, path.resolve(studyPath), opts.out));
      // decided once: a terminal that falls back to plain lines says why once
      const present = { json: opts.json === true, tui: wantsTui({ tui: opts.tui !== false, json: opts.json }), detach: opts.detach === true };

      // A runner in this process on a terminal: the TUI shows the pre-flight screen, asks for
      // confirmation itself, then creates the study dir (the one switch; also in executeStudy).
      const runTui = launcher.executesHere && present.tui ? await loadTui() : null;
      if (runTui) {
        try {
          process.exitCode = await runTui({
            plan: planFile,
            needsConfirmation,
            createRunner: async () => {
              const execution = await newStudy();
              if (execution.kind !== 'runner') throw new Error(`launcher ${launcher.name} runs nothing in this process`);
              return execution.runner;
            },
            startAtOnce: opts.yes === true,
          });
        } finally {
          restoreTerminal();
        }
        return;
      }
      if (needsConfirmation) await confirmSize(planFile, maxRuns);
      process.exitCode = await presentExecution(launcher, await newStudy(), present);
    });
}

/**
 * `--out` must be (or be creatable as) a writable directory. Missing components are created one
 * at a time (not mkdir -p: Node's recursive mkdir spins forever under /proc), so a refusal names
 * the exact directory and errno and exits 2 instead of failing inside createStudyDir.
 */
function checkOutDir(out: string): void {
  const missing: string[] = [];
  let probe = path.resolve(out);
  for (;;) {
    let st: Stats | null = null;
    try {
      st = statSync(probe);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new InputError(`--out ${out}: cannot use ${probe} (${code ?? (err as Error).message})`);
    }
    if (st) {
      if (!st.isDirectory()) {
        throw new InputError(
          probe === path.resolve(out) ? `--out ${out}: expected a directory, got a file` : `--out ${out}: ${probe} is a file, so the directory cannot be created`,
        );
      }
      try {
        accessSync(probe, fsConstants.W_OK | fsConstants.X_OK);
      } catch {
        throw new InputError(`--out ${out}: ${probe} is not writable`);
      }
      for (const dir of missing.reverse()) {
        try {
          mkdirSync(dir);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'EEXIST') throw new InputError(`--out ${out}: cannot create ${dir} (${code ?? (err as Error).message})`);
        }
      }
      return;
    }
    const parent = path.dirname(probe);
    if (parent === probe) return;
    missing.push(probe);
    probe = parent;
  }
}

/**
 * The plan as `llem plan` makes it (the run history and this machine included, so the pre-flight
 * learns the same way), and the most runs it may take: the planned count, or configs ×
 * max_cycles for `n_cycles: auto`.
 */
async function planFromYaml(studyPath: string): Promise<{ planFile: PlanFile; maxRuns: number }> {
  const { planStudy } = await import('../study/plan.ts');
  const { planInputs } = await import('./plan-inputs.ts');
  const { preflightHistory } = await import('./plan.ts');
  const plan = await planStudy(studyPath, { ...(await planInputs()), ...(await preflightHistory()) });
  return { planFile: plan.toPlanFile(), maxRuns: plan.max_run_count };
}

async function confirmSize(plan: PlanFile, maxRuns: number): Promise<void> {
  const limit = plan.execution.max_runs_without_confirmation;
  const runs = plan.execution.target ? `up to ${maxRuns}` : String(maxRuns);
  const e = plan.estimate;
  const about = `about ${formatDuration(e.total_seconds)}${e.source ? ` (estimated from ${e.source === 'mixed' ? 'history and heuristic' : e.source})` : ''}`;
  const question = `${plan.study_name}: ${runs} runs (above max_runs_without_confirmation: ${limit}), ${about}. Run them? [y/N] `;
  if (!process.stdin.isTTY) {
    throw new InputError(`${plan.source_path}: ${runs} runs exceed execution.max_runs_without_confirmation (${limit}), ${about}; pass --yes to run them`);
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(question)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') throw new CliError('not confirmed; nothing was run', 1);
  } finally {
    rl.close();
  }
}

export interface ExecuteOptions {
  json: boolean;
  tui: boolean;
  /** --yes: the TUI starts without waiting on its pre-flight. */
  yes?: boolean;
  /** A resume's options, so the TUI's pre-flight counts what this resume will run. */
  resume?: ResumeOptions;
}

/** Full screen or plain lines; says on stderr why a terminal gets plain lines (0×0, TERM=dumb). */
export function wantsTui(opts: { tui: boolean; json?: boolean }): boolean {
  return opts.tui && opts.json !== true && chooseFullScreen(process.stdout, writeErr);
}

/** Runs a study in this process to its end; resolves with its exit code (0/1/130). */
export async function executeStudy(runner: StudyRunner, options: ExecuteOptions): Promise<number> {
  const resumeHint = `resume with: llem resume ${runner.studyDir}`;

  // ── The one switch between the TUI and the plain reporter. ──
  const runTui = wantsTui(options) ? await loadTui() : null;
  if (runTui) {
    try {
      return await runTui({ runner, studyDir: runner.studyDir, resumeHint, startAtOnce: options.yes === true, resume: options.resume });
    } finally {
      restoreTerminal();
    }
  }

  const reporter = attachPlainReporter(runner, { json: options.json });
  const uninstall = installRunnerSignals(runner, resumeHint);
  try {
    const code = await runner.run();
    reporter.finish(code);
    return code;
  } finally {
    uninstall();
    reporter.detach();
    restoreTerminal();
  }
}

type RunTui = typeof import('../ui/index.ts').runTui;

export async function loadTui(): Promise<RunTui | null> {
  try {
    const mod = await import('../ui/index.ts');
    return typeof mod.runTui === 'function' ? mod.runTui : null;
  } catch (err) {
    writeErr(`llem: full-screen interface unavailable (${(err as Error).message}); using plain output\n`);
    return null;
  }
}
