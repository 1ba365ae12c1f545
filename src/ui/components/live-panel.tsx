// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { Box, Text } from 'ink';
import Spinner from 'ink-spinner';
import { formatDuration, formatNumber, sparkline, truncate } from '../format.ts';
import { usableKey } from '../keymap.ts';
import { configTimeoutSeconds } from '../preflight.ts';
import { countRender } from '../render-count.ts';
import { configIndexOf, labelOfRun, selectRunningRun } from '../selectors.ts';
import { QUIET_PHASES, type UiState } from '../state.ts';
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
  const lines: Array<{ text: string; color?: string; spinner?: boolean }> = [];
  const running = selectRunningRun(state);
  const live = state.live;
  if (state.gap) {
    const g = state.gap;
    const leftS = Math.max(0, g.secondsLeft - (state.nowMs - g.sinceMs) / 1000);
    const cut = usableKey(state, 'cut_gap');
    lines.push({
      text: `${g.kind} gap: ${formatDuration(leftS)} left of ${formatDuration(g.totalSeconds)}${g.tempC !== null ? `  GPU ${g.tempC}°C` : ''}${cut ? `  (${cut} cuts it short)` : ''}`,
      color: tint(env, 'yellow'),
    });
  }
  if (running && live && live.index === running.index) {
    const attempt = running.attempts[running.attempts.length - 1];
    const startedMs = attempt ? Date.parse(attempt.started_at) : NaN;
    const elapsedS = Number.isFinite(startedMs) ? (state.nowMs - startedMs) / 1000 : null;
    const configIndex = configIndexOf(state.plan, running.config_hash);
    // the limit this attempt runs under (a resume's override included), else the plan's
    const timeoutS = attempt?.timeouts?.timeout_seconds ?? (configIndex >= 0 ? configTimeoutSeconds(state.plan, configIndex) : state.plan.execution.experiment_timeout_seconds);
    const progress = live.total ? `${live.done}/${live.total}` : live.done > 0 ? `${live.done}` : '';
    const quiet = live.phase !== null && QUIET_PHASES.has(live.phase);
    lines.push({
      text: `${quiet ? `${env.glyphs.dot} ` : ''}${labelOfRun(state, running.index)}  ${live.phase ?? 'starting'} ${progress}  ${formatDuration(elapsedS)}${timeoutS ? ` / ${formatDuration(timeoutS)} timeout` : ''}`,
      color: tint(env, 'cyan'),
      spinner: !quiet,
    });
    const power = live.powerW[live.powerW.length - 1];
    const spark = sparkline(live.powerW, Math.max(0, Math.min(40, width - 40)), env.glyphs.spark);
    lines.push({
      text: `power ${formatNumber(power ?? null, ' W')} ${spark}  energy ${formatNumber(live.energySoFarJ, ' J')}  temp ${live.tempC !== null ? `${live.tempC}°C` : '–'}${live.warmupCv !== null ? `  warmup CV ${formatNumber(live.warmupCv)}` : ''}`,
    });
  } else if (!state.gap) {
    const resume = usableKey(state, 'pause');
    const text = state.finished
      ? `study ${state.finished.status}; results in ${state.study?.study_dir ?? ''}`
      : state.study?.paused
        ? `paused: no run is running${resume ? ` (${resume} resumes)` : ''}`
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
      {shown.map((l, i) =>
        l.spinner ? (
          // ink-spinner animates on its own timer (load, warmup): only mounted outside the quiet phases
          <Line key={i} color={l.color}>
            <Spinner type={env.theme.ascii ? 'line' : 'dots'} />
            <Text> {truncate(l.text, width - 2)}</Text>
          </Line>
        ) : (
          <Line key={i} color={l.color}>
            {truncate(l.text, width)}
          </Line>
        ),
      )}
    </Box>
  );
}
