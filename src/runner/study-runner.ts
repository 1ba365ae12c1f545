// The local launcher's runner: holds the study lock for the whole study, applies the resume rules,
// schedules every pending (config, cycle) over its slots (one, or one per GPU) with gaps and
// cooldown in between, performs each run through the run-attempt path (./attempt.ts) and records
// it through the manifest transitions (./transitions.ts), steered through RunnerControls. Used by
// `llem run`, `llem resume`, the TUI and the tests alike.
import path from 'node:path';
import { validityPolicyOf, type ValidityPolicy } from '../measure/validity.ts';
import { readManifest, readPlan } from '../study-dir/read.ts';
import { snapshotOf } from '../study-dir/snapshot.ts';
import type { RunRecord, StudySnapshot } from '../study-dir/schema.ts';
import { isRetryable } from '../study-dir/statuses.ts';
import type { PlanFile } from '../study/types.ts';
import { configOf, defaultWorkerCommand, nextAttempt, performAttempt, prepareAttempt, superviseAttempt, type WorkerCommand } from './attempt.ts';
import type { ChildHandle } from './child-handle.ts';
import type { RunnerControls, RunnerEvent } from './events.ts';
import { Gaps, type GapOptions } from './gaps.ts';
import { applyForAttempt, restoreSummary, startRunGpuSettings, type RunGpuSettings } from './gpu-settings.ts';
import { acquireStudyLock, type StudyLock } from './lock.ts';
import { LineThrottle } from './log-throttle.ts';
import { ManifestStore } from './manifest.ts';
import { perGpuSlots, type GpuSlotsResult } from './per-gpu.ts';
import { procStartTicks } from './proc.ts';
import type { ChildMessage } from './protocol.ts';
import { applyResumeRules, lastEndedRun, waitForOrphanedWorkers, type ResumeOptions } from './resume-rules.ts';
import { schedule, type RunSlot, type SchedulerHost } from './scheduler.ts';
import { releaseSlurmSubmissions } from './slurm/state-file.ts';
import { initialRunState, mustStop, nextRunState, pauseRequested, quitRequested, studyOutcome, type StudyCommand, type StudyRunState } from './study-state.ts';
import { adoptResult, endAttempt, requeueInvalid, requeueRun, startAttempt, type AttemptEnd } from './transitions.ts';

/** src/runner/rounds.ts, loaded only for an `n_cycles: auto` study (it brings the statistics code). */
type RoundsModule = typeof import('./rounds.ts');

export interface StudyRunnerOptions extends GapOptions {
  workerCommand?: WorkerCommand;
  env?: NodeJS.ProcessEnv;
  /** SIGTERM → SIGKILL grace for a child group (default KILL_GRACE_MS). */
  killGraceMs?: number;
  /** Child heartbeat interval (default heartbeatMsFor(stall timeout)). */
  heartbeatMs?: number;
  /** Set when resuming: the resume rules' options (changed YAML refused, retry, top-up, timeouts). */
  resume?: ResumeOptions;
  lockStaleMs?: number;
  /** fsync manifest writes (default true). */
  fsync?: boolean;
  /** GPU slots for `execution.parallel: per_gpu`; default one per visible GPU (src/runner/per-gpu.ts). */
  gpuSlots?: () => Promise<GpuSlotsResult>;
  /** How long to wait for the worker of a killed runner to end (default ORPHAN_WAIT_MS). */
  orphanWaitMs?: number;
}

export class StudyRunner implements RunnerControls {
  readonly studyDir: string;
  private readonly opts: StudyRunnerOptions;
  private listeners = new Set<(e: RunnerEvent) => void>();
  private store: ManifestStore | null = null;
  private plan: PlanFile | null = null;
  private lock: StudyLock | null = null;
  private gaps: Gaps | null = null;
  /** The GPU settings of the study's runs: applied before each child, restored at every end. */
  private gpu: RunGpuSettings | null = null;
  /** Every child in flight (one, or one per GPU with parallel: per_gpu); kills address them all. */
  private inFlight = new Map<number, ChildHandle>();
  private state: StudyRunState = initialRunState;
  private wakeLoop: (() => void) | null = null;
  private loopDone: Promise<number> | null = null;
  private running = false;
  /** n_cycles: auto: the rounds module and the target metric of completed runs (null: a fixed study). */
  private rounds: { mod: RoundsModule; values: InstanceType<RoundsModule['TargetValues']> } | null = null;

