// `llem watch <dir>`: follow a study another process runs (nohup, another tmux pane, a Slurm
// job) from its plan.json and events.jsonl. Read-only: it never sends a control, and takes the lock
// only for a Slurm study, briefly, when its poller records what Slurm did.
// On a terminal: the full-screen study view. Otherwise (or --no-tui): one line per run change,
// until the study finishes.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import type { RunnerEvent } from '../runner/events.ts';
import { InputError } from './errors.ts';
import { headlineText } from './plain-reporter.ts';
import { chooseFullScreen } from './terminal-choice.ts';

export function register(program: Command): void {
  program
    .command('watch')
    .description('follow a running study from another terminal, read-only (journal + plan)')
    .argument('<dir>', 'study directory')
    .option('--no-tui', 'plain lines even on a terminal')
    .action(async (dir: string, opts: { tui: boolean }) => {
      const studyDir = path.resolve(dir);
      if (!existsSync(path.join(studyDir, 'plan.json'))) {
        throw new InputError(`${path.join(studyDir, 'plan.json')}: not found (is ${dir} a study directory?)`);
      }
      const fullScreen = opts.tui !== false && process.stdin.isTTY === true && chooseFullScreen(process.stdout, (t) => process.stderr.write(t));
      // A Slurm study: poll Slurm while open (rate-limited, shared cache; takes the study lock
      // briefly to record tasks Slurm killed before their worker could), see slurm/follow.ts.
      const slurmPoller = existsSync(path.join(studyDir, 'slurm.json'))
        ? (await import('../runner/slurm/follow.ts')).pollSlurmWhileWatching(studyDir, { warn: fullScreen ? undefined : (t) => process.stderr.write(t + '\n') })
        : null;
      try {
        if (fullScreen) {
          const { watchStudy } = await import('../ui/index.ts');
          process.exitCode = await watchStudy(studyDir);
          return;
        }
        process.exitCode = await watchPlain(studyDir);
      } finally {
        slurmPoller?.stop();
      }
    });
}

/** How often plain watch checks that some runner still holds the study (see watchPlain). */
const NOT_RUNNING_CHECK_MS = 2000;

/** Prints run changes from the journal until `study_finished`; exits with the study's code. */
async function watchPlain(studyDir: string): Promise<number> {
  const { followJournal } = await import('../ui/journal.ts');
  return new Promise<number>((resolve) => {
    const line = (text: string) => process.stdout.write(text + '\n');
    const follower = followJournal(path.join(studyDir, 'events.jsonl'), (event: RunnerEvent) => {
      switch (event.type) {
        case 'study_started':
          line(`study ${event.snapshot.study_name}: ${event.snapshot.runs.length} runs, ${event.snapshot.counts.completed} completed so far`);
          break;
        case 'run_status': {
          const r = event.run;
          const h = r.headline;
          const metrics = r.status === 'completed' ? `  ${headlineText(h)}` : '';
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
    const notRunning = existsSync(path.join(studyDir, 'slurm.json'))
      ? null
      : setInterval(() => {
          void (async () => {
            const { readLockOwner, readManifest } = await import('../runner/index.ts');
            const { pidAlive } = await import('../runner/lock.ts');
            const owner = readLockOwner(studyDir);
            const alive = owner !== null && (owner.hostname !== os.hostname() || pidAlive(owner.pid));
            idleChecks = alive ? 0 : idleChecks + 1;
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
      if (notRunning) clearInterval(notRunning);
      follower.stop();
      resolve(code);
    };
    process.once('SIGINT', () => stop(130));
    process.once('SIGTERM', () => stop(130));
  });
}
