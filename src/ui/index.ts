// Entry points of the full-screen interface: `runTui` for `llem run` on a TTY, `watchStudy` for
// `llem watch <dir>`.
import { join } from 'node:path';
import type { RunnerControls } from '../runner/events.ts';
import type { ResumeOptions } from '../runner/resume-rules.ts';
import { JOURNAL_FILE } from '../study-dir/files.ts';
import { readManifest, readPlan } from '../study-dir/read.ts';
import type { RunStatus } from '../study-dir/schema.ts';
import type { PlanFile } from '../study/types.ts';
import { formatDuration } from './format.ts';
import type { RunnerHandle } from './handle.ts';
import { followJournal, type JournalFollower } from './journal.ts';
import { preflightLines, resumeWillRun, runsToGo, type RunsToGo } from './preflight.ts';
import { selectHeader, selectPreflight } from './selectors.ts';
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
  /** --yes: start at once; the pre-flight is written on the normal screen, above the full screen. */
  startAtOnce?: boolean;
  /** What the pre-flight counts; default every run of the plan. */
  toGo?: RunsToGo | null;
}

/** The shape src/cli/run.ts calls with: a runner over an existing study dir (a resume). */
export interface RunTuiForRunnerOptions extends TerminalIo {
  runner: RunnerHandle;
  studyDir: string;
  resumeHint?: string;
  startAtOnce?: boolean;
  /** The resume's options, so the pre-flight counts what this resume will run, and under which timeout. */
  resume?: Pick<ResumeOptions, 'retryFailed' | 'cycles' | 'experimentTimeoutSeconds'>;
}

/**
 * What a resume of this study dir will run: from the manifest (before run() applies the resume
 * rules) and the resume options; its timeout is the resume's --experiment-timeout, else the one an
 * earlier resume recorded (src/runner/resume-rules.ts keeps it), else the plan's.
 */
function resumeToGo(studyDir: string, plan: PlanFile, runner: RunnerHandle, resume: RunTuiForRunnerOptions['resume']): RunsToGo | null {
  let statuses: RunStatus[];
  try {
    statuses = runner.snapshot().runs.map((r) => r.status);
  } catch {
    return null; // an unreadable manifest: run() reports it
  }
  let recordedTimeoutS: number | null = null;
  try {
    recordedTimeoutS = readManifest(studyDir).timeout_override?.experiment_timeout_seconds ?? null;
  } catch {
    // the same: run() reports it; the pre-flight shows the plan's timeouts meanwhile
  }
  return runsToGo(plan, statuses, {
    willRun: resumeWillRun(resume?.retryFailed === true),
    addedCycles: resume?.cycles !== undefined ? resume.cycles - plan.execution.n_cycles : 0,
    timeoutOverrideS: resume?.experimentTimeoutSeconds ?? recordedTimeoutS,
  });
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
  const lines = [
    `llem: study ${state.plan.study_name} ${verb} after ${formatDuration(h.elapsedS)}: ${c.completed} completed, ${c.failed} failed, ${c.skipped} skipped, ${c.interrupted} interrupted, ${c.pending} pending. Results in ${dir}`,
  ];
  // how to get the runs that did not complete, in the words of the command that does it
  if (c.failed + c.skipped > 0) lines.push(`  retry the ${c.failed} failed and ${c.skipped} skipped run(s) with: llem resume ${dir} --retry-failed`);
  lines.push(`  next: llem results ${dir}   ·   llem report ${dir}`);
  return lines.join('\n');
}

/** The pre-flight as plain lines, for the normal screen above the full screen (--yes). */
function preludeOf(plan: PlanFile, toGo: RunsToGo | null): string {
  const model = selectPreflight({ plan, toGo });
  return preflightLines(model, Date.now()).join('\n') + '\nstarting at once (--yes)\n';
}

/**
 * Pre-flight screen, then (Enter) the study screen over a runner from `createRunner`. Resolves
 * with the study's exit code: 0 all completed, 1 some failed, 130 interrupted (Ctrl+C, or
 * cancelled on the pre-flight screen with Ctrl+C); `q` on the pre-flight screen resolves 0 and
 * runs nothing. Rejects (terminal restored) if `createRunner` or the runner throws.
 */
export async function runTui(input: RunTuiOptions | RunTuiForRunnerOptions): Promise<number> {
  let opts: RunTuiOptions;
  if ('runner' in input) {
    const plan = readPlan(input.studyDir);
    opts = { ...input, plan, needsConfirmation: false, createRunner: async () => input.runner, toGo: resumeToGo(input.studyDir, plan, input.runner, input.resume) };
  } else {
    opts = input;
  }
  let handle: RunnerHandle | null = null;
  let unsubscribe: (() => void) | null = null;
  let aborted = false;
  let started = false;
  let closed = false;
  let runPromise: Promise<number> | null = null;
  const { mountSession } = await loadSession();
  return mountSession(
    {
      plan: opts.plan,
      readOnly: false,
      needsConfirmation: opts.needsConfirmation,
      stage: 'preflight',
      toGo: opts.toGo ?? null,
      startAtOnce: opts.startAtOnce === true,
      prelude: opts.startAtOnce ? preludeOf(opts.plan, opts.toGo ?? null) : undefined,
    },
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
      // Closing the terminal on the pre-flight runs nothing; once started, the study goes on headless.
      onHangup: (store) => (store.getState().stage === 'preflight' ? 'exit' : 'headless'),
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
 * events.jsonl (followed) for everything that happens. `q` leaves (0), Ctrl+C leaves (130), a
 * closed terminal leaves (130); once the study has finished, its final state stays a few seconds
 * (longer while the user presses keys) and the watch exits with the study's code. The study itself
 * is never touched.
 */
export async function watchStudy(studyDir: string, io: TerminalIo & { pollMs?: number } = {}): Promise<number> {
  const plan = readPlan(studyDir);
  let follower: JournalFollower | null = null;
  const { mountSession } = await loadSession();
  return mountSession({ plan, readOnly: true, needsConfirmation: false, stage: 'preflight', toGo: null }, io, {
    onMount(store) {
      follower = followJournal(join(studyDir, JOURNAL_FILE), (event) => store.dispatch({ type: 'runner', event }), { pollMs: io.pollMs });
      void follower.poll().then(() => store.flush(), () => undefined);
    },
    controls: (): RunnerControls | null => null,
    cleanup() {
      follower?.stop();
    },
    // watching only: a closed terminal has nobody left to show anything to
    onHangup: () => 'exit',
    finalMessage: (_code, store) => (store.getState().finished ? summaryLine(store, store.getState().finished!.status) : null),
  });
}
