// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { Box } from 'ink';
import { memo } from 'react';
import { truncate } from '../format.ts';
import { countRender } from '../render-count.ts';
import { Line } from './line.tsx';

/** The child's last lines. Memoised on the log array, which only changes when a line arrives. */
export const LogPane = memo(function LogPane(props: { log: string[]; height: number; columns: number }) {
  countRender('LogPane');
  const shown = props.log.slice(-props.height);
  return (
    <Box flexDirection="column" width={props.columns} height={props.height} overflowY="hidden">
      {shown.map((line, i) => (
        <Line key={i} dim>
          {truncate(line, props.columns)}
        </Line>
      ))}
    </Box>
  );
});
