// `llem run <study.yaml|experiment.yaml> [--out DIR] [--yes] [--no-tui] [--json]`
// Plans the study, confirms big ones, creates the study dir and runs it. `executeStudy` is shared
// with `llem resume`.
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { nodeArgsFor } from '../node-entry.ts';
import { StudyRunner, createStudyDir, type ResumeOptions, type WorkerCommand } from '../runner/index.ts';
import type { PlanFile } from '../study/types.ts';
import { CliError, InputError } from './errors.ts';
import { installRunnerSignals, restoreTerminal, writeErr } from './lifecycle.ts';
import { attachPlainReporter } from './plain-reporter.ts';

export function register(program: Command): void {
  program
    .command('run')
    .description('plan a study (or a single experiment), confirm, and run every (config, cycle) in a fresh child process')
    .argument('<study>', 'study or experiment YAML')
    .option('--out <dir>', 'where the study directory is created', 'results')
    .option('--yes', 'run without confirmation even above max_runs_without_confirmation')
    .option('--no-tui', 'plain progress lines even on a terminal')
    .option('--json', 'print the final status as JSON (as `llem status --json`) on stdout')
    .action(async (studyPath: string, opts: { out: string; yes?: boolean; tui: boolean; json?: boolean }) => {
      const planFile = await planFromYaml(studyPath);
      await confirmSize(planFile, opts.yes === true);
      const studyDir = createStudyDir(planFile, path.resolve(studyPath), opts.out);
      await executeStudy(studyDir, { json: opts.json === true, tui: opts.tui !== false });
    });
}

async function planFromYaml(studyPath: string): Promise<PlanFile> {
  let planStudy: ((p: string) => Promise<{ toPlanFile(): PlanFile }> | { toPlanFile(): PlanFile }) | undefined;
  try {
    ({ planStudy } = (await import('../study/plan.ts' as string)) as { planStudy?: typeof planStudy });
  } catch (err) {
    throw new CliError(`llem run: the study planner is not available in this build (${(err as Error).message})`, 1);
  }
  if (typeof planStudy !== 'function') throw new CliError('llem run: src/study/plan.ts exports no planStudy()', 1);
  const plan = await planStudy(studyPath);
  return plan.toPlanFile();
}

async function confirmSize(plan: PlanFile, yes: boolean): Promise<void> {
  const limit = plan.execution.max_runs_without_confirmation;
  const runs = plan.order.length;
  if (yes || runs <= limit) return;
  const question = `${plan.study_name}: ${runs} runs (above max_runs_without_confirmation: ${limit}), about ${Math.round(plan.estimate.total_seconds / 60)} min. Run them? [y/N] `;
  if (!process.stdin.isTTY) {
    throw new InputError(`${plan.source_path}: ${runs} runs exceed execution.max_runs_without_confirmation (${limit}); pass --yes to run them`);
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(question)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') throw new CliError('not confirmed; nothing was run', 1);
  } finally {
    rl.close();
  }
}

/** `LLEM_WORKER_ENTRY=<file.ts>` replaces the real worker (tests, e2e, custom workers). */
export function workerCommandFromEnv(): WorkerCommand | undefined {
  const entry = process.env.LLEM_WORKER_ENTRY;
  if (!entry) return undefined;
  const abs = path.resolve(entry);
  return (specPath) => ({ command: process.execPath, args: nodeArgsFor(abs, ['--run-spec', specPath]) });
}

export interface ExecuteOptions {
  json: boolean;
  tui: boolean;
  resume?: ResumeOptions;
}

/** Runs a study dir to its end and sets process.exitCode (0/1/130). */
export async function executeStudy(studyDir: string, options: ExecuteOptions): Promise<void> {
  const runner = new StudyRunner(studyDir, { workerCommand: workerCommandFromEnv(), resume: options.resume });
  const resumeHint = `resume with: llem resume ${runner.studyDir}`;

  // ── The one switch between the TUI and the plain reporter. ──
  if (options.tui && !options.json && process.stdout.isTTY) {
    const runTui = await loadTui();
    if (runTui) {
      try {
        process.exitCode = await runTui({ runner, studyDir: runner.studyDir, resumeHint });
      } finally {
        restoreTerminal();
      }
      return;
    }
  }

  const reporter = attachPlainReporter(runner, { json: options.json });
  const uninstall = installRunnerSignals(runner, resumeHint);
  try {
    const code = await runner.run();
    reporter.finish(code);
    process.exitCode = code;
  } finally {
    uninstall();
    reporter.detach();
    restoreTerminal();
  }
}

type RunTui = (args: { runner: StudyRunner; studyDir: string; resumeHint: string }) => Promise<number>;

async function loadTui(): Promise<RunTui | null> {
  try {
    const mod = (await import('../ui/index.ts' as string)) as { runTui?: RunTui };
    return typeof mod.runTui === 'function' ? mod.runTui : null;
  } catch {
    return null;
  }
}
