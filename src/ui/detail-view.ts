// The detail screen as lines: every run of the selected config with its whole attempt history,
// each error in full (wrapped, never cut), the tail of the latest attempt's worker.log (the
// child's stdout and stderr), metrics and flags by name, and how to retry.
import type { AttemptRecord, RunSnapshot } from '../study-dir/schema.ts';
import { flagShort } from './flags.ts';
import { formatDuration, formatNumber, formatTime } from './format.ts';
import { wrapText, type StyledLine } from './lines.ts';
import { selectSelectedRow } from './selectors.ts';
import type { UiState } from './state.ts';
import { STATUS_COLORS } from './theme.ts';

/** Lines of worker.log shown per attempt. */
export const LOG_TAIL_LINES = 20;
/** Older attempts keep the manifest's short stderr tail. */
const OLD_ATTEMPT_STDERR_LINES = 5;

function seconds(from: string, to: string | null): number | null {
  const a = Date.parse(from);
  const b = to ? Date.parse(to) : NaN;
  return Number.isFinite(a) && Number.isFinite(b) ? (b - a) / 1000 : null;
}

/** Run dirs whose worker.log the detail screen shows: the latest attempt of each run that started. */
export function detailLogDirs(state: UiState): string[] {
  const row = selectSelectedRow(state);
  if (!row) return [];
  const dirs: string[] = [];
  for (const index of row.runIndices) {
    const last = state.study?.runs[index]?.attempts.at(-1);
    if (last) dirs.push(last.run_dir);
  }
  return dirs;
}

function attemptLines(state: UiState, run: RunSnapshot, a: AttemptRecord, latest: boolean, width: number): StyledLine[] {
  const out: StyledLine[] = [];
  const took = a.ended_at ? `took ${formatDuration(seconds(a.started_at, a.ended_at))}` : 'still running';
  out.push({
    text: `  attempt ${a.attempt}: ${a.status}${a.error_type ? ` ${a.error_type}` : ''}  started ${formatTime(Date.parse(a.started_at))}  ${took}${a.phase_reached ? `  reached ${a.phase_reached}` : ''}`,
  });
  if (a.message) for (const line of wrapText(a.message, width - 4, '  ')) out.push({ text: `    ${line}`, color: 'red' });
  const log = latest ? state.runLogs[a.run_dir] : undefined;
  if (latest && log && log.lines.length > 0) {
    out.push({ text: `    ${a.run_dir}/worker.log, last ${log.lines.length} line${log.lines.length === 1 ? '' : 's'}:`, dim: true });
    for (const l of log.lines) for (const w of wrapText(l, width - 6, '  ')) out.push({ text: `    │ ${w}`, color: 'gray' });
  } else {
    if (latest && log?.error) out.push({ text: `    ${a.run_dir}/worker.log: ${log.error}`, dim: true });
    else if (latest && log && log.lines.length === 0) out.push({ text: `    ${a.run_dir}/worker.log is empty`, dim: true });
    const tail = a.stderr_tail?.trimEnd();
    if (tail) {
      const lines = tail.split('\n').slice(latest ? -LOG_TAIL_LINES : -OLD_ATTEMPT_STDERR_LINES);
      out.push({ text: `    stderr, last ${lines.length} line${lines.length === 1 ? '' : 's'}:`, dim: true });
      for (const l of lines) for (const w of wrapText(l, width - 6, '  ')) out.push({ text: `    │ ${w}`, color: 'gray' });
    }
    if (!latest || !log) out.push({ text: `    dir ${a.run_dir}`, dim: true });
  }
  if (run.status === 'running' && latest && !log) out.push({ text: '    (reading worker.log…)', dim: true });
  return out;
}

/** Everything about the selected config, wrapped to `width`. */
export function detailLines(state: UiState, width: number): StyledLine[] {
  const row = selectSelectedRow(state);
  if (!row) return [{ text: 'no row selected' }];
  const lines: StyledLine[] = [];
  for (const l of wrapText(`${row.label}  (config ${row.configHash})`, width, '  ')) lines.push({ text: l, bold: true });
  for (const index of row.runIndices) {
    const run = state.study?.runs[index];
    if (!run) continue;
    const attempts = run.attempts.length;
    lines.push({
      text: `run ${run.run_id}  cycle ${run.cycle}  ${run.status}${run.error_type ? ` (${run.error_type})` : ''}${attempts > 1 ? `  ${attempts} attempts` : ''}`,
      color: STATUS_COLORS[run.status],
      bold: true,
    });
    run.attempts.forEach((a, k) => lines.push(...attemptLines(state, run, a, k === attempts - 1, width)));
    if (run.headline) {
      const h = run.headline;
      lines.push({
        text: `  energy ${formatNumber(h.energy_j, ' J')}  ${formatNumber(h.energy_per_output_token_j, ' J/tok')}  ${formatNumber(h.output_tokens_per_s, ' tok/s')}  window ${formatDuration(h.window_s)}  duration ${formatDuration(h.duration_s)}`,
      });
      if (h.energy_j === null && h.energy_unavailable_reason) {
        for (const l of wrapText(`energy not measured: ${h.energy_unavailable_reason}`, width - 2, '  ')) lines.push({ text: `  ${l}`, color: 'yellow' });
      }
      if (h.flags.length > 0) lines.push({ text: `  flags: ${h.flags.map((f) => `${flagShort(f)} ${f}`).join(', ')}` });
    }
    if (run.result) lines.push({ text: `  result ${run.result}`, dim: true });
  }
  if (row.retryable.length > 0) {
    const dir = state.study?.study_dir ?? '<dir>';
    lines.push({ text: '' });
    lines.push({
      text: state.readOnly
        ? `retry: llem resume ${dir} --retry-failed (once the study's runner has stopped)`
        : `r retries this config's ${row.retryable.length} failed, skipped or interrupted run(s); R retries all of them`,
      color: 'yellow',
    });
  }
  return lines;
}
