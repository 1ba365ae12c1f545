// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { Box, Text } from 'ink';
import { memo } from 'react';
import { flagCell } from '../flags.ts';
import { formatDuration, formatNumber, padEnd, padStart } from '../format.ts';
import type { FittedLabels } from '../labels.ts';
import type { TableColumn } from '../layout.ts';
import { countRender } from '../render-count.ts';
import type { ConfigRow } from '../selectors.ts';
import { toAscii } from '../theme.ts';
import { STATUS_COLORS, tint, useUiEnv, type UiEnv } from './ui-env.tsx';

const STOP_WORDS = { target_met: 'met', max_cycles: 'max', decided: 'dec', failed: 'failed' } as const;

/** The interval so far as ± % of the mean, and the stop reason once there is one: "±1.2% met". */
export function ciCell(ci: ConfigRow['ci']): string {
  if (!ci) return '–';
  if (ci.reason === 'failed') return STOP_WORDS.failed;
  const width = ci.relative_half_width !== null ? `±${formatPercent(ci.relative_half_width)}` : ci.half_width !== null ? `±${formatNumber(ci.half_width)}` : '–';
  return ci.reason ? `${width} ${STOP_WORDS[ci.reason]}` : width;
}

function formatPercent(fraction: number): string {
  const pct = fraction * 100;
  return `${pct >= 10 ? pct.toFixed(0) : pct.toFixed(1)}%`;
}

function cell(row: ConfigRow, col: TableColumn, labels: FittedLabels, ellipsis: string): string {
  const pad = col.align === 'right' ? padStart : padEnd;
  switch (col.id) {
    case 'label':
      // fitted (shared words dropped, keys shortened, cut from the left): rows stay distinguishable
      return pad(labels.text(row.configIndex), col.width, ellipsis);
    case 'energy':
      return pad(formatNumber(row.energyJ), col.width, ellipsis);
    case 'jPerToken':
      return pad(formatNumber(row.jPerToken), col.width, ellipsis);
    case 'tokensPerS':
      return pad(formatNumber(row.tokensPerS), col.width, ellipsis);
    case 'duration':
      return pad(formatDuration(row.durationS), col.width, ellipsis);
    case 'flags':
      return pad(flagCell(row.flags, col.width), col.width, ellipsis);
    case 'ci':
      return pad(ciCell(row.ci), col.width, ellipsis);
    case 'cycles':
      return '';
  }
}

function CycleCells(props: { statuses: ConfigRow['statuses']; width: number; env: UiEnv }) {
  const { glyphs } = props.env;
  const shown = props.statuses.length > props.width ? props.statuses.slice(0, props.width - 1) : props.statuses;
  const more = props.statuses.length > props.width;
  return (
    <Text>
      {shown.map((s, i) => (
        <Text key={i} color={tint(props.env, STATUS_COLORS[s] ?? 'white')}>
          {glyphs.status[s]}
        </Text>
      ))}
      {more ? glyphs.ellipsis : ''}
      {' '.repeat(Math.max(0, props.width - shown.length - (more ? 1 : 0)))}
    </Text>
  );
}

/** One config. Memoised: `row` keeps its identity while none of its runs changed. */
export const TableRow = memo(function TableRow(props: { row: ConfigRow; selected: boolean; columns: TableColumn[]; labels: FittedLabels }) {
  countRender('TableRow');
  const env = useUiEnv();
  const { row, selected } = props;
  const marker = selected ? `${env.glyphs.selected} ` : '  ';
  // Without colour (NO_COLOR) the selection is still more than the marker: bold and underlined.
  return (
    <Text wrap="truncate-end" inverse={selected && env.theme.color} underline={selected && !env.theme.color} bold={selected}>
      {marker}
      {props.columns.map((col, i) => (
        <Text key={col.id}>
          {i > 0 ? ' ' : ''}
          {col.id === 'cycles' ? (
            <CycleCells statuses={row.statuses} width={col.width} env={env} />
          ) : env.theme.ascii ? (
            toAscii(cell(row, col, props.labels, env.glyphs.ellipsis))
          ) : (
            cell(row, col, props.labels, env.glyphs.ellipsis)
          )}
        </Text>
      ))}
    </Text>
  );
});

/** Only the visible slice of rows is rendered: 10,000 configs cost what 20 do. */
export function Table(props: { rows: ConfigRow[]; selected: number; offset: number; height: number; columns: TableColumn[]; labels: FittedLabels; width: number }) {
  countRender('Table');
  const env = useUiEnv();
  const visible = props.rows.slice(props.offset, props.offset + props.height);
  const header = props.columns
    .map((c) => {
      const title = c.id === 'label' ? props.labels.title : c.title;
      return c.align === 'right' ? padStart(title, c.width) : padEnd(title, c.width);
    })
    .join(' ');
  return (
    <Box flexDirection="column" width={props.width} height={props.height + 1} overflowY="hidden">
      <Text wrap="truncate-end" bold color={tint(env, 'blue')}>
        {'  '}
        {header}
      </Text>
      {visible.length === 0 ? <Text dimColor>  no rows match the filter</Text> : null}
      {visible.map((row, i) => (
        <TableRow key={row.configHash} row={row} selected={props.offset + i === props.selected} columns={props.columns} labels={props.labels} />
      ))}
    </Box>
  );
}
