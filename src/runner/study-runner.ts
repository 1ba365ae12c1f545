// The scheduler: runs every pending (config, cycle) of a study dir in order, one fresh child per
// run, with gaps and cooldown in between, checkpointing every transition, steered through
// RunnerControls. Used by `llem run`, `llem resume`, the TUI and the tests alike.
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { nodeArgsFor, srcPath } from '../node-entry.ts';
import type { ExperimentConfig, PlanFile, PlannedRun } from '../study/types.ts';
import type { RunResult } from '../results/schema.ts';
import { ChildHandle, readResult, type ChildOutcome } from './child-handle.ts';
import type {
  GapKind,
  RunHeadline,
  RunnerControls,
  RunnerEvent,
  RunStatus,
  StudySnapshot,
  StudyStatus,
} from './events.ts';
import { acquireStudyLock, type StudyLock } from './lock.ts';
import { ManifestStore, readManifest, runSnapshotOf, toSnapshot, type RunRecord } from './manifest.ts';
import { procStartTicks, sameProcessAlive } from './proc.ts';
import { PROTOCOL_VERSION, type ChildMessage, type RunSpec } from './protocol.ts';
import { pendingRecord, readPlan, runDirFor, runIdFor, sha256File, writePlan } from './study-dir.ts';
import { perGpuSlots, type GpuSlot, type GpuSlotsResult } from './per-gpu.ts';
import { appendCycles } from './top-up.ts';

export type WorkerCommand = (runSpecPath: string) => { command: string; args: string[] };

/** The real worker: `node --import tsx src/worker/main.ts --run-spec <run_dir>/run.json`. */
export const defaultWorkerCommand: WorkerCommand = (runSpecPath) => ({
  command: process.execPath,
  args: nodeArgsFor(srcPath('worker/main.ts'), ['--run-spec', runSpecPath]),
});

export interface ResumeOptions {
  /** Failed and skipped runs go back to pending too. */
  retryFailed?: boolean;
  /** Top up to this many cycles (more runs appended; completed runs untouched). */
  cycles?: number;
  /** Resume even though the study YAML changed since the study started. */
  force?: boolean;
}

export interface StudyRunnerOptions {
  workerCommand?: WorkerCommand;
  env?: NodeJS.ProcessEnv;
  /** SIGTERM → SIGKILL grace for a child group (default 3000 ms). */
  killGraceMs?: number;
  /** Child heartbeat interval (default heartbeatMsFor(stall timeout): 0.5–5 s). */
  heartbeatMs?: number;
  /** Set when resuming: applies the resume rules (changed YAML refused, retry, top-up). */
  resume?: ResumeOptions;
  lockStaleMs?: number;
  /** fsync manifest writes (default true). */
  fsync?: boolean;
  /** GPU temperatures for cooldown; default reads NVML through src/native. null = unavailable. */
  readTemperatures?: () => Promise<number[] | null>;
  /** Time unit of gaps (tests shrink it); default 1000 ms per "second". */
  secondMs?: number;
  /** GPU slots for `execution.parallel: per_gpu`; default one per visible GPU (src/runner/per-gpu.ts). */
  gpuSlots?: () => Promise<GpuSlotsResult>;
}

/** Bad input detected by the runner (changed YAML, live orphan, unknown run): exit 2. */
export class RunnerInputError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'RunnerInputError';
  }
}

type StopReason = 'abort' | 'quit' | 'compromised';

/** What retry() and retryAll() send back to pending. */
const RETRYABLE: readonly RunStatus[] = ['failed', 'skipped', 'interrupted'];

