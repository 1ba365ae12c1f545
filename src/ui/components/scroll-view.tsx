// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { Box } from 'ink';
import { truncate } from '../format.ts';
import { clampScroll, type ScrollContent } from '../lines.ts';
import { Line } from './line.tsx';
import { tint, useUiEnv } from './ui-env.tsx';

/**
 * `height` lines of a scrollable list from line `scroll` on. When more follows, the last line says
 * how much and how to get there (the reducer clamps with the same height, so the end is reachable).
 */
export function ScrollView(props: { content: ScrollContent; scroll: number; height: number; columns: number }) {
  const env = useUiEnv();
  const { content, height } = props;
  const first = clampScroll(props.scroll, content.length, height);
  const shown = Math.min(height, Math.max(0, content.length - first));
  const below = content.length - first - shown;
  const lines = Array.from({ length: shown }, (_, i) => content.line(first + i));
  if (below > 0 && lines.length > 0) {
    lines[lines.length - 1] = { text: `${env.glyphs.down} ${below + 1} more line${below + 1 === 1 ? '' : 's'} (↓/j, PgDn, G)`, dim: true };
  }
  return (
    <Box flexDirection="column" width={props.columns} height={height} overflowY="hidden">
      {lines.map((l, i) => (
        <Line key={i} color={l.color ? tint(env, l.color) : undefined} bold={l.bold} dim={l.dim}>
          {/* an empty Text takes no row in Ink: a blank line is a space */}
          {truncate(l.text, props.columns, env.glyphs.ellipsis) || ' '}
        </Line>
      ))}
    </Box>
  );
}
