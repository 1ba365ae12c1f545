// llem command line: one file per command, each exporting register(program).
import { Command, CommanderError } from 'commander';
import { exitCodeOf } from './errors.ts';
import * as plan from './plan.ts';
import * as run from './run.ts';
import * as resume from './resume.ts';
import * as status from './status.ts';
import * as repair from './repair-manifest.ts';
import * as doctor from './doctor.ts';
import * as results from './results.ts';
import * as report from './report.ts';
import * as compare from './compare.ts';
import * as exportCmd from './export.ts';
import * as watch from './watch.ts';
import * as worker from './worker.ts';
import * as cancel from './cancel.ts';
import * as restoreGpu from './restore-gpu.ts';

const program = new Command();
program
  .name('llem')
  .description('Measure the energy and speed of LLM inference: plan, run, resume and report studies.')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

for (const mod of [plan, run, resume, status, repair, doctor, results, report, compare, exportCmd, watch, worker, cancel, restoreGpu]) {
  mod.register(program);
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // help/version exit 0; usage errors are bad input
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    const code = exitCodeOf(err);
    process.stderr.write(`llem: ${err instanceof Error ? err.message : String(err)}\n`);
    if (code === null && err instanceof Error && err.stack && process.env.LLEM_DEBUG) process.stderr.write(err.stack + '\n');
    process.exitCode = code ?? 1;
  }
}
