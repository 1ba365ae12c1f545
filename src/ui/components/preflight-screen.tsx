// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { Box } from 'ink';
import { truncate } from '../format.ts';
import { preflightBody, preflightTop } from '../preflight-view.ts';
import { countRender } from '../render-count.ts';
import { scrollViewport } from '../scroll.ts';
import { selectPreflight } from '../selectors.ts';
import type { UiState } from '../state.ts';
import { Line } from './line.tsx';
import { ScrollView } from './scroll-view.tsx';
import { tint, useUiEnv } from './ui-env.tsx';

/** What will run, how long it should take and what may go wrong, before anything starts. */
export function PreflightScreen(props: { state: UiState; height: number; columns: number }) {
  countRender('PreflightScreen');
  const env = useUiEnv();
  const { state } = props;
  const m = selectPreflight(state);
  const top = preflightTop(m, state.nowMs);
  const prompt = state.readOnly
    ? 'watching: the study has not started yet (q leaves)'
    : state.stage === 'starting'
      ? 'starting…'
      : state.confirm?.kind === 'start'
        ? ''
        : 'Press Enter to start, q to cancel, ? for help';
  return (
    <Box flexDirection="column" width={props.columns} height={props.height} overflowY="hidden">
      {top.map((l, i) => (
        <Line key={`t${i}`} bold={l.bold} color={l.color ? tint(env, l.color) : undefined}>
          {truncate(l.text, props.columns, env.glyphs.ellipsis)}
        </Line>
      ))}
      <ScrollView content={preflightBody(m, props.columns)} scroll={state.preflightScroll} height={scrollViewport(state, 'preflight')} columns={props.columns} />
      <Box flexGrow={1} />
      <Line bold color={tint(env, 'cyan')}>
        {prompt || ' '}
      </Line>
    </Box>
  );
}
