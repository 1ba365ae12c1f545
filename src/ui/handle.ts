// The only face of the runner the UI needs. Defined here (not imported from src/runner/index.ts)
// so the UI and its tests do not depend on the runner's implementation: tests drive the UI with
// a scripted fake, `llem run` passes the real StudyRunner, `llem watch` a read-only journal view.
import type { RunnerControls, RunnerEvent } from '../runner/events.ts';
import type { StudySnapshot } from '../study-dir/schema.ts';

export interface RunnerHandle extends RunnerControls {
  /** Returns an unsubscribe function. */
  subscribe(listener: (event: RunnerEvent) => void): () => void;
  snapshot(): StudySnapshot;
  /** Resolves with the study's exit code (0 all completed, 1 some failed, 130 interrupted). */
  run(): Promise<number>;
  /** SIGKILL the current child group (second Ctrl+C). Optional: handles without children lack it. */
  forceKill?(): void;
}