export class StudyRunner implements RunnerControls {
  readonly studyDir: string;
  private readonly opts: StudyRunnerOptions;
  private listeners = new Set<(e: RunnerEvent) => void>();
  private store: ManifestStore | null = null;
  private plan: PlanFile | null = null;
  private lock: StudyLock | null = null;
  private current: { index: number; handle: ChildHandle } | null = null;
  /** Every child in flight (one, or one per GPU with parallel: per_gpu); kills address them all. */
  private inFlight = new Map<number, ChildHandle>();
  private paused = false;
  private quitRequested = false;
  private stopReason: StopReason | null = null;
  private wakeLoop: (() => void) | null = null;
  private cutGap: (() => void) | null = null;
  private loopDone: Promise<number> | null = null;
  private running = false;

  constructor(studyDir: string, options: StudyRunnerOptions = {}) {
    this.studyDir = path.resolve(studyDir);
    this.opts = options;
  }

  subscribe(listener: (e: RunnerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Current state; before run() it is read from manifest.json (throws ManifestError if unreadable). */
  snapshot(): StudySnapshot {
    if (this.store) return toSnapshot(this.studyDir, this.store.manifest, this.paused, this.quitRequested);
    return toSnapshot(this.studyDir, readManifest(this.studyDir), this.paused, this.quitRequested);
  }

  /** The plan this runner executes (after run() started). */
  get planFile(): PlanFile | null {
    return this.plan;
  }

  /**
   * Runs the study to its end. Resolves with the exit code: 0 all completed, 1 a run failed (or
   * the lock was compromised), 130 interrupted. Throws StudyLockedError when another runner holds
   * the dir, ManifestError for an unreadable manifest, RunnerInputError for a refused resume.
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
        this.stop('compromised');
      },
    });
    this.running = true;
    try {
      this.plan = readPlan(this.studyDir);
      this.store = ManifestStore.open(this.studyDir, { fsync: this.opts.fsync });
      this.prepare();
      this.store.setStatus('running');
      const started: RunnerEvent = { type: 'study_started', at: now(), snapshot: this.snapshot() };
      this.store.commit([started]);
      this.emit(started);
      await this.loop();
      return await this.finish();
    } finally {
      this.running = false;
      this.store?.close();
      await this.lock.release();
    }
  }

  // ── controls ──────────────────────────────────────────────────────────────────────────────

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.emitJournaled({ type: 'paused', at: now(), paused: true });
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.emitJournaled({ type: 'paused', at: now(), paused: false });
    this.wake();
  }

  skipCurrent(index?: number): void {
    for (const [i, h] of this.inFlight) if (index === undefined || i === index) h.kill('skip');
  }

  skipGap(): void {
    this.cutGap?.();
  }

  retry(indices: number[]): void {
    const store = this.store;
    if (!store || !this.running) return;
    const events: RunnerEvent[] = [];
    for (const index of indices) {
      const rec = store.manifest.runs[index];
      if (!rec || !RETRYABLE.includes(rec.status)) continue;
      store.updateRun(index, (r) => {
        r.status = 'pending';
        r.error_type = null;
      });
      events.push({ type: 'run_status', at: now(), run: runSnapshotOf(store.run(index)) });
    }
    if (events.length === 0) return;
    store.commit(events);
    for (const e of events) this.emit(e);
    this.wake();
  }

  retryAll(): void {
    if (!this.store) return;
    this.retry(this.store.manifest.runs.filter((r) => RETRYABLE.includes(r.status)).map((r) => r.index));
  }

  quitAfterCurrent(requested: boolean): void {
    if (this.quitRequested === requested) return;
    this.quitRequested = requested;
    this.emitJournaled({ type: 'quit_requested', at: now(), requested });
    // a gap is not a run: quitting during one stops at once
    if (requested) this.cutGap?.();
    this.wake();
  }

  async abortNow(): Promise<void> {
    this.stop('abort');
    for (const h of this.inFlight.values()) h.kill('abort');
    if (this.loopDone && this.running) await this.loopDone.catch(() => {});
  }

  /** SIGKILL the current child group now (second Ctrl+C). */
  forceKill(): void {
    this.stop('abort');
    for (const h of this.inFlight.values()) h.forceKill();
  }

  /** pid of the current child (its process group id), for tests and `llem status`. */
  get currentPid(): number | null {
    return this.current?.handle.pid ?? null;
  }

  private stop(reason: StopReason): void {
    if (!this.stopReason) this.stopReason = reason;
    this.cutGap?.();
    this.wake();
  }

  private wake(): void {
    const w = this.wakeLoop;
    this.wakeLoop = null;
    w?.();
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

  private warn(message: string): void {
    this.emitJournaled({ type: 'warning', at: now(), message });
  }

  // ── resume rules ──────────────────────────────────────────────────────────────────────────

  private prepare(): void {
    const store = this.store!;
    const plan = this.plan!;
    const resume = this.opts.resume;
    // A child of a killed runner may still hold the GPU: never start next to it.
    for (const r of store.manifest.runs) {
      if (r.status !== 'running') continue;
      const a = r.attempts.at(-1);
      if (a?.pid && sameProcessAlive(a.pid, a.pid_start_ticks)) {
        throw new RunnerInputError(
          `${store.manifestPath}: run ${r.run_id} is still running as pid ${a.pid} (a worker of a runner that was killed); wait for it to end or kill its group (kill -- -${a.pid}), then resume`,
        );
      }
    }
    if (resume && !resume.force && store.manifest.study_yaml_sha256) {
      const current = sha256File(plan.source_path);
      if (current !== null && current !== store.manifest.study_yaml_sha256) {
        throw new RunnerInputError(
          `${plan.source_path} changed since this study started (${this.studyDir}/study.yaml is the frozen copy); resume with --force to run the remaining runs of the original plan anyway`,
        );
      }
    }
    const events: RunnerEvent[] = [];
    for (const r of store.manifest.runs) {
      if (r.status === 'completed' || r.status === 'pending') continue;
      const before = r.status;
      const last = r.attempts.at(-1);
      // A result written just before the runner died is kept, not measured again.
      if (last && (before === 'running' || before === 'interrupted')) {
        const resultPath = path.join(this.studyDir, last.run_dir, 'result.json');
        const checked = readResult(resultPath);
        if (checked.ok) {
          store.updateRun(r.index, (x) => {
            x.status = 'completed';
            x.error_type = null;
            x.result = path.relative(this.studyDir, resultPath);
            x.headline = headlineOf(checked.result);
            Object.assign(last, { status: 'completed', error_type: null, message: null, ended_at: last.ended_at ?? now() });
          });
          events.push({ type: 'run_status', at: now(), run: runSnapshotOf(store.run(r.index)) });
          continue;
        }
      }
      if (before === 'running' && last) {
        store.updateRun(r.index, (x) => {
          x.status = 'interrupted';
          x.error_type = 'UserInterrupted';
          Object.assign(last, {
            status: 'interrupted',
            error_type: 'UserInterrupted',
            message: last.message ?? 'the runner stopped while this run was in progress',
            ended_at: last.ended_at ?? now(),
          });
        });
      }
      const status = store.run(r.index).status;
      const rerun = status === 'interrupted' || (resume?.retryFailed === true && (status === 'failed' || status === 'skipped'));
      if (rerun) {
        store.updateRun(r.index, (x) => {
          x.status = 'pending';
          x.error_type = null;
        });
      }
      if (store.run(r.index).status !== before) events.push({ type: 'run_status', at: now(), run: runSnapshotOf(store.run(r.index)) });
    }
    if (resume?.cycles !== undefined) this.topUpCycles(resume.cycles, events);
    store.commit(events);
  }

  /** More cycles of the same configs, appended cycle by cycle after the existing order. */
  private topUpCycles(cycles: number, events: RunnerEvent[]): void {
    const store = this.store!;
    const plan = this.plan!;
    // the manifest is the truth: a plan.json rewritten just before a crash may be ahead of it
    const have = store.manifest.n_cycles;
    if (cycles <= have) {
      if (cycles < have) this.warn(`--cycles ${cycles} is below the study's ${have} cycles; nothing removed`);
      return;
    }
    const { plan: topped, added } = appendCycles(plan, store.manifest.runs.length, have, cycles);
    this.plan = topped;
    writePlan(this.studyDir, this.plan);
    store.setRuns([...store.manifest.runs, ...added.map(pendingRecord)]);
    store.manifest.n_cycles = cycles;
    for (const r of added) events.push({ type: 'run_status', at: now(), run: runSnapshotOf(store.run(r.index)) });
  }

  // ── the loop ──────────────────────────────────────────────────────────────────────────────

  private nextPending(): RunRecord | null {
    return this.store!.manifest.runs.find((r) => r.status === 'pending') ?? null;
  }

  private async loop(): Promise<void> {
    if (this.plan!.execution.parallel === 'per_gpu') {
      const { slots, reason } = await (this.opts.gpuSlots ?? (() => perGpuSlots(this.opts.env ?? process.env)))();
      if (slots.length > 1) return this.loopPerGpu(slots);
      this.warn(`parallel: per_gpu: ${slots.length} GPU slot(s)${reason ? ` (${reason})` : ''}; running one run at a time`);
    }
    let previous: RunRecord | null = null;
    // The furthest run reached in order: a retried earlier run does not move it back, so a cycle
    // boundary already crossed is not waited for a second time.
    let furthest = -1;
    for (;;) {
      if (await this.holdIfNeeded()) return;
      let next = this.nextPending();
      if (!next) return;
      if (previous) {
        await this.gapsBetween(furthest, next.index);
        if (await this.holdIfNeeded()) return;
        next = this.nextPending();
        if (!next) return;
      }
      await this.execute(next);
      previous = next;
      furthest = Math.max(furthest, next.index);
    }
  }

  /**
   * parallel: per_gpu: up to one run per GPU slot at once, in plan order as slots free up. No gaps
   * or cooldown between runs here (neighbours heat each other anyway; the pre-flight says so).
   */
  private async loopPerGpu(slots: GpuSlot[]): Promise<void> {
    const free = [...slots];
    const started = new Set<number>();
    const tasks = new Set<Promise<void>>();
    for (;;) {
      if (await this.holdIfNeeded()) break;
      const next = this.store!.manifest.runs.find((r) => r.status === 'pending' && !started.has(r.index)) ?? null;
      if (next && free.length > 0) {
        const slot = free.shift()!;
        started.add(next.index);
        const task: Promise<void> = this.execute(next, slot).finally(() => {
          free.push(slot);
          started.delete(next.index);
          tasks.delete(task);
          this.wake();
        });
        tasks.add(task);
        continue;
      }
      if (tasks.size === 0) break;
      // a slot frees up, or a control (pause, quit, abort, retry) wakes us
      await new Promise<void>((resolve) => (this.wakeLoop = resolve));
    }
    await Promise.allSettled([...tasks]);
  }

  /** Waits while paused; true when the study must stop now. */
  private async holdIfNeeded(): Promise<boolean> {
    if (this.stopReason || this.quitRequested) return true;
    if (!this.paused) return false;
    this.store!.setStatus('paused');
    this.store!.commit();
    while (this.paused && !this.stopReason && !this.quitRequested) {
      await new Promise<void>((resolve) => (this.wakeLoop = resolve));
    }
    this.store!.setStatus('running');
    this.store!.commit();
    return Boolean(this.stopReason || this.quitRequested);
  }

  /** Cycle gap when a true cycle boundary lies between the two runs, else config gap; then cooldown. */
  private async gapsBetween(prevIndex: number, nextIndex: number): Promise<void> {
    const exec = this.plan!.execution;
    const boundary = trueCycleBoundaryBetween(this.plan!.order, prevIndex, nextIndex);
    const kind: GapKind = boundary ? 'cycle' : 'config';
    const seconds = boundary ? exec.cycle_gap_seconds : exec.config_gap_seconds;
    if (seconds > 0) await this.countdown(kind, seconds);
    if (exec.cooldown && !this.stopReason && !this.quitRequested) await this.cooldown(exec.cooldown.target_temp_c, exec.cooldown.max_wait_seconds);
  }

  private async countdown(kind: GapKind, totalSeconds: number): Promise<void> {
    const unitMs = this.opts.secondMs ?? 1000;
    this.emitJournaled({ type: 'gap', at: now(), kind, seconds_left: totalSeconds, total_seconds: totalSeconds, temp_c: null });
    const endAt = Date.now() + totalSeconds * unitMs;
    let cut = false;
    while (!cut) {
      const leftMs = endAt - Date.now();
      if (leftMs <= 0) break;
      cut = await this.interruptibleSleep(Math.min(unitMs, leftMs));
      if (!cut && endAt - Date.now() > 0) {
        this.emit({ type: 'gap', at: now(), kind, seconds_left: Math.ceil((endAt - Date.now()) / unitMs), total_seconds: totalSeconds, temp_c: null });
      }
    }
    this.emitJournaled({ type: 'gap_end', at: now(), kind, cut_short: cut });
  }

  private async cooldown(targetC: number, maxWaitSeconds: number): Promise<void> {
    const read = this.opts.readTemperatures ?? readGpuTemperaturesFromNative;
    const unitMs = this.opts.secondMs ?? 1000;
    let temps = await read().catch(() => null);
    if (!temps || temps.length === 0) {
      this.warn('cooldown skipped: GPU temperature unavailable (NVML not readable)');
      return;
    }
    const endAt = Date.now() + maxWaitSeconds * unitMs;
    let hottest = Math.max(...temps);
    if (hottest <= targetC) return;
    this.emitJournaled({ type: 'gap', at: now(), kind: 'cooldown', seconds_left: maxWaitSeconds, total_seconds: maxWaitSeconds, temp_c: hottest });
    let cut = false;
    while (hottest > targetC && Date.now() < endAt && !cut) {
      cut = await this.interruptibleSleep(Math.min(unitMs, Math.max(0, endAt - Date.now())));
      temps = await read().catch(() => null);
      if (!temps || temps.length === 0) break;
      hottest = Math.max(...temps);
      this.emit({ type: 'gap', at: now(), kind: 'cooldown', seconds_left: Math.max(0, Math.ceil((endAt - Date.now()) / unitMs)), total_seconds: maxWaitSeconds, temp_c: hottest });
    }
    if (!cut && hottest > targetC) this.warn(`cooldown gave up after ${maxWaitSeconds} s at ${hottest} °C (target ${targetC} °C)`);
    this.emitJournaled({ type: 'gap_end', at: now(), kind: 'cooldown', cut_short: cut });
  }

  /** Sleeps; true when cut short (skip-gap, quit, abort). */
  private interruptibleSleep(ms: number): Promise<boolean> {
    if (this.stopReason || this.quitRequested) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.cutGap = null;
        resolve(false);
      }, ms);
      this.cutGap = () => {
        clearTimeout(timer);
        this.cutGap = null;
        resolve(true);
      };
    });
  }

  private async execute(rec: RunRecord, slot: GpuSlot | null = null): Promise<void> {
    const store = this.store!;
    const plan = this.plan!;
    const planned = plan.configs.find((c) => c.config_hash === rec.config_hash);
    let attempt = rec.attempts.length + 1;
    // A dir for this attempt can exist when a runner died between spawning a child and recording
    // it: keep a result that child left, otherwise never reuse its dir.
    while (existsSync(runDirFor(this.studyDir, runIdFor(rec, attempt)))) {
      const leftover = runDirFor(this.studyDir, runIdFor(rec, attempt));
      const checked = readResult(path.join(leftover, 'result.json'));
      if (checked.ok) {
        this.adoptLeftover(rec.index, attempt, leftover, checked.result);
        return;
      }
      attempt++;
    }
    const runId = runIdFor(rec, attempt);
    const runDir = runDirFor(this.studyDir, runId);
    mkdirSync(runDir, { recursive: true });
    const spec: RunSpec = {
      v: PROTOCOL_VERSION,
      study_dir: this.studyDir,
      run_dir: runDir,
      run_id: runId,
      index: rec.index,
      config_hash: rec.config_hash,
      cycle: rec.cycle,
      attempt,
      config: (planned?.config ?? {}) as ExperimentConfig,
      result_path: path.join(runDir, 'result.json'),
      power_csv_path: path.join(runDir, 'power.csv'),
      heartbeat_ms: this.opts.heartbeatMs ?? heartbeatMsFor(plan.execution.stall_timeout_seconds),
      cuda_visible_devices: slot ? slot.cudaVisibleDevices : ((this.opts.env ?? process.env).CUDA_VISIBLE_DEVICES ?? null),
    };
    const specPath = path.join(runDir, 'run.json');
    writeFileSync(specPath, JSON.stringify(spec, null, 2) + '\n');
    const { command, args } = (this.opts.workerCommand ?? defaultWorkerCommand)(specPath);
    const timeoutSeconds = plan.execution.experiment_timeout_seconds ?? (await defaultTimeoutSeconds(spec.config));
    const lines = new LineThrottle((line) => this.emit({ type: 'log', at: now(), index: rec.index, line }));
    const handle = new ChildHandle({
      command,
      args,
      env: slot ? { ...(this.opts.env ?? process.env), CUDA_VISIBLE_DEVICES: slot.cudaVisibleDevices } : this.opts.env,
      logPath: path.join(runDir, 'worker.log'),
      resultPath: spec.result_path,
      timeoutMs: timeoutSeconds * 1000,
      stallTimeoutMs: plan.execution.stall_timeout_seconds > 0 ? plan.execution.stall_timeout_seconds * 1000 : null,
      killGraceMs: this.opts.killGraceMs,
      onMessage: (msg) => this.onChildMessage(rec.index, msg),
      onOutput: (chunk) => lines.push(chunk),
    });
    this.current = { index: rec.index, handle };
    this.inFlight.set(rec.index, handle);
    handle.start();
    const startedAt = now();
    store.updateRun(rec.index, (r) => {
      r.status = 'running';
      r.error_type = null;
      r.attempts.push({
        attempt,
        started_at: startedAt,
        ended_at: null,
        status: 'running',
        error_type: null,
        message: null,
        phase_reached: null,
        stderr_tail: null,
        pid: handle.pid,
        run_dir: path.relative(this.studyDir, runDir),
        pid_start_ticks: handle.pid ? procStartTicks(handle.pid) : null,
      });
    });
    const startedEvent: RunnerEvent = { type: 'run_status', at: startedAt, run: runSnapshotOf(store.run(rec.index)) };
    store.commit([startedEvent]);
    this.emit(startedEvent);
    // an abort that arrived while we were spawning
    if (this.stopReason === 'abort') handle.kill('abort');

    const outcome = await handle.done;
    lines.flush();
    this.inFlight.delete(rec.index);
    if (this.current?.index === rec.index) this.current = null;
    this.record(rec.index, outcome);
  }

  private adoptLeftover(index: number, attempt: number, runDir: string, result: RunResult): void {
    const store = this.store!;
    store.updateRun(index, (r) => {
      r.status = 'completed';
      r.error_type = null;
      r.result = path.relative(this.studyDir, path.join(runDir, 'result.json'));
      r.headline = headlineOf(result);
      r.attempts.push({
        attempt,
        started_at: result.started_at,
        ended_at: result.ended_at,
        status: 'completed',
        error_type: null,
        message: 'result left by a worker whose runner died before recording it',
        phase_reached: null,
        stderr_tail: null,
        pid: null,
        run_dir: path.relative(this.studyDir, runDir),
      });
    });
    const e: RunnerEvent = { type: 'run_status', at: now(), run: runSnapshotOf(store.run(index)) };
    store.commit([e]);
    this.emit(e);
  }

  private record(index: number, outcome: ChildOutcome): void {
    const store = this.store!;
    const endedAt = now();
    store.updateRun(index, (r) => {
      const a = r.attempts.at(-1)!;
      r.status = outcome.status;
      r.error_type = outcome.error_type;
      a.status = outcome.status;
      a.ended_at = endedAt;
      a.error_type = outcome.error_type;
      a.message = outcome.message;
      a.phase_reached = outcome.phase_reached;
      // the manifest keeps a short tail; worker.log has everything
      a.stderr_tail = outcome.status === 'completed' ? null : outcome.stderr_tail.slice(-8192) || null;
      a.tree_cleanup = outcome.tree_cleanup;
      if (outcome.result_path && outcome.result) {
        r.result = path.relative(this.studyDir, outcome.result_path);
        r.headline = headlineOf(outcome.result);
      }
    });
    const e: RunnerEvent = { type: 'run_status', at: endedAt, run: runSnapshotOf(store.run(index)) };
    store.commit([e]);
    this.emit(e);
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

  private async finish(): Promise<number> {
    const store = this.store!;
    const counts = { ...store.manifest.counts };
    let status: StudyStatus;
    let code: number;
    if (this.stopReason === 'compromised') {
      status = 'interrupted';
      code = 1;
    } else if (this.stopReason === 'abort' || this.quitRequested || counts.pending > 0) {
      status = 'interrupted';
      code = 130;
    } else if (counts.failed > 0) {
      status = 'failed';
      code = 1;
    } else {
      status = 'completed';
      code = 0;
    }
    store.setStatus(status);
    const finished: RunnerEvent = { type: 'study_finished', at: now(), status, counts: { ...store.manifest.counts } };
    store.commit([finished]);
    this.emit(finished);
    await writeSummarySafely(this.studyDir, (m) => this.warn(m));
    return code;
  }
}