  constructor(studyDir: string, options: StudyRunnerOptions = {}) {
    this.studyDir = path.resolve(studyDir);
    this.opts = options;
  }

  subscribe(listener: (e: RunnerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Current state; before run() it is read from manifest.json (throws StudyDirError if unreadable). */
  snapshot(): StudySnapshot {
    const control = { paused: pauseRequested(this.state), quit_requested: quitRequested(this.state) };
    return snapshotOf(this.studyDir, this.store ? this.store.manifest : readManifest(this.studyDir), control);
  }

  /** The plan this runner executes (after run() started). */
  get planFile(): PlanFile | null {
    return this.plan;
  }

  /**
   * Runs the study to its end. Resolves with the exit code: 0 all completed, 1 a run failed (or
   * the lock was compromised), 130 interrupted. Throws StudyLockedError when another runner holds
   * the dir, StudyDirError for an unreadable plan or manifest, RunnerInputError for a refused resume.
   */
  run(): Promise<number> {
    if (this.loopDone) return this.loopDone;
    this.loopDone = this.runInner();
    return this.loopDone;
  }

  private async runInner(): Promise<number> {
    this.lock = await acquireStudyLock(this.studyDir, {
      staleMs: this.opts.lockStaleMs,
      onCompromised: (err) => {
        this.warn(`study lock compromised (${err.message}): no new run will start`);
        this.apply({ type: 'stop', reason: 'compromised' });
      },
    });
    this.running = true;
    try {
      const plan = readPlan(this.studyDir);
      this.store = ManifestStore.open(this.studyDir, { fsync: this.opts.fsync });
      await waitForOrphanedWorkers(this.store.manifest, this.store.manifestPath, { warn: (m) => this.warn(m), boundMs: this.opts.orphanWaitMs });
      // before anything else: a runner killed mid-study may have left this node's GPUs changed
      this.gpu = await startRunGpuSettings(this.studyDir, plan, { warn: (m) => this.warn(m) });
      const prepared = applyResumeRules(this.store, plan, this.studyDir, this.opts.resume ?? null, (m) => this.warn(m));
      this.plan = prepared.plan;
      if (this.plan.execution.target) await this.startRounds(this.plan.execution.target.metric);
      // a local runner takes over every run a Slurm array was given (the CLI refused while one is active)
      const released = releaseSlurmSubmissions(this.studyDir);
      if (released.length > 0) this.warn(`this runner takes the study over from Slurm job(s) ${released.join(', ')}`);
      this.store.setStatus('running');
      this.store.commit(prepared.events);
      const started: RunnerEvent = { type: 'study_started', at: now(), snapshot: this.snapshot() };
      this.store.commit([started]);
      this.emit(started);
      this.gaps = new Gaps(this.schedulerGapHost(), this.plan.execution, this.opts);
      try {
        await schedule(this.schedulerHost(), await this.slots(), this.opts.resume ? lastEndedRun(this.store.manifest) : null);
      } finally {
        // every child is gone: the end of the study, q, Ctrl+C, SIGTERM, or an error in the runner
        this.restoreGpuSettings();
      }
      return await this.finish();
    } finally {
      this.running = false;
      this.restoreGpuSettings();
      this.gpu?.close();
      this.store?.close();
      await this.lock.release();
    }
  }

  /** n_cycles: auto: the plan as far as the manifest has runs, and stops of retried configs released. */
  private async startRounds(metric: NonNullable<PlanFile['execution']['target']>['metric']): Promise<void> {
    const mod = await import('./rounds.ts');
    this.rounds = { mod, values: new mod.TargetValues(this.studyDir, metric) };
    this.plan = mod.planOfManifest(this.plan!, this.store!.manifest);
    mod.releaseRetriedStops(this.store!);
  }

  /** Nothing pending or running: decide the round; true when the next one was appended. */
  private endOfRound(): boolean {
    if (!this.rounds || mustStop(this.state)) return false;
    const step = this.rounds.mod.advanceRound(this.store!, this.plan!, this.studyDir, this.rounds.values);
    if (!step) return false;
    this.plan = step.plan;
    this.store!.commit(step.events);
    for (const e of step.events) this.emit(e);
    return step.added.length > 0;
  }

  /** A run of an n_cycles: auto study ended: its config's interval so far, for the UI. */
  /** A released stop (a retry): where the rule stands for the config now, for the CI column. */
  private afterRelease(configHash: string): void {
    if (!this.rounds) return;
    const e = this.rounds.mod.progressEvent(this.plan!, this.store!.manifest, this.rounds.values, configHash);
    if (e) this.emitJournaled(e);
  }

  private afterRun(configHash: string, end: AttemptEnd): void {
    if (!this.rounds) return;
    if (end.status === 'completed' && end.result_path && end.result) this.rounds.values.remember(end.result_path, end.result);
    const e = this.rounds.mod.progressEvent(this.plan!, this.store!.manifest, this.rounds.values, configHash);
    if (e) this.emitJournaled(e);
  }

  // ── controls ──────────────────────────────────────────────────────────────────────────────

  pause(): void {
    this.apply({ type: 'pause' });
  }

  resume(): void {
    this.apply({ type: 'resume' });
  }

  skipCurrent(index?: number): void {
    for (const [i, h] of this.inFlight) if (index === undefined || i === index) h.kill('skip');
  }

  skipGap(): void {
    this.gaps?.cut();
  }

  retry(indices: number[]): void {
    const store = this.store;
    if (!store || !this.running) return;
    const events: RunnerEvent[] = [];
    for (const index of indices) {
      const rec = store.manifest.runs[index];
      if (!rec || !isRetryable(rec.status)) continue;
      events.push(requeueRun(store, index));
    }
    if (events.length === 0) return;
    // n_cycles: auto: a stopped config whose runs are measured again is decided again on its new
    // values (as after `resume --retry-failed`), not kept at the stop its old ones gave
    const released = this.rounds?.mod.releaseRetriedStops(store) ?? [];
    store.commit(events);
    for (const e of events) this.emit(e);
    // …and the CI column says so at once, not at the config's next finished run
    for (const hash of released) this.afterRelease(hash);
    this.wake();
  }

  /** Every failed, skipped, interrupted and invalid run back to pending (key R). */
  retryAll(): void {
    if (!this.store) return;
    this.retry(this.store.manifest.runs.filter((r) => isRetryable(r.status)).map((r) => r.index));
  }

  quitAfterCurrent(requested: boolean): void {
    this.apply({ type: 'quit', requested });
  }

  async abortNow(): Promise<void> {
    this.apply({ type: 'stop', reason: 'abort' });
    for (const h of this.inFlight.values()) h.kill('abort');
    if (this.loopDone && this.running) await this.loopDone.catch(() => {});
  }

  /** SIGKILL the current child group now (second Ctrl+C). */
  forceKill(): void {
    this.apply({ type: 'stop', reason: 'abort' });
    for (const h of this.inFlight.values()) h.forceKill();
  }

  /** pid of a child in flight (its process group id), for tests and `llem status`. */
  get currentPid(): number | null {
    for (const h of this.inFlight.values()) if (h.pid !== null) return h.pid;
    return null;
  }

  /** The one place the control state changes: journal what changed for the UI, wake the scheduler. */
  private apply(command: StudyCommand): void {
    const before = this.state;
    const after = nextRunState(before, command);
    if (after === before) return;
    this.state = after;
    if (after.status !== 'stopping') {
      if (pauseRequested(before) !== pauseRequested(after)) this.emitJournaled({ type: 'paused', at: now(), paused: pauseRequested(after) });
      if (quitRequested(before) !== quitRequested(after)) this.emitJournaled({ type: 'quit_requested', at: now(), requested: quitRequested(after) });
    }
    // a gap is not a run: quitting or stopping during one ends it at once
    if (mustStop(after)) this.gaps?.cut();
    this.wake();
  }

  private wake(): void {
    const w = this.wakeLoop;
    this.wakeLoop = null;
    w?.();
  }

  private waitForWake(): Promise<void> {
    return new Promise<void>((resolve) => (this.wakeLoop = resolve));
  }

  // ── events ────────────────────────────────────────────────────────────────────────────────

  private emit(e: RunnerEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // a broken listener (closed terminal) must never stop a study
      }
    }
  }

