// `llem worker --study <dir> --run <index>`: the entry of one Slurm array task. Performs one run
// of a study exactly as the local launcher's child does and records it in the shared manifest.
import type { Command } from 'commander';
import path from 'node:path';
import { InputError } from './errors.ts';
import { performSlurmTask } from '../runner/slurm/task.ts';

export function register(program: Command): void {
  program
    .command('worker')
    .description('Perform one run of a study directory (used by Slurm array tasks; --run is the array index)')
    .requiredOption('--study <dir>', 'study directory on a filesystem every node shares')
    .requiredOption('--run <index>', 'run index (the array task id)')
    .option('--worker-entry <path>', 'worker entry to spawn instead of src/worker/main.ts (tests)')
    .action(async (opts: { study: string; run: string; workerEntry?: string }) => {
      if (!/^\d+$/.test(opts.run)) throw new InputError(`--run "${opts.run}": expected a run index (a non-negative integer)`);
      const result = await performSlurmTask(path.resolve(opts.study), Number(opts.run), {
        workerEntry: opts.workerEntry ? path.resolve(opts.workerEntry) : null,
      });
      if (result.kind === 'not_claimed') {
        process.stderr.write(`llem worker: nothing to do: ${result.reason}\n`);
        process.exitCode = 0;
        return;
      }
      process.stderr.write(
        `llem worker: run ${opts.run} ${result.status}${result.errorType ? ` (${result.errorType})` : ''}${result.message ? `: ${result.message}` : ''}\n`,
      );
      process.exitCode = result.status === 'completed' ? 0 : 1;
    });
}