/**
 * How often the child says it is alive: a quarter of the stall timeout, between 0.5 s and 5 s. Each
 * heartbeat wakes both the measured child and the parent, so with the default 120 s stall timeout
 * it is one every 5 s rather than two a second (the parent's CPU target while measuring).
 */
export function heartbeatMsFor(stallTimeoutSeconds: number): number {
  if (!(stallTimeoutSeconds > 0)) return 5000;
  return Math.min(5000, Math.max(500, Math.floor((stallTimeoutSeconds * 1000) / 4)));
}

/** Reads the manifest of a study dir (for `llem watch`, `llem results`, `llem status`). */
export async function loadSnapshot(studyDir: string): Promise<StudySnapshot> {
  const dir = path.resolve(studyDir);
  const m = readManifest(dir);
  return toSnapshot(dir, m, m.status === 'paused', false);
}

export function headlineOf(result: RunResult): RunHeadline {
  const started = Date.parse(result.started_at);
  const ended = Date.parse(result.ended_at);
  return {
    energy_j: result.metrics.energy_j,
    energy_per_output_token_j: result.metrics.energy_per_output_token_j,
    output_tokens_per_s: result.metrics.output_tokens_per_s,
    window_s: result.metrics.window_s,
    duration_s: Number.isFinite(started) && Number.isFinite(ended) ? (ended - started) / 1000 : null,
    flags: result.flags.map((f) => f.code),
    energy_unavailable_reason: result.metrics.energy_unavailable_reason,
  };
}

