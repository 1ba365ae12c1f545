// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { Box } from 'ink';
import { padEnd, truncate } from '../format.ts';
import { helpEntries } from '../keymap.ts';
import { countRender } from '../render-count.ts';
import type { UiState } from '../state.ts';
import { Line } from './line.tsx';

const GROUP_TITLES = { move: 'Move', view: 'View', study: 'Study', app: 'App' } as const;

/** Generated from the keymap: every key of the screen underneath, and why a key cannot apply now. */
export function HelpOverlay(props: { state: UiState; height: number; columns: number }) {
  countRender('HelpOverlay');
  const entries = helpEntries(props.state);
  const lines: Array<{ text: string; bold?: boolean; dim?: boolean }> = [{ text: 'Keys (Esc or ? closes)', bold: true }];
  for (const group of ['move', 'view', 'study', 'app'] as const) {
    const inGroup = entries.filter((e) => e.group === group);
    if (inGroup.length === 0) continue;
    lines.push({ text: GROUP_TITLES[group], bold: true });
    for (const e of inGroup) {
      lines.push({ text: `  ${padEnd(e.keys, 8)} ${padEnd(e.label, 16)}${e.disabledReason ? ` (now: ${e.disabledReason})` : ''}`, dim: e.disabledReason !== null });
    }
  }
  return (
    <Box flexDirection="column" width={props.columns} height={props.height} overflowY="hidden">
      {lines.slice(0, props.height).map((l, i) => (
        <Line key={i} bold={l.bold} dim={l.dim}>
          {truncate(l.text, props.columns)}
        </Line>
      ))}
    </Box>
  );
}
