// What the runner tells the outside world (TUI, plain reporter, `llem watch`) and the commands it
// takes. The runner knows nothing of Ink; the UI knows nothing of child processes. Events are
// journalled one per line in events.jsonl; readers (src/ui/journal.ts) check each with this schema.
import { z } from 'zod';
import {
  configProgressSchema,
  phaseSchema,
  runRecordSchema,
  statusCountsSchema,
  studySnapshotSchema,
  studyStatusSchema,
} from '../study-dir/schema.ts';

export type {
  AttemptRecord,
  ReportedStudyStatus,
  RunHeadline,
  RunSnapshot,
  RunStatus,
  StatusCounts,
  StudySnapshot,
  StudyStatus,
} from '../study-dir/schema.ts';

export const GAP_KINDS = ['config', 'cycle', 'cooldown'] as const;
export const gapKindSchema = z.enum(GAP_KINDS);
export type GapKind = z.infer<typeof gapKindSchema>;

const at = z.string();
const index = z.number().int();

export const runnerEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('study_started'), at, snapshot: studySnapshotSchema }),
  z.object({ type: z.literal('run_status'), at, run: runRecordSchema }),
  z.object({ type: z.literal('phase'), at, index, phase: phaseSchema }),
  z.object({
    type: z.literal('progress'),
    at,
    index,
    phase: phaseSchema,
    done: z.number(),
    total: z.number().nullable(),
    warmup_cv: z.number().nullable(),
  }),
  z.object({
    type: z.literal('power'),
    at,
    index,
    samples: z.array(z.object({ t_ms: z.number(), power_w: z.number().nullable(), temp_c: z.number().nullable() })),
    energy_so_far_j: z.number().nullable(),
  }),
  z.object({ type: z.literal('log'), at, index, line: z.string() }),
  z.object({
    type: z.literal('gap'),
    at,
    kind: gapKindSchema,
    seconds_left: z.number(),
    total_seconds: z.number(),
    temp_c: z.number().nullable(),
  }),
  z.object({ type: z.literal('gap_end'), at, kind: gapKindSchema, cut_short: z.boolean() }),
  z.object({ type: z.literal('paused'), at, paused: z.boolean() }),
  z.object({ type: z.literal('quit_requested'), at, requested: z.boolean() }),
  z.object({ type: z.literal('warning'), at, message: z.string() }),
  z.object({ type: z.literal('study_finished'), at, status: studyStatusSchema, counts: statusCountsSchema }),
  // n_cycles: auto (src/runner/rounds.ts): where the stopping rule stands for some configs. `round`
  // is the round decided, with the configs it stopped (null: a run ended, its config's interval so
  // far); `added` the runs that round appended to the plan (the UI extends its plan with them).
  z.object({
    type: z.literal('stopping'),
    at,
    round: z.number().int().nullable(),
    configs: z.array(configProgressSchema),
    added: z.array(z.object({ index, config_hash: z.string(), cycle: z.number().int() })),
  }),
]);
export type RunnerEvent = z.infer<typeof runnerEventSchema>;

/** One API used by keys and signals alike. Every method is safe to call at any time. */
export interface RunnerControls {
  /** Start nothing new after the current run (never SIGSTOP: it would corrupt energy). */
  pause(): void;
  resume(): void;
  /**
   * Kill the child group of run `index` now (of every run in flight when omitted); the run
   * becomes `skipped` with UserSkipped. A run that is no longer in flight is left alone.
   */
  skipCurrent(index?: number): void;
  /** Cut the current gap or cooldown short. */
  skipGap(): void;
  /** Back to pending with a new attempt (history kept). Only failed/skipped/interrupted runs. */
  retry(indices: number[]): void;
  /** retry() over every failed, skipped and interrupted run. */
  retryAll(): void;
  /** Finish the current run, then stop (study `interrupted`, exit 130). Call again with false to cancel. */
  quitAfterCurrent(requested: boolean): void;
  /** Kill the current child group now, mark it interrupted/UserInterrupted, write the manifest. */
  abortNow(): Promise<void>;
}
