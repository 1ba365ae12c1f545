// `llem watch <dir>`: follow a study another process runs (nohup, another tmux pane, a Slurm
// job) from its plan.json and events.jsonl. Read-only: it never sends a control. The launcher
// holding the study keeps its record current meanwhile (a Slurm study: a poller that takes the
// lock briefly to record what Slurm did) and says when no runner holds it any more.
// On a terminal: the full-screen study view. Otherwise (or --no-tui): one line per run change,
// until the study finishes.
import path from 'node:path';
import type { Command } from 'commander';
import { launcherOf, type StudyWatch } from '../runner/launchers/index.ts';
import type { RunnerEvent } from '../runner/events.ts';
import { JOURNAL_FILE } from '../study-dir/files.ts';
import { readManifest } from '../study-dir/read.ts';
import { headlineText } from './plain-reporter.ts';
import { requireStudyDir } from './study-dir-arg.ts';
import { chooseFullScreen } from './terminal-choice.ts';

export function register(program: Command): void {
  program
    .command('watch')
    .description('follow a running study from another terminal, read-only (journal + plan)')
    .argument('<dir>', 'study directory')
    .option('--no-tui', 'plain lines even on a terminal')
    .action(async (dir: string, opts: { tui: boolean }) => {
      const studyDir = requireStudyDir(dir);
      const fullScreen = opts.tui !== false && process.stdin.isTTY === true && chooseFullScreen(process.stdout, (t) => process.stderr.write(t));
      const watch = launcherOf(studyDir).watch(studyDir, fullScreen ? undefined : (t) => process.stderr.write(t + '\n'));
      try {
        if (fullScreen) {
          const { watchStudy } = await import('../ui/index.ts');
          process.exitCode = await watchStudy(studyDir);
          return;
        }
        process.exitCode = await watchPlain(studyDir, watch);
      } finally {
        watch.stop();
      }
    });
}

/** How often plain watch checks that some runner still holds the study (see watchPlain). */
const NOT_RUNNING_CHECK_MS = 2000;

/** Prints run changes from the journal until `study_finished`; exits with the study's code. */
async function watchPlain(studyDir: string, watch: StudyWatch): Promise<number> {
  const { followJournal } = await import('../ui/journal.ts');
  return new Promise<number>((resolve) => {
    const line = (text: string) => process.stdout.write(text + '\n');
    const follower = followJournal(path.join(studyDir, JOURNAL_FILE), (event: RunnerEvent) => {
      switch (event.type) {
        case 'study_started':
          line(`study ${event.snapshot.study_name}: ${event.snapshot.runs.length} runs, ${event.snapshot.counts.completed} completed so far`);
          break;
        case 'run_status': {
          const r = event.run;
          const metrics = r.status === 'completed' ? `  ${headlineText(r.headline)}` : '';
          line(`${r.run_id} ${r.status}${r.error_type ? ` (${r.error_type})` : ''}${metrics}`);
          break;
        }
        case 'warning':
          line(`warning: ${event.message}`);
          break;
        case 'study_finished': {
          const c = event.counts;
          line(`study ${event.status}: ${c.completed} completed, ${c.failed} failed, ${c.skipped} skipped, ${c.interrupted} interrupted, ${c.pending} pending`);
          stop(event.status === 'completed' ? 0 : event.status === 'interrupted' ? 130 : 1);
          break;
        }
        default:
          break;
      }
    });
    void follower.poll();
    // A journal without study_finished (truncated, or its runner was SIGKILLed) and no runner
    // alive: nothing will ever come, so say so instead of waiting forever. Two checks in a row,
    // seconds apart, so a watch started just before `llem run` takes its lock still follows it.
    let idleChecks = 0;
    const notRunning = setInterval(() => {
      void (async () => {
        idleChecks = (await watch.runnerGone()) ? idleChecks + 1 : 0;
        if (idleChecks < 2) return;
        let status = 'unknown';
        try {
          status = readManifest(studyDir).status;
        } catch {
          /* a damaged manifest: still nothing to follow */
        }
        line(`no runner is running this study (manifest status: ${status}); nothing to follow — see llem status ${studyDir}, continue with llem resume ${studyDir}`);
        stop(status === 'completed' ? 0 : status === 'interrupted' ? 130 : 1);
      })();
    }, NOT_RUNNING_CHECK_MS);
    const stop = (code = 130) => {
      clearInterval(notRunning);
      follower.stop();
      resolve(code);
    };
    process.once('SIGINT', () => stop(130));
    process.once('SIGTERM', () => stop(130));
  });
}
