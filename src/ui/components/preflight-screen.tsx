// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { Box } from 'ink';
import { formatClock, formatDuration, truncate } from '../format.ts';
import { countRender } from '../render-count.ts';
import { selectPreflight } from '../selectors.ts';
import type { UiState } from '../state.ts';
import { Line } from './line.tsx';
import { tint, useUiEnv } from './ui-env.tsx';

const FIT_COLORS: Record<string, string> = { fits: 'green', tight: 'yellow', wont_fit: 'red', unknown: 'gray' };
const FIT_WORDS: Record<string, string> = { fits: 'fits', tight: 'tight', wont_fit: "won't fit", unknown: 'unknown' };

/** What will run, how long it should take and what may go wrong, before anything starts. */
export function PreflightScreen(props: { state: UiState; height: number; columns: number }) {
  countRender('PreflightScreen');
  const env = useUiEnv();
  const m = selectPreflight(props.state);
  const lines: Array<{ text: string; color?: string; bold?: boolean }> = [];
  lines.push({ text: `llem · ${m.name}  (study ${m.hash.slice(0, 12)})`, bold: true });
  lines.push({
    text: m.auto
      ? `${m.nConfigs} configs × n_cycles: auto (${m.auto.minCycles}–${m.auto.maxCycles} cycles each) = ${m.auto.runs ? `~${m.auto.runs.expected} runs (${m.auto.runs.low}–${m.auto.runs.high})` : `up to ${m.nConfigs * m.auto.maxCycles} runs`}`
      : `${m.nConfigs} configs × ${m.nCycles} cycles = ${m.nRuns} runs`,
  });
  lines.push({ text: `backends: ${m.byBackend.map((b) => `${b.backend} ${b.configs}`).join(', ') || 'none'}` });
  lines.push({
    text: `estimate: ${formatDuration(m.totalS)} (${formatDuration(m.lowS)}–${formatDuration(m.highS)}), finishes about ${formatClock(m.finishAtMs)}`,
    bold: true,
  });
  const mc = m.memoryCounts;
  lines.push({ text: `GPU memory: ${mc.fits} fit, ${mc.tight} tight, ${mc.wont_fit} won't fit, ${mc.unknown} unknown` });
  const body: Array<{ text: string; color?: string }> = [];
  for (const mem of m.memory.filter((x) => x.fit !== 'fits')) {
    body.push({ text: `  ${FIT_WORDS[mem.fit] ?? mem.fit}: ${mem.label}${mem.reason ? ` — ${mem.reason}` : ''}`, color: tint(env, FIT_COLORS[mem.fit] ?? 'gray') });
  }
  if (m.skipped.length > 0) {
    body.push({ text: `skipped ${m.skipped.length} combination(s):` });
    for (const s of m.skipped) body.push({ text: `  ${s.label}: ${s.reasons.join('; ')}`, color: tint(env, 'gray') });
  }
  for (const w of m.warnings) body.push({ text: `warning: ${w}`, color: tint(env, 'yellow') });
  // Two lines stay for the prompt and the footer.
  const room = Math.max(0, props.height - lines.length - 3);
  const shown = body.length > room ? [...body.slice(0, Math.max(0, room - 1)), { text: `  … ${body.length - Math.max(0, room - 1)} more lines` }] : body;
  const confirming = props.state.confirm === 'start';
  const prompt = props.state.readOnly
    ? 'watching: the study has not started yet (q leaves)'
    : props.state.stage === 'starting'
      ? 'starting…'
      : confirming
        ? ''
        : 'Press Enter to start, q to cancel, ? for help';
  return (
    <Box flexDirection="column" width={props.columns} height={props.height} overflowY="hidden">
      {lines.map((l, i) => (
        <Line key={`h${i}`} bold={l.bold}>
          {truncate(l.text, props.columns)}
        </Line>
      ))}
      {shown.map((l, i) => (
        <Line key={`b${i}`} color={l.color}>
          {truncate(l.text, props.columns)}
        </Line>
      ))}
      <Box flexGrow={1} />
      <Line bold color={tint(env, 'cyan')}>
        {prompt || ' '}
      </Line>
    </Box>
  );
}
