// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { Box } from 'ink';
import { formatDuration, truncate } from '../format.ts';
import { countRender } from '../render-count.ts';
import { selectFilteredRows, selectHeader } from '../selectors.ts';
import type { UiState } from '../state.ts';
import { Line } from './line.tsx';
import { tint, useUiEnv } from './ui-env.tsx';

export function Header(props: { state: UiState; columns: number }) {
  countRender('Header');
  const env = useUiEnv();
  const h = selectHeader(props.state);
  const c = h.counts;
  const stateColor = h.state === 'running' ? 'green' : h.state === 'finished' ? 'blue' : 'yellow';
  const readOnly = props.state.readOnly ? ' [watching]' : '';
  const first = `llem ${env.glyphs.dot} ${h.name}${readOnly}  cycle ${h.cycle}/${h.maxCycles === null ? h.nCycles : `≤${h.maxCycles}`}  elapsed ${formatDuration(h.elapsedS)}  ETA ${formatDuration(h.etaS)}  ${h.statusWord}`;
  const shown = selectFilteredRows(props.state).length;
  const total = props.state.plan.configs.length;
  const following = props.state.follow && c.running > 0 ? ' · following' : '';
  const position = `row ${shown === 0 ? 0 : props.state.selected + 1}/${shown}${shown === total ? '' : ` (of ${total})`}${following}`;
  const counts: Array<[number, string]> = [
    [c.completed, 'done'],
    [c.failed, 'failed'],
    [c.skipped, 'skipped'],
    [c.interrupted, 'interrupted'],
    // shown once a run is invalid (a study without the gate's verdicts keeps its line as it was)
    ...(c.invalid > 0 ? [[c.invalid, 'invalid'] as [number, string]] : []),
    [c.running, 'running'],
    [c.pending, 'pending'],
  ];
  let second = `${counts.map(([n, word]) => `${n} ${word}`).join('  ')}  ${position}`;
  // narrow: counts that are zero make room for the position first
  if (second.length > props.columns) second = `${counts.filter(([n], i) => n > 0 || i === 0).map(([n, word]) => `${n} ${word}`).join('  ')}  ${position}`;
  return (
    <Box flexDirection="column" width={props.columns} height={2}>
      <Line bold color={tint(env, stateColor)}>
        {truncate(first, props.columns)}
      </Line>
      <Line>{truncate(second, props.columns)}</Line>
    </Box>
  );
}
