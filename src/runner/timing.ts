// Every escalation delay, grace, heartbeat and polling figure of the run lifecycle, named once
// (vitest's SIGKILL_TIMEOUT, execa's forceKillAfterDelay). Tests shrink some of them through the
// options that take them; nothing else restates a number.

/** SIGTERM → SIGKILL to a run's process group (the runner's kill: timeout, stall, skip, abort). */
export const KILL_GRACE_MS = 3000;
/**
 * SIGTERM → SIGKILL in a Slurm task: Slurm itself SIGKILLs the task KillWait (default 30 s) after
 * its SIGTERM, and the run must be recorded before that.
 */
export const SLURM_TASK_KILL_GRACE_MS = 2000;
/**
 * A Slurm task whose worker died of SIGTERM waits at most this long for its own SIGTERM (scancel,
 * a time limit and a preemption signal every process of the job at once, and the worker's death
 * can be seen first) before recording the worker's death as its own failure. Well inside
 * Slurm's KillWait (30 s by default).
 */
export const SLURM_OWN_SIGTERM_WAIT_MS = 5000;
/** A child's own orphan guard: SIGTERM to its group, SIGKILL after this (src/runner/child-side.ts). */
export const ORPHAN_GUARD_GRACE_MS = 1000;
/**
 * How long a resume waits for the worker of a killed runner to end (its orphan guard ends its
 * group within ORPHAN_GUARD_GRACE_MS of noticing); after this the resume is refused.
 */
export const ORPHAN_WAIT_MS = 30_000;
/** Stall allowance until a child's first message (module loading on a busy machine). */
export const STARTUP_ALLOWANCE_MS = 60_000;
/** Once a run's tree is gone, how long its stdio may stay open (held by a process we could not identify). */
export const STDIO_CLOSE_CAP_MS = 2000;
/** After SIGKILL to what is left of a run's tree, how long the parent waits for it to be empty before the run fails. */
export const TREE_KILL_WAIT_MS = 5000;
/** A worker ending its own leftovers on a normal exit: SIGTERM → SIGKILL after this… */
export const CHILD_TREE_GRACE_MS = 1000;
/** …and how long after SIGKILL before it hands the rest to the parent (which waits TREE_KILL_WAIT_MS). */
export const CHILD_TREE_KILL_WAIT_MS = 1000;
/** The child waits this long for the parent's acknowledgement of its result. */
export const RESULT_ACK_TIMEOUT_MS = 10_000;

/** A second Ctrl+C within this window SIGKILLs the run and exits at once. */
export const SECOND_SIGINT_WINDOW_MS = 5000;
/** After a forced kill (second Ctrl+C), how long the runner may take to write the manifest before the process leaves. */
export const FORCED_EXIT_GRACE_MS = 1500;

// ── heartbeat ─────────────────────────────────────────────────────────────────────────────

export const HEARTBEAT_MIN_MS = 500;
export const HEARTBEAT_MAX_MS = 5000;

/**
 * How often the child says it is alive: a quarter of the stall timeout, between HEARTBEAT_MIN_MS
 * and HEARTBEAT_MAX_MS. Each heartbeat wakes both the measured child and the parent, so with the
 * default 120 s stall timeout it is one every 5 s rather than two a second (the parent's CPU
 * target while measuring). The runner writes it into run.json; the worker uses it as given.
 */
export function heartbeatMsFor(stallTimeoutSeconds: number | null): number {
  if (stallTimeoutSeconds === null || !(stallTimeoutSeconds > 0)) return HEARTBEAT_MAX_MS;
  return Math.min(HEARTBEAT_MAX_MS, Math.max(HEARTBEAT_MIN_MS, Math.floor((stallTimeoutSeconds * 1000) / 4)));
}

// ── locks and polls ───────────────────────────────────────────────────────────────────────

/** proper-lockfile refreshes the study lock; a lock not refreshed for this long is stale. */
export const LOCK_STALE_MS = 10_000;
/** A short critical section on the study lock (Slurm tasks, cancel, pollers) waits this long for it. */
export const LOCK_WAIT_MS = 120_000;
/** `llem status` of a Slurm study waits this long for the lock before showing the manifest as recorded. */
export const STATUS_LOCK_WAIT_MS = 10_000;
/** One squeue per study per this interval at most (polling storms hurt shared controllers). */
export const SLURM_POLL_INTERVAL_MS = 30_000;