  /** Journal, then tell listeners (no manifest rewrite: nothing in it changed). */
  private emitJournaled(e: RunnerEvent): void {
    try {
      this.store?.appendJournal([e]);
    } catch {
      // journal write failures surface on the next commit
    }
    this.emit(e);
  }

  /** Commit a run transition (journal, manifest), then tell listeners. */
  private commitEmit(e: RunnerEvent): void {
    this.store!.commit([e]);
    this.emit(e);
  }

  private warn(message: string): void {
    this.emitJournaled({ type: 'warning', at: now(), message });
  }

  // ── scheduling ────────────────────────────────────────────────────────────────────────────

  private async slots(): Promise<RunSlot[]> {
    const env = this.opts.env ?? process.env;
    const own: RunSlot = { cudaVisibleDevices: env.CUDA_VISIBLE_DEVICES ?? null, label: 'local' };
    if (this.plan!.execution.parallel !== 'per_gpu') return [own];
    const { slots, reason } = await (this.opts.gpuSlots ?? (() => perGpuSlots(env)))();
    if (slots.length > 1) return slots;
    this.warn(`parallel: per_gpu: ${slots.length} GPU slot(s)${reason ? ` (${reason})` : ''}; running one run at a time`);
    return [own];
  }

  private schedulerGapHost() {
    return {
      emit: (e: RunnerEvent) => this.emit(e),
      emitJournaled: (e: RunnerEvent) => this.emitJournaled(e),
      warn: (m: string) => this.warn(m),
      stopping: () => mustStop(this.state),
    };
  }

