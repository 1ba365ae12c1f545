// `llem repair-manifest <dir>`: rebuild manifest.json from plan.json, events.jsonl and the run dirs.
import type { Command } from 'commander';
import { repairManifest } from '../runner/index.ts';
import { requireStudyDir } from './study-dir-arg.ts';

export function register(program: Command): void {
  program
    .command('repair-manifest')
    .description('rebuild a damaged manifest.json from plan.json, the journal and the run dirs')
    .argument('<dir>', 'study directory')
    .action(async (dir: string) => {
      requireStudyDir(dir);
      const r = await repairManifest(dir);
      process.stdout.write(
        `rebuilt ${r.manifestPath}: ${r.runs} runs, ${r.fromJournal} from the journal, ${r.fromRunDirs} completed from run dirs` +
          (r.badJournalLines > 0 ? `, ${r.badJournalLines} unreadable journal lines skipped` : '') +
          '\n',
      );
    });
}
