// What a runner does to a study before its first run, in every launcher (the local runner under
// its lock, `llem resume --launcher slurm` under a short one):
//   - a worker left by a killed runner may still hold the GPU: wait for it (bounded), never start beside it;
//   - a changed study YAML is refused unless --force;
//   - a result written just before the runner died is adopted (judged by the validity gate), not
//     measured again;
//   - a run left `running` is interrupted; interrupted runs go back to pending, failed, skipped and
//     invalid ones too with --retry-failed; completed runs never rerun;
//   - --cycles N appends cycles (src/runner/top-up.ts); --experiment-timeout/--stall-timeout are
//     recorded in the manifest and apply to every later attempt until changed.
import os from 'node:os';
import path from 'node:path';
import { RESULT_FILE } from '../study-dir/files.ts';
import { checkResult } from '../study-dir/read.ts';
import type { Manifest, RunRecord } from '../study-dir/schema.ts';
import { rerunOnResume } from '../study-dir/statuses.ts';
import type { PlanFile } from '../study/types.ts';
import { validityPolicyOf } from '../measure/validity.ts';
import { RunnerInputError } from './errors.ts';
import type { RunnerEvent } from './events.ts';
import type { ManifestStore } from './manifest.ts';
import { groupAlive, sameProcessAlive } from './proc.ts';
import { pendingRecord, sha256File, writePlan } from './study-dir.ts';
import { ORPHAN_WAIT_MS } from './timing.ts';
import { appendCycles } from './top-up.ts';
import { adoptResult, interruptRun, requeueInvalid, requeueRun, runStatusEvent } from './transitions.ts';

export interface ResumeOptions {
  /** Failed, skipped and invalid runs go back to pending too. */
  retryFailed?: boolean;
  /** Top up to this many cycles (more runs appended; completed runs untouched). */
  cycles?: number;
  /** Resume even though the study YAML changed since the study started. */
  force?: boolean;
  /** Total timeout of every later attempt (replaces the plan's and the model-aware default). */
  experimentTimeoutSeconds?: number;
  /** Stall timeout of every later attempt. */
  stallTimeoutSeconds?: number;
}

/** The worker a run's last attempt recorded, when it is ours to look for on this host. */
function localWorkerOf(r: RunRecord): { pid: number; alive: () => boolean } | null {
  if (r.status !== 'running') return null;
  const a = r.attempts.at(-1);
  if (!a?.pid || a.status !== 'running') return null;
  // only a pid recorded on this host, with its start time, names our worker and not a reused pid
  if ((a.host !== undefined && a.host !== os.hostname()) || a.pid_start_ticks == null) return null;
  const pid = a.pid;
  const ticks = a.pid_start_ticks;
  // the worker leads its process group: wait for the group, not only its leader
  return { pid, alive: () => sameProcessAlive(pid, ticks) || groupAlive(pid) };
}

/**
 * A runner killed mid-run leaves its worker to the worker's own orphan guard, which ends its
 * process group within a second or two. Waits for every such worker (saying so through `warn`),
 * up to `boundMs`; errors: RunnerInputError when one is still alive after that.
 */
export async function waitForOrphanedWorkers(manifest: Manifest, manifestFile: string, options: { warn: (message: string) => void; boundMs?: number }): Promise<void> {
  const boundMs = options.boundMs ?? ORPHAN_WAIT_MS;
  const workers = manifest.runs.flatMap((r) => {
    const w = localWorkerOf(r);
    return w && w.alive() ? [{ run: r, ...w }] : [];
  });
  if (workers.length === 0) return;
  for (const w of workers) {
    options.warn(`run ${w.run.run_id}: its worker (pid ${w.pid}) of a runner that was killed is still ending; waiting up to ${Math.round(boundMs / 1000)} s for its process group to be gone`);
  }
  const deadline = Date.now() + boundMs;
  while (Date.now() < deadline && workers.some((w) => w.alive())) await new Promise((r) => setTimeout(r, 100));
  const left = workers.find((w) => w.alive());
  if (left) {
    throw new RunnerInputError(
      `${manifestFile}: run ${left.run.run_id} is still running as pid ${left.pid} (a worker of a runner that was killed) after ${Math.round(boundMs / 1000)} s; kill its group (kill -- -${left.pid}), then resume`,
    );
  }
}

/** Refuses a resume against a study YAML that changed since the study started (unless `force`). */
export function refuseChangedStudy(manifest: Manifest, plan: PlanFile, studyDir: string, resume: ResumeOptions): void {
  if (resume.force || !manifest.study_yaml_sha256) return;
  const current = sha256File(plan.source_path);
  if (current !== null && current !== manifest.study_yaml_sha256) {
    throw new RunnerInputError(
      `${plan.source_path} changed since this study started (${studyDir}/study.yaml is the frozen copy); resume with --force to run the remaining runs of the original plan anyway`,
    );
  }
}