/**
 * Whether a true cycle boundary lies between order positions `a` and `b` (a < b): a point after
 * which every run of the earlier cycles is done and none of the later ones has started. Sequential
 * order (A A B B) has none; interleaved and shuffled have one after each full cycle.
 */
export function trueCycleBoundaryBetween(order: PlannedRun[], a: number, b: number): boolean {
  if (b <= a) return false;
  const n = order.length;
  const minAfter = new Array<number>(n + 1).fill(Infinity);
  for (let j = n - 1; j >= 0; j--) minAfter[j] = Math.min(minAfter[j + 1]!, order[j]!.cycle);
  let maxBefore = -Infinity;
  for (let i = 0; i < b && i < n; i++) {
    maxBefore = Math.max(maxBefore, order[i]!.cycle);
    if (i >= a && maxBefore < minAfter[i + 1]!) return true;
  }
  return false;
}

async function defaultTimeoutSeconds(config: ExperimentConfig): Promise<number> {
  let modelBytes: number | null = null;
  try {
    if (typeof config.model === 'string' && !config.model.startsWith('builtin:')) modelBytes = statSync(config.model).size;
  } catch {
    modelBytes = null;
  }
  try {
    const mod = (await import('../study/estimate.ts' as string)) as {
      defaultRunTimeoutSeconds?: (c: ExperimentConfig, bytes: number | null) => number;
    };
    const s = mod.defaultRunTimeoutSeconds?.(config, modelBytes);
    if (typeof s === 'number' && Number.isFinite(s) && s > 0) return s;
  } catch {
    // the estimate module is not there yet: fall through
  }
  return 3600;
}