  private schedulerHost(): SchedulerHost {
    return {
      nextPending: (exclude) => this.store!.manifest.runs.find((r) => r.status === 'pending' && !exclude.has(r.index)) ?? null,
      hold: () => this.hold(),
      waitForWake: () => this.waitForWake(),
      wake: () => this.wake(),
      gapBefore: (previous, next, idleSeconds) => this.gaps!.before(this.plan!.order, previous, next, idleSeconds),
      waitsBeforeRetry: (run) => run.attempts.at(-1)?.validity?.wait_before_retry === true,
      execute: (run, slot) => this.execute(run, slot),
      endOfRound: () => this.endOfRound(),
    };
  }

  /** Waits while paused (recorded as the study's status); true when the study must stop. */
  private async hold(): Promise<boolean> {
    if (mustStop(this.state)) return true;
    if (this.state.status !== 'paused') return false;
    this.store!.setStatus('paused');
    this.store!.commit();
    while (this.state.status === 'paused') await this.waitForWake();
    this.store!.setStatus('running');
    this.store!.commit();
    return mustStop(this.state);
  }

  private get validity(): ValidityPolicy {
    return validityPolicyOf(this.plan!.execution);
  }

  /**
   * Commits an attempt's end and, when it was invalid with re-measurements left, the run's return
   * to pending in the same write: the scheduler takes it next (plan order), after the gap.
   */
  private commitEnd(ended: RunnerEvent | null, index: number): void {
    if (!ended) return;
    const requeued = requeueInvalid(this.store!, index, this.validity);
    const events = requeued ? [ended, requeued] : [ended];
    this.store!.commit(events);
    for (const e of events) this.emit(e);
  }

