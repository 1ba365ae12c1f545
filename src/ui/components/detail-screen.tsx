// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { Box } from 'ink';
import { formatDuration, formatNumber, truncate } from '../format.ts';
import { countRender } from '../render-count.ts';
import { selectSelectedRow } from '../selectors.ts';
import type { UiState } from '../state.ts';
import { Line } from './line.tsx';
import { STATUS_COLORS, tint, useUiEnv } from './ui-env.tsx';

function seconds(from: string, to: string | null): number | null {
  const a = Date.parse(from);
  const b = to ? Date.parse(to) : NaN;
  return Number.isFinite(a) && Number.isFinite(b) ? (b - a) / 1000 : null;
}

/** Every run of the selected config: attempts with timings and errors, metrics, result path. */
export function DetailScreen(props: { state: UiState; height: number; columns: number }) {
  countRender('DetailScreen');
  const env = useUiEnv();
  const { state } = props;
  const row = selectSelectedRow(state);
  const lines: Array<{ text: string; color?: string; bold?: boolean }> = [];
  if (!row) {
    lines.push({ text: 'no row selected' });
  } else {
    lines.push({ text: `${row.label}  (config ${row.configHash})`, bold: true });
    for (const index of row.runIndices) {
      const run = state.study?.runs[index];
      if (!run) continue;
      lines.push({ text: `run ${run.run_id}  cycle ${run.cycle}  ${run.status}${run.error_type ? ` (${run.error_type})` : ''}`, color: tint(env, STATUS_COLORS[run.status] ?? 'white'), bold: true });
      for (const a of run.attempts) {
        lines.push({
          text: `  attempt ${a.attempt}: ${a.status}${a.error_type ? ` ${a.error_type}` : ''}  started ${a.started_at}  took ${formatDuration(seconds(a.started_at, a.ended_at))}${a.phase_reached ? `  reached ${a.phase_reached}` : ''}`,
        });
        if (a.validity && !a.validity.valid) {
          // every reason on its own line: what made the numbers unusable, and what to fix
          lines.push({ text: `    invalid, not averaged (result kept in its dir):`, color: tint(env, STATUS_COLORS.invalid!) });
          for (const r of a.validity.reasons) lines.push({ text: `    - ${r.code}: ${r.detail}`, color: tint(env, STATUS_COLORS.invalid!) });
        } else if (a.message) lines.push({ text: `    ${a.message}`, color: tint(env, 'red') });
        if (a.stderr_tail) {
          for (const l of a.stderr_tail.trimEnd().split('\n').slice(-3)) lines.push({ text: `    | ${l}`, color: tint(env, 'gray') });
        }
        lines.push({ text: `    dir ${a.run_dir}`, color: tint(env, 'gray') });
      }
      if (run.headline) {
        const h = run.headline;
        lines.push({
          text: `  energy ${formatNumber(h.energy_j, ' J')}  ${formatNumber(h.energy_per_output_token_j, ' J/tok')}  ${formatNumber(h.output_tokens_per_s, ' tok/s')}  window ${formatDuration(h.window_s)}  duration ${formatDuration(h.duration_s)}${h.flags.length ? `  flags ${h.flags.join(',')}` : ''}`,
        });
      }
      if (run.result) lines.push({ text: `  result ${run.result}` });
    }
  }
  const shown = lines.length > props.height ? [...lines.slice(0, props.height - 1), { text: `… ${lines.length - props.height + 1} more lines` }] : lines;
  return (
    <Box flexDirection="column" width={props.columns} height={props.height} overflowY="hidden">
      {shown.map((l, i) => (
        <Line key={i} color={l.color} bold={l.bold}>
          {truncate(l.text, props.columns)}
        </Line>
      ))}
    </Box>
  );
}
