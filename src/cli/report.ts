import type { Command } from 'commander';
import { CliError } from './errors.ts';

// Placeholder until its issue lands; it says so rather than pretending.
export function register(program: Command): void {
  program
    .command('report')
    .description('(not built yet)')
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => {
      throw new CliError('llem report is not built yet in this version.', 1);
    });
}
