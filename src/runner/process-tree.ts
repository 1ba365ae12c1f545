// What was left of a run's process tree after its main process exited, and what it took to end it.
// Contract between ChildHandle (which ends the tree: SIGTERM → SIGKILL over every descendant, the
// child being a subreaper) and the attempt record in the manifest, which keeps it for the audit.
import { z } from 'zod';

export const treeCleanupSchema = z.object({
  /** Descendants still alive when the run's main process had exited. */
  leftover_pids: z.array(z.number().int()),
  /** Those that ignored SIGTERM and were SIGKILLed. */
  sigkilled_pids: z.array(z.number().int()),
  /** Still alive after SIGKILL and the bounded wait: the run is failed, never overlapped with the next. */
  survivor_pids: z.array(z.number().int()),
  /** How long the parent waited for the tree to be empty. */
  waited_ms: z.number(),
});
export type TreeCleanup = z.infer<typeof treeCleanupSchema>;
