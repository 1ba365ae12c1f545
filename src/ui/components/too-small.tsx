// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { Box } from 'ink';
import { truncate } from '../format.ts';
import { confirmPrompt, tooSmallHints } from '../keymap.ts';
import { countRender } from '../render-count.ts';
import type { UiState } from '../state.ts';
import { Line } from './line.tsx';

/** What is needed, and the keys that really work here (from the keymap, labelled for this state). */
export function TooSmall(props: { state: UiState; columns: number; rows: number; needColumns: number; needRows: number }) {
  countRender('TooSmall');
  const width = Math.max(1, props.columns);
  const question = confirmPrompt(props.state) ?? props.state.notice;
  return (
    <Box flexDirection="column" width={width} height={Math.max(1, props.rows - 1)} overflowY="hidden">
      <Line>terminal too small</Line>
      <Line>
        have {props.columns}×{props.rows}, need {props.needColumns}×{props.needRows}
      </Line>
      <Line>{truncate(tooSmallHints(props.state), width)}</Line>
      {question ? <Line>{truncate(question, width)}</Line> : null}
    </Box>
  );
}
