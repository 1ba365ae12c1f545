// The control state of a study while a runner holds it, as one union with one transition function
// (like ChildHandle's state machine), instead of separate paused / quit / stop flags:
//
//   running ⇄ paused           p                      (no new run starts while paused)
//   running|paused → quitting   q  (q again: back)     (the runs in progress finish, then stop)
//   any → stopping              Ctrl+C / lost lock     (the runs in progress are killed now)
//
// The runner acts on what changed (events, waking the scheduler, cutting a gap); the recorded
// study status and the exit code follow from the final state (studyOutcome).
import type { StatusCounts, StudyStatus } from '../study-dir/schema.ts';

export type StopReason = 'abort' | 'compromised';

export type StudyRunState =
  | { status: 'running' }
  | { status: 'paused' }
  /** Finish the runs in progress, then stop; `paused` is the state a cancelled quit returns to. */
  | { status: 'quitting'; paused: boolean }
  | { status: 'stopping'; reason: StopReason };

export type StudyCommand =
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'quit'; requested: boolean }
  | { type: 'stop'; reason: StopReason };

export const initialRunState: StudyRunState = { status: 'running' };

/** The next state; the same object when the command changes nothing. */
export function nextRunState(state: StudyRunState, command: StudyCommand): StudyRunState {
  if (state.status === 'stopping') return state; // the first reason to stop is the one recorded
  switch (command.type) {
    case 'stop':
      return { status: 'stopping', reason: command.reason };
    case 'pause':
      if (state.status === 'running') return { status: 'paused' };
      if (state.status === 'quitting' && !state.paused) return { status: 'quitting', paused: true };
      return state;
    case 'resume':
      if (state.status === 'paused') return { status: 'running' };
      if (state.status === 'quitting' && state.paused) return { status: 'quitting', paused: false };
      return state;
    case 'quit':
      if (command.requested) return state.status === 'quitting' ? state : { status: 'quitting', paused: state.status === 'paused' };
      if (state.status !== 'quitting') return state;
      return state.paused ? { status: 'paused' } : { status: 'running' };
  }
}

/** A pause was asked for (it holds once the runs in progress end). */
export function pauseRequested(state: StudyRunState): boolean {
  return state.status === 'paused' || (state.status === 'quitting' && state.paused);
}

export function quitRequested(state: StudyRunState): boolean {
  return state.status === 'quitting';
}

/** No new run may start, and the scheduler must wind down. */
export function mustStop(state: StudyRunState): boolean {
  return state.status === 'quitting' || state.status === 'stopping';
}

/**
 * The study's recorded status and the exit code once the scheduler is done: a lost lock ends
 * interrupted with 1; an abort, a quit or runs left pending end interrupted with 130; a failed run,
 * or one that ended invalid after its re-measurements, makes it failed (1); otherwise completed (0).
 */
export function studyOutcome(state: StudyRunState, counts: StatusCounts): { status: StudyStatus; exitCode: number } {
  if (state.status === 'stopping' && state.reason === 'compromised') return { status: 'interrupted', exitCode: 1 };
  if (state.status === 'stopping' || state.status === 'quitting' || counts.pending > 0) return { status: 'interrupted', exitCode: 130 };
  if (counts.failed > 0 || counts.invalid > 0) return { status: 'failed', exitCode: 1 };
  return { status: 'completed', exitCode: 0 };
}
