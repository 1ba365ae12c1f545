// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { Box } from 'ink';
import { countRender } from '../render-count.ts';
import { Line } from './line.tsx';

export function TooSmall(props: { columns: number; rows: number; needColumns: number; needRows: number }) {
  countRender('TooSmall');
  return (
    <Box flexDirection="column" width={Math.max(1, props.columns)} height={Math.max(1, props.rows - 1)} overflowY="hidden">
      <Line>terminal too small</Line>
      <Line>
        have {props.columns}×{props.rows}, need {props.needColumns}×{props.needRows}
      </Line>
      <Line>Ctrl+C aborts, q quits</Line>
    </Box>
  );
}
