// The line reporter used without a TTY (or with --no-tui): progress to stderr, the final summary
// to stdout (or `status --json` with --json). Never throws into the runner.
import type { RunnerEvent } from '../runner/events.ts';
import { statusJson, type StudyRunner } from '../runner/index.ts';
import { localRunnerInfo } from '../runner/launchers/local.ts';
import { readManifest } from '../study-dir/read.ts';
import type { RunHeadline, RunRecord, StudySnapshot } from '../study-dir/schema.ts';
import { etaRunsOf, expectedRoundRuns, liveEta } from '../study/live-eta.ts';
import { formatDuration } from '../ui/format.ts';
import { preflightLines, preflightModel, runsToGo } from '../ui/preflight.ts';
import { writeErr, writeOut } from './lifecycle.ts';

export interface PlainReporter {
  /** Prints the final summary; call once run() resolved. */
  finish(exitCode: number): void;
  detach(): void;
}

export function attachPlainReporter(runner: StudyRunner, options: { json: boolean }): PlainReporter {
  let total = 0;
  let energyReasonShown: string | null = null;
  // the study as the events tell it, for the live ETA (src/study/live-eta.ts)
  const runs: RunRecord[] = [];
  const stopped = new Set<string>();
  const unsubscribe = runner.subscribe((e) => onEvent(e));
  function eta(): string {
    const plan = runner.planFile;
    if (!plan) return '';
    const timed = etaRunsOf(runs, Date.now());
    if (plan.execution.target) timed.push(...expectedRoundRuns(plan.estimate, runs, stopped));
    const left = liveEta({ runs: timed, estimate: plan.estimate, execution: plan.execution });
    return left.remaining_seconds > 0 ? `  ETA ${formatDuration(left.remaining_seconds)}` : '';
  }
  function onEvent(e: RunnerEvent): void {
    switch (e.type) {
      case 'study_started': {
        total = e.snapshot.runs.length;
        runs.splice(0, runs.length, ...e.snapshot.runs);
        for (const s of e.snapshot.rounds?.stops ?? []) stopped.add(s.config_hash);
        writeErr(`study ${e.snapshot.study_name}: ${e.snapshot.counts.pending} of ${total} runs to go → ${e.snapshot.study_dir}\n`);
        // the pre-flight, always, before the first run: what will run, what was skipped, how long
        const plan = runner.planFile;
        if (plan) {
          const toGo = runsToGo(plan, e.snapshot.runs.map((r) => r.status));
          writeErr(preflightLines(preflightModel(plan, toGo), Date.now(), { title: false }).join('\n') + '\n');
        }
        break;
      }
      case 'stopping':
        if (e.round !== null) writeErr(roundText(e, runner.planFile?.configs ?? [], stopped));
        for (const c of e.configs) if (c.status === 'stopped') stopped.add(c.config_hash);
        total = Math.max(total, ...e.added.map((r) => r.index + 1));
        break;
      case 'run_status': {
        const r = e.run;
        runs[r.index] = r;
        const a = r.attempts.at(-1);
        const tag = `[${String(r.index + 1).padStart(String(total).length)}/${total}] ${a?.run_dir.split('/').pop() ?? r.run_id}`;
        if (r.status === 'running') writeErr(`${tag} running${a && a.attempt > 1 ? ` (attempt ${a.attempt})` : ''}\n`);
        else if (r.status === 'completed') {
          writeErr(`${tag} completed  ${headlineText(r.headline, energyNa)}${eta()}\n`);
        } else if (r.status === 'pending' && a?.status === 'invalid') {
          writeErr(`${tag} measuring it again as attempt ${a.attempt + 1} (attempt ${a.attempt} was invalid)\n`);
        } else if (r.status === 'invalid') {
          writeErr(`${tag} ${a?.message ?? 'invalid'}\n`);
        } else if (r.status !== 'pending') {
          writeErr(`${tag} ${r.status}: ${r.error_type ?? ''}${a?.message ? ` — ${a.message.slice(0, 300)}` : ''}${eta()}\n`);
        }
        break;
      }
      case 'phase':
        writeErr(`        phase ${e.phase}\n`);
        break;
      case 'gap':
        // countdown ticks are for the TUI; the plain reporter names the gap once
        if (e.seconds_left === e.total_seconds) {
          writeErr(
            e.kind === 'cooldown'
              ? `        cooldown: GPU at ${e.temp_c ?? '?'} °C, waiting up to ${e.total_seconds} s\n`
              : `        ${e.kind} gap ${e.total_seconds} s\n`,
          );
        }
        break;
      case 'gap_end':
        if (e.cut_short) writeErr(`        ${e.kind} gap cut short\n`);
        break;
      case 'paused':
        writeErr(e.paused ? 'paused: no new run will start\n' : 'resumed\n');
        break;
      case 'quit_requested':
        writeErr(e.requested ? 'quitting after the current run\n' : 'quit cancelled\n');
        break;
      case 'warning':
        writeErr(`warning: ${e.message}\n`);
        break;
      default:
        break;
    }
  }
  // The reason energy is missing is said once (and again only when it changes), not on every line.
  function energyNa(reason: string | null): string {
    if (!reason || reason === energyReasonShown) return 'energy n/a';
    energyReasonShown = reason;
    // First line only: the result file and `llem doctor` keep the full story (paths tried).
    return `energy n/a (${reason.split(/;? tried:|\n/)[0]!.trim()})`;
  }
  return {
    finish(exitCode) {
      unsubscribe();
      let snap: StudySnapshot;
      try {
        snap = runner.snapshot();
      } catch (err) {
        writeErr(`llem: ${(err as Error).message}\n`);
        return;
      }
      if (options.json) {
        writeOut(JSON.stringify(statusJson(readManifest(snap.study_dir), localRunnerInfo(snap.study_dir)), null, 2) + '\n');
        return;
      }
      writeOut(summaryText(snap, exitCode));
    },
    detach: unsubscribe,
  };
}

