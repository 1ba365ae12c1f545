// Process lifecycle of a study run: signals, terminal output that survives a dropped SSH link,
// terminal restore hooks, exit codes (0 completed, 1 a run failed, 2 bad input, 130 interrupted).
//
// SIGINT/SIGTERM: kill the current child group now, mark it interrupted, write the manifest, say
// where to resume from, exit 130. A second SIGINT within SECOND_SIGINT_WINDOW_MS SIGKILLs the group
// and exits at once. SIGHUP: keep running headless; stop writing to the dead terminal.
import type { StudyRunner } from '../runner/index.ts';
import { FORCED_EXIT_GRACE_MS, SECOND_SIGINT_WINDOW_MS } from '../runner/timing.ts';

export const EXIT_OK = 0;
export const EXIT_RUN_FAILED = 1;
export const EXIT_BAD_INPUT = 2;
export const EXIT_INTERRUPTED = 130;

let headless = false;
const restoreHooks = new Set<() => void>();

/** True once the terminal went away (SIGHUP, EIO/EPIPE on stdout or stderr). */
export function isHeadless(): boolean {
  return headless;
}

export function goHeadless(): void {
  headless = true;
}

/** Writes to stderr unless the terminal is gone; never throws. */
export function writeErr(text: string): void {
  if (headless) return;
  try {
    process.stderr.write(text);
  } catch {
    headless = true;
  }
}

/** Writes to stdout unless the terminal is gone; never throws. */
export function writeOut(text: string): void {
  if (headless) return;
  try {
    process.stdout.write(text);
  } catch {
    headless = true;
  }
}

/** Registers an idempotent terminal restore (the TUI's); all run once on every exit path. */
export function onTerminalRestore(hook: () => void): () => void {
  restoreHooks.add(hook);
  return () => restoreHooks.delete(hook);
}

export function restoreTerminal(): void {
  for (const hook of [...restoreHooks]) {
    restoreHooks.delete(hook);
    try {
      hook();
    } catch {
      // restoring must never throw on an exit path
    }
  }
}

let streamGuardsInstalled = false;
function installStreamGuards(): void {
  if (streamGuardsInstalled) return;
  streamGuardsInstalled = true;
  // A write to a closed terminal raises EIO/EPIPE asynchronously; an unhandled one would kill the study.
  for (const s of [process.stdout, process.stderr]) s.on('error', () => (headless = true));
}

/**
 * Routes SIGINT, SIGTERM and SIGHUP to the runner while a study runs. Returns the uninstaller.
 * `resumeHint` is printed on interruption ("resume with: llem resume <dir>").
 */
export function installRunnerSignals(runner: StudyRunner, resumeHint: string): () => void {
  installStreamGuards();
  let firstInterruptAt = 0;
  const interrupt = (signal: NodeJS.Signals) => {
    const t = Date.now();
    if (firstInterruptAt && signal === 'SIGINT' && t - firstInterruptAt < SECOND_SIGINT_WINDOW_MS) {
      writeErr('\nsecond Ctrl+C: killing the run now and exiting\n');
      runner.forceKill();
      // give the child's exit and the manifest write a moment, then leave no matter what
      const done = runner.run().catch(() => EXIT_INTERRUPTED);
      const timer = setTimeout(() => finalExit(), FORCED_EXIT_GRACE_MS);
      void done.then(() => {
        clearTimeout(timer);
        finalExit();
      });
      return;
    }
    if (firstInterruptAt) return;
    firstInterruptAt = t;
    writeErr(`\n${signal}: stopping the current run (Ctrl+C again to force)…\n`);
    void runner.abortNow();
  };
  const finalExit = () => {
    restoreTerminal();
    writeErr(`${resumeHint}\n`);
    process.exit(EXIT_INTERRUPTED);
  };
  const onSigint = () => interrupt('SIGINT');
  const onSigterm = () => interrupt('SIGTERM');
  const onSighup = () => {
    // the SSH link dropped without tmux: keep measuring, stop talking to the dead terminal
    headless = true;
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  process.on('SIGHUP', onSighup);
  return () => {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    process.off('SIGHUP', onSighup);
  };
}
