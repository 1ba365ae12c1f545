// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { Text } from 'ink';
import type { ReactNode } from 'react';
import { toAscii } from '../theme.ts';
import { useUiEnv } from './ui-env.tsx';

/** One terminal line that never wraps (a wrapped line would push the frame past rows − 1). */
export function Line(props: { children?: ReactNode; color?: string; bold?: boolean; dim?: boolean; inverse?: boolean }) {
  const env = useUiEnv();
  const children = props.children ?? ' ';
  const text = env.theme.ascii ? asciiChildren(children) : children;
  return (
    <Text wrap="truncate-end" color={props.color} bold={props.bold} dimColor={props.dim} inverse={props.inverse}>
      {text}
    </Text>
  );
}

function asciiChildren(children: ReactNode): ReactNode {
  if (typeof children === 'string') return toAscii(children);
  if (Array.isArray(children)) return children.map((c) => (typeof c === 'string' ? toAscii(c) : c));
  return children;
}
