// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { Box } from 'ink';
import { formatDuration, formatNumber, sparkline, truncate } from '../format.ts';
import { countRender } from '../render-count.ts';
import { labelOfRun, selectRunningRun } from '../selectors.ts';
import type { UiState } from '../state.ts';
import { gpuSettingsLine } from '../../gpu-settings/record.ts';
import { Line } from './line.tsx';
import { tint, useUiEnv } from './ui-env.tsx';

/** The run being measured (or the gap between runs): phase, progress, timeout, power. */
export function LivePanel(props: { state: UiState; height: number; columns: number }) {
  countRender('LivePanel');
  const env = useUiEnv();
  const { state } = props;
  const bordered = props.height >= 5;
  const inner = bordered ? props.height - 2 : props.height;
  const width = bordered ? props.columns - 4 : props.columns;
  const lines: Array<{ text: string; color?: string }> = [];
  const running = selectRunningRun(state);
  const live = state.live;
  if (state.gap) {
    const g = state.gap;
    const leftS = Math.max(0, g.secondsLeft - (state.nowMs - g.sinceMs) / 1000);
    lines.push({ text: `${g.kind} gap: ${formatDuration(leftS)} left of ${formatDuration(g.totalSeconds)}${g.tempC !== null ? `  GPU ${g.tempC}°C` : ''}  (c cuts it short)`, color: tint(env, 'yellow') });
  }
  if (running && live && live.index === running.index) {
    const spinner = env.glyphs.spinner[Math.floor(state.nowMs / 1000) % env.glyphs.spinner.length];
    const attempt = running.attempts[running.attempts.length - 1];
    const startedMs = attempt ? Date.parse(attempt.started_at) : NaN;
    const elapsedS = Number.isFinite(startedMs) ? (state.nowMs - startedMs) / 1000 : null;
    const timeoutS = state.plan.execution.experiment_timeout_seconds;
    const progress = live.total ? `${live.done}/${live.total}` : live.done > 0 ? `${live.done}` : '';
    lines.push({
      text: `${spinner} ${labelOfRun(state, running.index)}  ${live.phase ?? 'starting'} ${progress}  ${formatDuration(elapsedS)}${timeoutS ? ` / ${formatDuration(timeoutS)} timeout` : ''}`,
      color: tint(env, 'cyan'),
    });
    const power = live.powerW[live.powerW.length - 1];
    const spark = sparkline(live.powerW, Math.max(0, Math.min(40, width - 40)), env.glyphs.spark);
    lines.push({
      text: `power ${formatNumber(power ?? null, ' W')} ${spark}  energy ${formatNumber(live.energySoFarJ, ' J')}  temp ${live.tempC !== null ? `${live.tempC}°C` : '–'}${live.warmupCv !== null ? `  warmup CV ${formatNumber(live.warmupCv)}` : ''}`,
    });
    // the GPU settings this attempt runs under, as applied and verified before its child started
    if (attempt?.gpu_settings?.length) lines.push({ text: gpuSettingsLine(attempt.gpu_settings) });
  } else if (!state.gap) {
    const text = state.finished
      ? `study ${state.finished.status}; results in ${state.study?.study_dir ?? ''}`
      : state.study?.paused
        ? 'paused: no run is running (p resumes)'
        : state.study
          ? 'waiting for the next run'
          : 'starting the study…';
    lines.push({ text });
  }
  const shown = lines.slice(0, inner);
  return (
    <Box
      flexDirection="column"
      width={props.columns}
      height={props.height}
      borderStyle={bordered ? env.glyphs.border : undefined}
      borderColor={tint(env, 'gray')}
      paddingX={bordered ? 1 : 0}
      overflowY="hidden"
    >
      {shown.map((l, i) => (
        <Line key={i} color={l.color}>
          {truncate(l.text, width)}
        </Line>
      ))}
    </Box>
  );
}
