// `llem restore-gpu <dir> [--json] [--force] [--node <name>]`: puts back the GPU power limit and clocks a study
// changed, from its gpu-state.json, without resuming it (for someone who will not resume after a
// runner was killed). Exit 0: restored, or nothing to restore; 2: not a study dir, an unreadable
// gpu-state.json, or a live runner holds the study; 1: a GPU could not be restored (the reason is
// printed and the record kept for another try).
import type { Command } from 'commander';
import { changedGpuSettings, GpuSettingsError, openGpuControl, restoreGpuSettings, restoreReportLines, thisHost, type RestoreReport } from '../gpu-settings/index.ts';
import { readLockOwner } from '../study-dir/read.ts';
import { pidAlive } from '../runner/lock.ts';
import { CliError, InputError } from './errors.ts';
import { requireStudyDir } from './study-dir-arg.ts';

export function register(program: Command): void {
  program
    .command('restore-gpu')
    .description("put back the GPU power limit and clocks a study changed (from its gpu-state.json), without resuming it")
    .argument('<dir>', 'study directory')
    .option('--json', 'print the restore report as JSON')
    .option('--force', 'restore even while a live runner on this machine holds the study')
    .option('--node <name>', "the record to restore, when this machine's hostname is not the name it was kept under (a Slurm node name)")
    .action(async (dir: string, opts: { json?: boolean; force?: boolean; node?: string }) => {
      const studyDir = requireStudyDir(dir);
      const host = opts.node ?? thisHost();
      let pending: ReturnType<typeof changedGpuSettings>;
      try {
        pending = changedGpuSettings(studyDir, host);
      } catch (err) {
        if (err instanceof GpuSettingsError) throw new InputError(err.message);
        throw err;
      }
      const owner = readLockOwner(studyDir);
      if (!opts.force && owner && owner.hostname === host && owner.pid !== process.pid && pidAlive(owner.pid)) {
        throw new InputError(
          `${dir}: the study is being run by pid ${owner.pid} since ${owner.started_at}; it restores the GPU itself when it stops (q, Ctrl+C, or the end). Pass --force to restore now anyway (its current run would then measure under the restored setting)`,
        );
      }
      let report: RestoreReport;
      if (pending.changed.length === 0) {
        // Nothing of this node to restore: no need for NVML (or a GPU) at all.
        report = { status: 'nothing_to_do', host, devices: [], otherHosts: pending.otherHosts };
      } else {
        const opened = openGpuControl();
        if (opened.status === 'unavailable') throw new CliError(`${dir}: cannot restore the GPU settings it lists: ${opened.reason}`, 1);
        try {
          report = restoreGpuSettings({ studyDir, control: opened.control, host });
        } finally {
          opened.control.close();
        }
      }
      const text = opts.json ? JSON.stringify(report, null, 2) + '\n' : restoreReportLines(dir, report).join('\n') + '\n';
      await new Promise<void>((resolve, reject) => (report.status === 'failed' && !opts.json ? process.stderr : process.stdout).write(text, (err) => (err ? reject(err) : resolve())));
      process.exitCode = report.status === 'failed' ? 1 : 0;
    });
}