/**
 * Applies the resume rules (see the header) to the open store, under the study lock. `resume` is
 * null for a fresh `llem run` (which finds nothing to do but is held to the same rules). Returns
 * the plan to execute (topped up with --cycles) and the events to commit.
 * Errors: RunnerInputError for a changed study YAML.
 */
export function applyResumeRules(
  store: ManifestStore,
  plan: PlanFile,
  studyDir: string,
  resume: ResumeOptions | null,
  warn: (message: string) => void,
): { plan: PlanFile; events: RunnerEvent[] } {
  if (resume) refuseChangedStudy(store.manifest, plan, studyDir, resume);
  const policy = validityPolicyOf(plan.execution);
  if (resume?.cycles !== undefined && plan.execution.target) {
    throw new RunnerInputError(
      `${studyDir}: --cycles ${resume.cycles}: this study has n_cycles: auto, so its stopping rule decides each config's cycles (up to max_cycles ${plan.execution.target.max_cycles}); --cycles tops up a fixed n_cycles`,
    );
  }
  const events: RunnerEvent[] = [];
  for (const r of store.manifest.runs) {
    if (r.status === 'completed' || r.status === 'pending') continue;
    const before = r.status;
    const last = r.attempts.at(-1);
    // A result written just before the runner died is kept, not measured again (unless the gate
    // judges it invalid and a re-measurement is due).
    if (last && (before === 'running' || before === 'interrupted')) {
      const runDir = path.join(studyDir, last.run_dir);
      const checked = checkResult(path.join(runDir, RESULT_FILE));
      if (checked.ok) {
        events.push(adoptResult(store, studyDir, r.index, { attempt: last.attempt, runDir, result: checked.result }, policy));
        const requeued = requeueInvalid(store, r.index, policy);
        if (requeued) events.push(requeued);
        continue;
      }
    }
    if (before === 'running') interruptRun(store, r.index, { error_type: 'UserInterrupted', message: 'the runner stopped while this run was in progress' });
    const status = store.run(r.index).status;
    if (rerunOnResume(status, resume?.retryFailed === true)) requeueRun(store, r.index);
    if (store.run(r.index).status !== before) events.push(runStatusEvent(store.run(r.index)));
  }
  let current = plan;
  if (resume?.cycles !== undefined) current = topUp(store, plan, studyDir, resume.cycles, events, warn);
  if (resume && (resume.experimentTimeoutSeconds !== undefined || resume.stallTimeoutSeconds !== undefined)) {
    const before = store.manifest.timeout_override;
    store.manifest.timeout_override = {
      experiment_timeout_seconds: resume.experimentTimeoutSeconds ?? before?.experiment_timeout_seconds ?? null,
      stall_timeout_seconds: resume.stallTimeoutSeconds ?? before?.stall_timeout_seconds ?? null,
      set_at: new Date().toISOString(),
    };
  }
  return { plan: current, events };
}

/** More cycles of the same configs, appended cycle by cycle after the existing order. */
function topUp(store: ManifestStore, plan: PlanFile, studyDir: string, cycles: number, events: RunnerEvent[], warn: (m: string) => void): PlanFile {
  // the manifest is the truth: a plan.json rewritten just before a crash may be ahead of it
  const have = store.manifest.n_cycles;
  if (cycles <= have) {
    if (cycles < have) warn(`--cycles ${cycles} is below the study's ${have} cycles; nothing removed`);
    return plan;
  }
  const { plan: topped, added } = appendCycles(plan, store.manifest.runs.length, have, cycles);
  writePlan(studyDir, topped);
  store.setRuns([...store.manifest.runs, ...added.map(pendingRecord)]);
  store.manifest.n_cycles = cycles;
  for (const r of added) events.push(runStatusEvent(store.run(r.index)));
  return topped;
}

/**
 * Where a stopped study left off: the run whose attempt ended last, and how long the GPU has been
 * idle since. Resume runs the gap due after that run (less the idle time) and the cooldown before
 * its first run, as if it had never stopped. Null when no attempt ever ended.
 */
export function lastEndedRun(manifest: Manifest, nowMs = Date.now()): { index: number; idleSeconds: number } | null {
  let best: { index: number; endedMs: number } | null = null;
  for (const r of manifest.runs) {
    for (const a of r.attempts) {
      const t = a.ended_at ? Date.parse(a.ended_at) : NaN;
      if (Number.isFinite(t) && (!best || t > best.endedMs)) best = { index: r.index, endedMs: t };
    }
  }
  return best ? { index: best.index, idleSeconds: Math.max(0, (nowMs - best.endedMs) / 1000) } : null;
}