async function readGpuTemperaturesFromNative(): Promise<number[] | null> {
  try {
    const mod = (await import('../native/index.ts' as string)) as { readGpuTemperatures?: () => unknown };
    if (typeof mod.readGpuTemperatures !== 'function') return null;
    const raw = await mod.readGpuTemperatures();
    if (!Array.isArray(raw)) return null;
    const temps = raw
      .map((t: unknown) =>
        typeof t === 'number' ? t : t && typeof t === 'object' ? ((t as Record<string, unknown>).temp_c ?? (t as Record<string, unknown>).temperature_c) : null,
      )
      .filter((t): t is number => typeof t === 'number' && Number.isFinite(t));
    return temps.length > 0 ? temps : null;
  } catch {
    return null;
  }
}

async function writeSummarySafely(studyDir: string, warn: (m: string) => void): Promise<void> {
  try {
    const mod = (await import('../results/summary.ts' as string)) as { writeSummary?: (dir: string) => unknown };
    if (typeof mod.writeSummary !== 'function') return;
    await mod.writeSummary(studyDir);
  } catch (err) {
    warn(`summary.json not written: ${(err as Error).message}`);
  }
}

/** Worker output as log events, at most `perSecond` lines a second (a 200 MB flood must not flood the UI). */
class LineThrottle {
  private partial = '';
  private windowStart = Date.now();
  private sent = 0;
  private dropped = 0;
  constructor(
    private readonly emitLine: (line: string) => void,
    private readonly perSecond = 100,
  ) {}
  push(chunk: Buffer): void {
    if (this.sent >= this.perSecond && Date.now() - this.windowStart < 1000) {
      // over budget: count lines cheaply without splitting strings
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.dropped++;
      this.partial = '';
      return;
    }
    const text = this.partial + chunk.toString('utf8');
    const parts = text.split('\n');
    this.partial = (parts.pop() ?? '').slice(-4096);
    for (const line of parts) this.line(line);
  }
  flush(): void {
    if (this.partial) this.line(this.partial);
    this.partial = '';
    if (this.dropped > 0) this.emitLine(`… ${this.dropped} lines not shown (see worker.log)`);
    this.dropped = 0;
  }
  private line(line: string): void {
    const t = Date.now();
    if (t - this.windowStart >= 1000) {
      if (this.dropped > 0) this.emitLine(`… ${this.dropped} lines not shown (see worker.log)`);
      this.windowStart = t;
      this.sent = 0;
      this.dropped = 0;
    }
    if (this.sent >= this.perSecond) {
      this.dropped++;
      return;
    }
    this.sent++;
    this.emitLine(line.slice(0, 1000));
  }
}

function now(): string {
  return new Date().toISOString();
}
