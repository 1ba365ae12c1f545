// What a Slurm job state means for one run. Slurm tells us how a task ended (time limit,
// preemption, node failure, scancel); the run record keeps that reason.
import type { ErrorType } from '../protocol.ts';

export type SlurmTaskVerdict =
  /** Still queued or running: nothing to record yet. */
  | { kind: 'active' }
  /** The task ended; if its run is not yet recorded as ended, record this. */
  | { kind: 'ended'; status: 'failed' | 'interrupted'; errorType: ErrorType | null; message: string }
  /** Ended normally: the worker recorded the run itself (or failed to; see the caller). */
  | { kind: 'completed' };

const ACTIVE = new Set([
  'PENDING',
  'CONFIGURING',
  'RUNNING',
  'COMPLETING',
  'SUSPENDED',
  'REQUEUED',
  'REQUEUE_FED',
  'REQUEUE_HOLD',
  'RESIZING',
  'SIGNALING',
  'STAGE_OUT',
  'STOPPED',
  'RESV_DEL_HOLD',
]);

export interface SlurmEndDetail {
  state: string;
  reason?: string | null;
  exitCode?: number | null;
  exitSignal?: number | null;
  timeLimit?: string | null;
}

/**
 * Maps a Slurm job state (squeue %T or scontrol JobState; "CANCELLED by 0" is accepted) to a
 * verdict: TIMEOUT and DEADLINE → failed/TimeoutError; OUT_OF_MEMORY → failed/OutOfMemory;
 * CANCELLED → interrupted/UserInterrupted; PREEMPTED, NODE_FAIL, BOOT_FAIL → interrupted with the
 * reason (no user action, resume reruns them); FAILED → failed/ProcessCrash.
 */
export function verdictForSlurmState(detail: SlurmEndDetail): SlurmTaskVerdict {
  const state = detail.state.trim().split(/\s+/)[0]!.toUpperCase().replace(/\+$/, '');
  if (ACTIVE.has(state)) return { kind: 'active' };
  const why = detail.reason && detail.reason !== 'None' ? ` (reason: ${detail.reason})` : '';
  const exit =
    detail.exitCode !== undefined && detail.exitCode !== null
      ? ` exit code ${detail.exitCode}${detail.exitSignal ? `, signal ${detail.exitSignal}` : ''}`
      : '';
  switch (state) {
    case 'COMPLETED':
      return { kind: 'completed' };
    case 'TIMEOUT':
      return {
        kind: 'ended',
        status: 'failed',
        errorType: 'TimeoutError',
        message: `Slurm killed the task at its time limit${detail.timeLimit ? ` (TimeLimit=${detail.timeLimit})` : ''}: state TIMEOUT${why}`,
      };
    case 'DEADLINE':
      return { kind: 'ended', status: 'failed', errorType: 'TimeoutError', message: `Slurm ended the task at its deadline: state DEADLINE${why}` };
    case 'OUT_OF_MEMORY':
      return { kind: 'ended', status: 'failed', errorType: 'OutOfMemory', message: `Slurm ended the task: state OUT_OF_MEMORY${why}` };
    case 'CANCELLED':
      return { kind: 'ended', status: 'interrupted', errorType: 'UserInterrupted', message: `cancelled in Slurm (scancel): state CANCELLED${why}` };
    case 'PREEMPTED':
    case 'NODE_FAIL':
    case 'BOOT_FAIL':
    case 'REVOKED':
      return { kind: 'ended', status: 'interrupted', errorType: null, message: `Slurm ended the task: state ${state}${why}` };
    case 'FAILED':
      return { kind: 'ended', status: 'failed', errorType: 'ProcessCrash', message: `Slurm task failed: state FAILED,${exit}${why}` };
    default:
      return { kind: 'ended', status: 'failed', errorType: 'ProcessCrash', message: `Slurm task ended in state ${state}${exit}${why}` };
  }
}
