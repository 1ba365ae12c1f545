// Mounting the Ink app in the terminal, and every way out of it. Exactly one `done()` per
// session: it unmounts, restores the terminal (once), removes every handler and timer.
// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { render } from 'ink';
import type { RunnerControls } from '../runner/events.ts';
import type { PlanFile } from '../study/types.ts';
import { App, type AppController } from './components/app.tsx';
import { UiEnvContext } from './components/ui-env.tsx';
import type { RunsToGo } from './preflight.ts';
import { exitCodeOfStatus, selectWatchExitInMs } from './selectors.ts';
import { initialState, QUIET_PHASES, type Stage } from './state.ts';
import { createUiStore, type UiStore } from './store.ts';
import { enterFullScreen } from './terminal.ts';
import { glyphsFor, themeFromEnv } from './theme.ts';
import { shareInkOutputCaches } from './ink-output-cache.ts';

// before the first frame: unchanged lines are not re-tokenised every frame (see ink-output-cache.ts)
await shareInkOutputCaches();

const PUBLISH_INTERVAL_MS = 1000;
const QUIET_PUBLISH_INTERVAL_MS = 2000;

export interface TerminalIo {
  stdin?: NodeJS.ReadStream;
  stdout?: NodeJS.WriteStream;
  env?: NodeJS.ProcessEnv;
  /** Install SIGTERM/SIGINT/SIGHUP handlers (default true; tests with fake streams pass false). */
  handleSignals?: boolean;
  /** What a second Ctrl+C does (default: exit the process with 130). */
  forceExit?: (code: number) => void;
  /** Clock tick for elapsed/ETA (default 1000 ms). */
  tickMs?: number;
  /**
   * Tests: Ink's debug mode, which writes every frame whole. Without it, Ink draws no live frames
   * at all when CI is set, so tests over fake streams could see nothing.
   */
  debugFrames?: boolean;
  /** Least time between two background renders (default 1000 ms, 2000 ms in the baseline and measure phases; keys render at once). */
  minPublishIntervalMs?: number;
}

export interface SessionHooks {
  /** Called once the session is mounted, with the store (tests and watch use it). */
  onMount?(store: UiStore, session: SessionApi): void;
  /** Called by Enter on the pre-flight screen. */
  start?(session: SessionApi): void;
  /** Ctrl+C (first press) after the session has a runner. */
  abort?(session: SessionApi): void;
  controls?(): RunnerControls | null;
  /** Second Ctrl+C: kill the child now; resolves when it is reasonable to exit. */
  forceKill?(): Promise<void>;
  /** Called when the session ends, before the promise resolves (stop followers, unsubscribe). */
  cleanup?(): void;
  /** The line printed on the normal screen after the terminal is restored. */
  finalMessage?(code: number, store: UiStore): string | null;
  /**
   * The terminal hung up (SIGHUP): 'exit' ends the session now (nothing started, or only
   * watching), 'headless' stops drawing and lets the study run to its end.
   */
  onHangup?(store: UiStore): 'exit' | 'headless';
}

export interface SessionApi {
  store: UiStore;
  done(code: number): void;
  fail(error: unknown): void;
}

export interface SessionOptions {
  plan: PlanFile;
  readOnly: boolean;
  needsConfirmation: boolean;
  stage: Stage;
  /** What the pre-flight counts (a resume: what remains); null = every run of the plan. */
  toGo?: RunsToGo | null;
  /** Written on the normal screen before the full screen opens (stays above it in the scrollback). */
  prelude?: string;
  /** Start as if Enter had been pressed on the pre-flight (--yes). */
  startAtOnce?: boolean;
}

