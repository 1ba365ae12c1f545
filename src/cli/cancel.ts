// `llem cancel <dir>`: scancel a study's Slurm job arrays and mark its unfinished runs interrupted.
import type { Command } from 'commander';
import path from 'node:path';
import { cancelStudy } from '../runner/slurm/launcher.ts';
import { isSlurmStudy } from '../runner/slurm/state-file.ts';
import { InputError } from './errors.ts';
import { requireStudyDir } from './study-dir-arg.ts';
import { unrestoredLines } from '../gpu-settings/index.ts';

export function register(program: Command): void {
  program
    .command('cancel')
    .description('Cancel the Slurm jobs of a study (scancel) and mark its unfinished runs interrupted')
    .argument('<dir>', 'study directory')
    .action(async (dir: string) => {
      requireStudyDir(dir);
      if (!isSlurmStudy(path.resolve(dir))) {
        throw new InputError(`${dir}: this study was never submitted to Slurm (no slurm.json), or a local resume has taken it over since; stop a local run with Ctrl+C or q`);
      }
      const r = await cancelStudy(path.resolve(dir));
      process.stdout.write(
        `cancelled Slurm job${r.jobIds.length === 1 ? '' : 's'} ${r.jobIds.join(', ')}; ${r.interrupted.length} run(s) marked interrupted; resume with: llem resume ${dir} --launcher slurm\n`,
      );
      // each task restores its own GPU on Slurm's SIGTERM; say which could not (gpu-state.json keeps why)
      const gpuLeft = unrestoredLines(dir);
      if (gpuLeft.length) process.stderr.write(gpuLeft.map((l) => `warning: ${l}\n`).join(''));
    });
}
