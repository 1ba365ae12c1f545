// Where a study's runs execute, behind one small interface (vitest's PoolWorker: one runner,
// several transports). `local` runs them in children of this process (one at a time, or one per
// GPU with execution.parallel: per_gpu); `slurm` submits them as a job array whose tasks run the
// same run-attempt path on the nodes. `llem run`, `resume`, `status` and `watch` talk to this
// interface only (src/runner/launchers/index.ts picks the launcher).
import type { StudyRunner } from '../study-runner.ts';
import type { ResumeOptions } from '../resume-rules.ts';

export type LauncherName = 'local' | 'slurm';

/** Who executes a study now (`llem status --json` `runner`). */
export interface RunnerInfo {
  launcher: LauncherName;
  /** The local runner holding the study lock (null for Slurm, or when none holds it). */
  pid: number | null;
  host: string | null;
  /** A runner holds the study and is alive (Slurm: a job of the study is queued or running); null when it cannot be told from here. */
  alive: boolean | null;
  /** When the local runner took the lock. */
  since: string | null;
  /** Slurm jobs of the study still queued or running. */
  slurm_jobs: string[];
}

/** A study executing somewhere else (a Slurm array): what the CLI tells, follows, or leaves. */
export interface RemoteExecution {
  studyDir: string;
  /** What was submitted, for stderr. */
  summary: string;
  /** What a detached launch prints: `<job id> <dir>` (or JSON) on stdout, how to follow it on stderr. */
  detached(json: boolean): { stdout: string; stderr: string };
  /** Follows it in plain lines until it settles or `signal` aborts; resolves with the exit code. */
  followPlain(options: { line: (text: string) => void; signal: AbortSignal }): Promise<number>;
  /** Said when the follower is interrupted (the runs go on). */
  onInterrupt: string;
}

export type Execution =
  /** In this process: the CLI drives the runner (TUI or plain reporter, signals). */
  | { kind: 'runner'; runner: StudyRunner }
  | { kind: 'remote'; remote: RemoteExecution }
  /** Nothing left to execute (a resume of a finished study). */
  | { kind: 'nothing'; message: string; exitCode: number };

/** While `llem watch` follows a study read-only. */
export interface StudyWatch {
  stop(): void;
  /** True when no runner holds the study any more (a killed runner): nothing will come. */
  runnerGone(): Promise<boolean>;
}

export interface StudyLauncher {
  readonly name: LauncherName;
  /** Its runs are children of this process, driven by a runner here (the full-screen view controls them). */
  readonly executesHere: boolean;
  /** Executes a freshly created study dir; a submission that fails removes it (nothing ran in it). */
  start(studyDir: string): Promise<Execution>;
  /** Continues a study under the resume rules (src/runner/resume-rules.ts). Errors: a refused resume (exit 2). */
  resume(studyDir: string, resume: ResumeOptions): Promise<Execution>;
  /** Records what happened out of this process's sight before the manifest is read; a note when it could not. */
  refresh(studyDir: string): Promise<string | null>;
  /** Who runs the study now. */
  runner(studyDir: string): Promise<RunnerInfo>;
  /** Keeps the study's record current while someone watches it (`warn` for problems doing so). */
  watch(studyDir: string, warn?: (text: string) => void): StudyWatch;
}