/** n_cycles: auto: a round decided — the configs it stopped (why) and the runs it added. */
function roundText(e: Extract<RunnerEvent, { type: 'stopping' }>, configs: ReadonlyArray<{ config_hash: string; label: string }>, stoppedBefore: ReadonlySet<string>): string {
  const label = (hash: string) => configs.find((c) => c.config_hash === hash)?.label ?? hash;
  // one run appended per config that measures another cycle
  const lines = [`round ${e.round}: ${e.added.length} config(s) measure another cycle`];
  for (const c of e.configs) {
    if (c.status === 'stopped' && !stoppedBefore.has(c.config_hash)) lines.push(`        ${label(c.config_hash)}: stopped ${c.reason} after ${c.cycles} cycle(s) — ${c.detail}`);
  }
  return lines.join('\n') + '\n';
}

/** A completed run's numbers as plain text, rounded ("12.3 s  45.6 J  833.4 tok/s"); shared with plain `llem watch`. */
export function headlineText(h: RunHeadline | null, energyNa: (reason: string | null) => string = () => 'energy n/a'): string {
  return [
    h?.duration_s != null ? `${h.duration_s.toFixed(1)} s` : null,
    h?.energy_j != null ? `${h.energy_j.toFixed(1)} J` : energyNa(h?.energy_unavailable_reason ?? null),
    h?.output_tokens_per_s != null ? `${h.output_tokens_per_s.toFixed(1)} tok/s` : null,
    h && h.flags.length > 0 ? `flags: ${h.flags.join(',')}` : null,
  ]
    .filter(Boolean)
    .join('  ');
}

export function summaryText(snap: StudySnapshot, exitCode: number): string {
  const c = snap.counts;
  const lines = [
    `study ${snap.study_name}: ${snap.status} — ${c.completed} completed, ${c.failed} failed, ${c.skipped} skipped, ${c.interrupted} interrupted, ${c.invalid} invalid, ${c.pending} pending`,
  ];
  for (const r of snap.runs) {
    const a = r.attempts.at(-1);
    if (r.status === 'failed') lines.push(`  failed ${a?.run_dir ?? r.run_id}: ${r.error_type}${a?.message ? ` — ${a.message.slice(0, 200)}` : ''}`);
    // every reason of an invalid run, untruncated: they say what to fix before measuring again
    if (r.status === 'invalid') lines.push(`  invalid ${a?.run_dir ?? r.run_id} after ${r.attempts.filter((x) => x.status === 'invalid').length} attempt(s): ${a?.message ?? ''}`);
  }
  lines.push(`  study dir: ${snap.study_dir}`);
  if (exitCode === 130 || c.pending > 0 || c.interrupted > 0) lines.push(`  resume with: llem resume ${snap.study_dir}`);
  else if (c.failed + c.skipped + c.invalid > 0) lines.push(`  retry the failed, skipped and invalid runs with: llem resume ${snap.study_dir} --retry-failed`);
  if (c.completed > 0) lines.push(`  results: llem results ${snap.study_dir}   report: llem report ${snap.study_dir}`);
  return lines.join('\n') + '\n';
}
