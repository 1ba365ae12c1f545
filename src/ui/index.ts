// Entry points of the full-screen interface: `runTui` for `llem run` on a TTY, `watchStudy` for
// `llem watch <dir>`.
import { join } from 'node:path';
import type { RunnerControls } from '../runner/events.ts';
import { JOURNAL_FILE } from '../study-dir/files.ts';
import { readPlan } from '../study-dir/read.ts';
import type { PlanFile } from '../study/types.ts';
import { formatDuration } from './format.ts';
import type { RunnerHandle } from './handle.ts';
import { followJournal, type JournalFollower } from './journal.ts';
import { selectHeader } from './selectors.ts';
import type { TerminalIo } from './session.tsx';
import type { UiStore } from './store.ts';

export type { RunnerHandle } from './handle.ts';
export type { TerminalIo } from './session.tsx';

export interface RunTuiOptions extends TerminalIo {
  plan: PlanFile;
  /** Over the plan's confirmation limit: Enter asks again before starting. */
  needsConfirmation: boolean;
  createRunner: () => Promise<RunnerHandle>;
  /** Printed after an interruption ("resume with: llem resume <dir>"). */
  resumeHint?: string;
}

/** The shape src/cli/run.ts calls with: a runner over an existing study dir (already confirmed). */
export interface RunTuiForRunnerOptions extends TerminalIo {
  runner: RunnerHandle;
  studyDir: string;
  resumeHint?: string;
}

/**
 * React and Ink, loaded on first use with React's production build: the development build costs
 * ~20 % more CPU per frame, and the parent must stay out of the measurement. NODE_ENV is set only
 * while React loads (it decides then), so the workers we spawn do not inherit it.
 */
async function loadSession(): Promise<typeof import('./session.tsx')> {
  const previous = process.env.NODE_ENV;
  if (previous === undefined) process.env.NODE_ENV = 'production';
  try {
    return await import('./session.tsx');
  } finally {
    if (previous === undefined) delete process.env.NODE_ENV;
  }
}

function summaryLine(store: UiStore, verb: string): string {
  const state = store.getState();
  const h = selectHeader(state);
  const c = h.counts;
  const dir = state.study?.study_dir ?? '';
  return `llem: study ${state.plan.study_name} ${verb} after ${formatDuration(h.elapsedS)}: ${c.completed} completed, ${c.failed} failed, ${c.skipped} skipped, ${c.interrupted} interrupted, ${c.invalid} invalid, ${c.pending} pending. Results in ${dir}\n  next: llem results ${dir}   ·   llem report ${dir}`;
}

/**
 * Pre-flight screen, then (Enter) the study screen over a runner from `createRunner`. Resolves
 * with the study's exit code: 0 all completed, 1 some failed, 130 interrupted (Ctrl+C, or
 * cancelled on the pre-flight screen with Ctrl+C); `q` on the pre-flight screen resolves 0 and
 * runs nothing. Rejects (terminal restored) if `createRunner` or the runner throws.
 */
export async function runTui(input: RunTuiOptions | RunTuiForRunnerOptions): Promise<number> {
  const opts: RunTuiOptions =
    'runner' in input
      ? { ...input, plan: readPlan(input.studyDir), needsConfirmation: false, createRunner: async () => input.runner }
      : input;
  let handle: RunnerHandle | null = null;
  let unsubscribe: (() => void) | null = null;
  let aborted = false;
  let started = false;
  let closed = false;
  let runPromise: Promise<number> | null = null;
  const { mountSession } = await loadSession();
  return mountSession(
    { plan: opts.plan, readOnly: false, needsConfirmation: opts.needsConfirmation, stage: 'preflight' },
    opts,
    {
      start(session) {
        if (started) return;
        started = true;
        session.store.dispatch({ type: 'start_requested' });
        session.store.flush();
        opts.createRunner().then(
          (h) => {
            // Ctrl+C while the runner was being created: the session is over, run nothing.
            if (closed) return;
            try {
              handle = h;
              unsubscribe = h.subscribe((event) => session.store.dispatch({ type: 'runner', event }));
              session.store.dispatch({ type: 'snapshot', snapshot: h.snapshot() });
              session.store.flush();
              runPromise = h.run();
            } catch (error) {
              session.fail(error);
              return;
            }
            runPromise.then(
              (code) => session.done(aborted ? 130 : code),
              (error: unknown) => session.fail(error),
            );
          },
          (error: unknown) => session.fail(error),
        );
      },
      controls: () => handle,
      abort(session) {
        aborted = true;
        handle?.abortNow().catch((error: unknown) => session.fail(error));
      },
      forceKill() {
        handle?.forceKill?.();
        // The kill is sent; give the runner a moment to write the manifest, then leave anyway.
        return runPromise ? Promise.race([runPromise.catch(() => 130), new Promise((r) => setTimeout(r, 1500).unref())]).then(() => undefined) : Promise.resolve();
      },
      cleanup() {
        closed = true;
        unsubscribe?.();
      },
      finalMessage(code, store) {
        if (!handle) return code === 130 ? 'llem: interrupted before the study started; nothing was run.' : 'llem: cancelled; nothing was run.';
        const verb = code === 130 ? 'interrupted' : code === 0 ? 'completed' : 'finished with failures';
        const studyDir = store.getState().study?.study_dir;
        const hint = opts.resumeHint ?? (studyDir ? `resume with: llem resume ${studyDir}` : null);
        return summaryLine(store, verb) + (code === 130 && hint ? `\n${hint}` : '');
      },
    },
  );
}

/**
 * The study screen, read-only, over a study another process runs: plan.json for the layout,
 * events.jsonl (followed) for everything that happens. `q` leaves (0), Ctrl+C leaves (130); the
 * study itself is never touched.
 */
export async function watchStudy(studyDir: string, io: TerminalIo & { pollMs?: number } = {}): Promise<number> {
  const plan = readPlan(studyDir);
  let follower: JournalFollower | null = null;
  const { mountSession } = await loadSession();
  return mountSession({ plan, readOnly: true, needsConfirmation: false, stage: 'preflight' }, io, {
    onMount(store) {
      follower = followJournal(join(studyDir, JOURNAL_FILE), (event) => store.dispatch({ type: 'runner', event }), { pollMs: io.pollMs });
      void follower.poll().then(() => store.flush(), () => undefined);
    },
    controls: (): RunnerControls | null => null,
    cleanup() {
      follower?.stop();
    },
    finalMessage: () => null,
  });
}
