// `--launcher` and its flags for `llem run` and `llem resume`, and how an execution is presented:
// a runner in this process (full-screen view or plain lines, signals), or runs executing
// elsewhere (followed in the study view or in plain lines, or left with --detach). Which launcher
// does what is src/runner/launchers; nothing here knows what Slurm is beyond its flags.
import type { Command } from 'commander';
import { workerCommandFor, workerEntryFromEnv, type ResumeOptions } from '../runner/index.ts';
import { launcherNamed, type Execution, type StudyLauncher } from '../runner/launchers/index.ts';
import { parseTimeOption } from '../runner/slurm/array.ts';
import { readManifest } from '../study-dir/read.ts';
import { statusJson } from '../runner/status-json.ts';
import { InputError } from './errors.ts';
import { writeErr, writeOut } from './lifecycle.ts';
import { executeStudy, wantsTui } from './run.ts';

export interface LauncherFlags {
  launcher?: string;
  partition?: string;
  gpusPerRun?: string;
  time?: string;
  maxConcurrent?: string;
  sbatchArg?: string[];
  detach?: boolean;
}

/** Adds the launcher flags to `llem run` / `llem resume`. */
export function addLauncherOptions(cmd: Command): Command {
  return cmd
    .option('--launcher <name>', 'where runs execute: local (default) or slurm', 'local')
    .option('--partition <name>', 'slurm: partition of the job array')
    .option('--gpus-per-run <n>', 'slurm: GPUs allocated to each run (sbatch --gpus)')
    .option('--time <limit>', 'slurm: time limit per run: auto (from the pre-flight estimate) or HH:MM:SS', 'auto')
    .option('--max-concurrent <k>', 'slurm: at most K runs at once (array %K)')
    .option('--sbatch-arg <arg>', 'slurm: extra sbatch argument (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--detach', 'slurm: return once the array is submitted (follow later with llem watch <dir>)');
}

function positiveInt(flag: string, v: string | undefined): number | null {
  if (v === undefined) return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InputError(`${flag}: expected a whole number ≥ 1, got "${v}"`);
  return n;
}

/** The launcher the flags name, its flags checked. Errors: InputError (exit 2). */
export function launcherFromFlags(flags: LauncherFlags): StudyLauncher {
  const name = flags.launcher ?? 'local';
  if (name !== 'local' && name !== 'slurm') throw new InputError(`--launcher "${name}": expected local or slurm`);
  // the same override in every launcher (tests, custom workers)
  const workerEntry = workerEntryFromEnv();
  if (name === 'local') {
    const slurmOnly = (['partition', 'gpusPerRun', 'maxConcurrent', 'sbatchArg', 'detach'] as const).filter((k) => flags[k] !== undefined);
    if (slurmOnly.length > 0) throw new InputError(`--${slurmOnly[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --launcher slurm`);
    return launcherNamed('local', { workerCommand: workerEntry ? workerCommandFor(workerEntry) : undefined });
  }
  let time = flags.time ?? 'auto';
  if (time !== 'auto') {
    try {
      time = parseTimeOption(time);
    } catch (err) {
      throw new InputError((err as Error).message);
    }
  }
  return launcherNamed('slurm', {
    partition: flags.partition ?? null,
    gpusPerRun: positiveInt('--gpus-per-run', flags.gpusPerRun),
    time,
    maxConcurrent: positiveInt('--max-concurrent', flags.maxConcurrent),
    sbatchArgs: flags.sbatchArg ?? [],
    workerEntry,
    say: writeErr,
  });
}

export interface PresentOptions {
  json: boolean;
  tui: boolean;
  detach: boolean;
  /** --yes: a runner here starts without waiting on the TUI's pre-flight. */
  yes?: boolean;
  /** A resume's options: the TUI's pre-flight counts what the resume will run. */
  resume?: ResumeOptions;
}

/** Presents an execution to its end (or detaches); resolves with the exit code (0/1/130). */
export async function presentExecution(launcher: StudyLauncher, execution: Execution, options: PresentOptions): Promise<number> {
  if (execution.kind === 'nothing') {
    writeErr(execution.message);
    return execution.exitCode;
  }
  if (execution.kind === 'runner') return executeStudy(execution.runner, { json: options.json, tui: wantsTui(options), yes: options.yes, resume: options.resume });
  const { remote } = execution;
  writeErr(remote.summary);
  if (options.detach) {
    const d = remote.detached(options.json);
    writeOut(d.stdout);
    writeErr(d.stderr);
    return 0;
  }
  if (wantsTui(options) && process.stdin.isTTY) {
    // the full-screen view of `llem watch`, with this process keeping the record current meanwhile
    const watch = launcher.watch(remote.studyDir);
    try {
      const { watchStudy } = await import('../ui/index.ts');
      return await watchStudy(remote.studyDir);
    } finally {
      watch.stop();
    }
  }
  const abort = new AbortController();
  const onSigint = () => {
    writeErr(remote.onInterrupt);
    abort.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    const code = await remote.followPlain({ line: (t) => writeErr(t + '\n'), signal: abort.signal });
    if (options.json) writeOut(JSON.stringify(statusJson(readManifest(remote.studyDir), await launcher.runner(remote.studyDir))) + '\n');
    return code;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