export function mountSession(
  opts: SessionOptions,
  io: TerminalIo,
  hooks: SessionHooks,
): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stdin = io.stdin ?? process.stdin;
  const theme = themeFromEnv(io.env ?? process.env);
  const env = { theme, glyphs: glyphsFor(theme) };
  // Background updates (runner events, the clock) reach React at most once a second, and every
  // two seconds while a run is in its baseline or measure phase: an Ink frame costs ~10-15 ms of
  // CPU and the parent must stay under 1 % of a core while energy is measured. Keys and resizes
  // render at once.
  const store = createUiStore(
    initialState({
      plan: opts.plan,
      readOnly: opts.readOnly,
      needsConfirmation: opts.needsConfirmation,
      toGo: opts.toGo ?? null,
      columns: stdout.columns || 80,
      rows: stdout.rows || 24,
      nowMs: Date.now(),
      stage: opts.stage,
    }),
    {
      minPublishIntervalMs:
        io.minPublishIntervalMs ?? ((state) => (state.live?.phase && QUIET_PHASES.has(state.live.phase) ? QUIET_PUBLISH_INTERVAL_MS : PUBLISH_INTERVAL_MS)),
    },
  );
  if (opts.prelude) stdout.write(opts.prelude);
  const terminal = enterFullScreen({ stdout, stdin }, theme);

  return new Promise<number>((resolve, reject) => {
    let finished = false;
    let hungUp = false;
    let forcing = false;
    const signalHandlers: Array<[NodeJS.Signals, () => void]> = [];
    const tick = setInterval(() => {
      store.dispatch({ type: 'tick', nowMs: Date.now() });
      // `llem watch` after the study ended: the final state has been on screen long enough
      const state = store.getState();
      if (state.finished && selectWatchExitInMs(state) === 0) session.done(exitCodeOfStatus(state.finished.status));
    }, io.tickMs ?? 1000);

    const cleanups: Array<() => void> = [];
    const teardown = () => {
      clearInterval(tick);
      for (const c of cleanups) c();
      for (const [signal, handler] of signalHandlers) process.off(signal, handler);
      try {
        hooks.cleanup?.();
      } finally {
        try {
          ink.unmount();
        } catch {
          // already unmounted (error path)
        }
        store.dispose();
        terminal.restoreTerminal();
      }
    };

    const teardownOnce = () => {
      if (finished) return;
      finished = true;
      teardown();
    };

    const session: SessionApi = {
      store,
      done(code) {
        if (finished) return;
        finished = true;
        teardown();
        const message = hungUp ? null : hooks.finalMessage?.(code, store);
        if (message) stdout.write(message + '\n');
        resolve(code);
      },
      fail(error) {
        if (finished) return;
        finished = true;
        teardown();
        reject(error);
      },
    };

    const controller: AppController = {
      controls: () => hooks.controls?.() ?? null,
      start: () => hooks.start?.(session),
      exit: (code) => session.done(code),
      abort: () => {
        const state = store.getState();
        if (state.aborting) {
          // Second Ctrl+C: the runner did not stop in time. Kill the child group, leave with the
          // terminal restored, whatever the runner is still doing.
          if (forcing) return;
          forcing = true;
          const leave = () => {
            teardownOnce();
            (io.forceExit ?? ((code: number) => process.exit(code)))(130);
            resolve(130); // only reached when forceExit did not end the process (tests)
          };
          void (hooks.forceKill?.() ?? Promise.resolve()).then(leave, leave);
          return;
        }
        if (!hooks.abort || !hooks.controls?.()) {
          session.done(130);
          return;
        }
        store.dispatch({ type: 'abort_requested' });
        store.flush();
        hooks.abort(session);
      },
    };

    const ink = render(
      <UiEnvContext.Provider value={env}>
        <App store={store} controller={controller} stdout={stdout} />
      </UiEnvContext.Provider>,
      {
        stdout,
        stdin,
        // Ctrl+C in raw mode is a byte, not SIGINT: we handle it (abort the run, exit 130).
        exitOnCtrlC: false,
        patchConsole: false,
        maxFps: 10,
        incrementalRendering: false,
        debug: io.debugFrames ?? false,
      },
    );
    ink.waitUntilExit().catch((error: unknown) => session.fail(error));

    if (io.handleSignals ?? true) {
      // A write to a terminal that hung up fails asynchronously (EIO); it must not kill the study.
      const onStdoutError = () => {
        hungUp = true;
      };
      stdout.on('error', onStdoutError);
      cleanups.push(() => stdout.off('error', onStdoutError));
      const onTerm = () => controller.abort();
      const onHup = () => {
        hungUp = true;
        // Nothing started yet, or only watching: there is nobody to wait for, leave.
        if ((hooks.onHangup?.(store) ?? 'headless') === 'exit') {
          session.done(130);
          return;
        }
        // The study runs: stop drawing, keep it running headless to its end.
        try {
          ink.unmount();
        } catch {
          // already unmounted
        }
        terminal.restoreTerminal();
      };
      signalHandlers.push(['SIGTERM', onTerm], ['SIGINT', onTerm], ['SIGHUP', onHup]);
      for (const [signal, handler] of signalHandlers) process.on(signal, handler);
    }
    hooks.onMount?.(store, session);
    if (opts.startAtOnce) controller.start();
  });
}
