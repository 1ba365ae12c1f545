// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { Box } from 'ink';
import { memo } from 'react';
import { confirmPrompt, footerHints } from '../keymap.ts';
import { countRender } from '../render-count.ts';
import { selectWatchExitInMs } from '../selectors.ts';
import type { UiState } from '../state.ts';
import { Line } from './line.tsx';
import { tint, useUiEnv } from './ui-env.tsx';

/** Two lines: the pending question, filter or last notice; then the key hints from the keymap. */
export const Footer = memo(function Footer(props: { state: UiState; columns: number }) {
  countRender('Footer');
  const env = useUiEnv();
  const { state } = props;
  const prompt = confirmPrompt(state);
  let first = '';
  let color: string | undefined;
  if (prompt) {
    first = prompt;
    color = tint(env, 'yellow');
  } else if (state.filterEditing) {
    first = `filter: ${state.filterText}_  (status word or text; Enter keeps, Esc clears)`;
  } else if (state.notice) {
    first = state.notice;
    color = tint(env, 'yellow');
  } else if (state.filterText) {
    first = `filter: ${state.filterText}  (Esc clears)`;
  }
  const leavingInMs = selectWatchExitInMs(state);
  if (leavingInMs !== null && !prompt) {
    first = `study ${state.finished?.status ?? 'over'}: leaving in ${Math.ceil(leavingInMs / 1000)} s (any key stays a while, q leaves now)`;
    color = tint(env, 'yellow');
  }
  return (
    <Box flexDirection="column" width={props.columns} height={2}>
      <Line color={color}>{first || ' '}</Line>
      <Line dim>{footerHints(state, props.columns)}</Line>
    </Box>
  );
});