  /** One attempt of `rec` in `slot`: the run-attempt path, recorded as it goes. */
  private async execute(rec: RunRecord, slot: RunSlot): Promise<void> {
    const store = this.store!;
    const next = nextAttempt(this.studyDir, rec);
    if (next.kind === 'leftover') {
      this.commitEnd(adoptResult(store, this.studyDir, rec.index, next, this.validity), rec.index);
      return;
    }
    // before the child (and its baseline) starts, on exactly the slot's GPUs
    const gpu = applyForAttempt(this.gpu!, slot.cudaVisibleDevices, configOf(this.plan!, rec).gpu);
    const prepared = prepareAttempt({
      studyDir: this.studyDir,
      plan: this.plan!,
      run: rec,
      attempt: next.attempt,
      runId: next.runId,
      runDir: next.runDir,
      timeoutOverride: store.manifest.timeout_override,
      env: this.opts.env ?? process.env,
      cudaVisibleDevices: slot.cudaVisibleDevices,
      heartbeatMs: this.opts.heartbeatMs,
      gpuSettings: gpu.settings,
    });
    const started = { attempt: next.attempt, run_dir: path.relative(this.studyDir, next.runDir), message: null, timeouts: prepared.timeouts, gpu_settings: gpu.settings };
    if (gpu.failure) {
      // never measured under a setting it did not ask for: failed with the reason, no child
      this.commitEmit(startAttempt(store, rec.index, { ...started, pid: null, pid_start_ticks: null }));
      const e = endAttempt(store, this.studyDir, rec.index, next.attempt, gpu.failure);
      if (e) this.commitEmit(e);
      return;
    }
    const lines = new LineThrottle((line) => this.emit({ type: 'log', at: now(), index: rec.index, line }));
    const handle = superviseAttempt(prepared, {
      workerCommand: this.opts.workerCommand ?? defaultWorkerCommand,
      killGraceMs: this.opts.killGraceMs,
      onMessage: (msg) => this.onChildMessage(rec.index, msg),
      onOutput: (chunk) => lines.push(chunk),
    });
    this.inFlight.set(rec.index, handle);
    try {
      await performAttempt(handle, this.validity, {
        started: (h) => {
          this.commitEmit(startAttempt(store, rec.index, { ...started, pid: h.pid, pid_start_ticks: h.pid ? procStartTicks(h.pid) : null }));
          // an abort that arrived while we were spawning
          if (this.state.status === 'stopping' && this.state.reason === 'abort') h.kill('abort');
        },
        record: (end) => {
          lines.flush();
          const e = endAttempt(store, this.studyDir, rec.index, next.attempt, end);
          this.commitEnd(e, rec.index);
          if (e) this.afterRun(rec.config_hash, end);
        },
        history: { studyHash: this.plan!.study_hash, warn: (m) => this.warn(m) },
      });
    } finally {
      this.inFlight.delete(rec.index);
    }
  }

  private onChildMessage(index: number, msg: ChildMessage): void {
    const at = now();
    switch (msg.type) {
      case 'phase':
        this.emitJournaled({ type: 'phase', at, index, phase: msg.phase });
        break;
      case 'progress':
        this.emit({ type: 'progress', at, index, phase: msg.phase, done: msg.done, total: msg.total, warmup_cv: msg.warmup_cv ?? null });
        break;
      case 'power':
        this.emit({ type: 'power', at, index, samples: msg.samples, energy_so_far_j: msg.energy_so_far_j });
        break;
      case 'log':
        this.emit({ type: 'log', at, index, line: `[${msg.level}] ${msg.message}` });
        break;
      case 'error':
        this.emit({ type: 'log', at, index, line: `[error] ${msg.error_type}: ${msg.message.slice(0, 500)}` });
        break;
      default:
        break;
    }
  }

  /** Puts back the GPU settings this study changed on this node (idempotent; a failure is a warning). */
  private restoreGpuSettings(): void {
    const report = this.gpu?.restore();
    if (report) this.warn(restoreSummary(this.studyDir, report));
  }

  private async finish(): Promise<number> {
    const store = this.store!;
    const { status, exitCode } = studyOutcome(this.state, store.manifest.counts);
    store.setStatus(status);
    const finished: RunnerEvent = { type: 'study_finished', at: now(), status, counts: { ...store.manifest.counts } };
    store.commit([finished]);
    this.emit(finished);
    try {
      // loaded at the end: the statistics code has no business in the parent while runs measure
      const { writeSummary } = await import('../results/summary.ts');
      await writeSummary(this.studyDir, this.snapshot());
    } catch (err) {
      this.warn(`summary.json not written: ${(err as Error).message}`);
    }
    return exitCode;
  }
}

function now(): string {
  return new Date().toISOString();
}
