import { Text } from 'ink';
import type { ReactNode } from 'react';

/** One terminal line that never wraps (a wrapped line would push the frame past rows − 1). */
export function Line(props: { children?: ReactNode; color?: string; bold?: boolean; dim?: boolean; inverse?: boolean }) {
  return (
    <Text wrap="truncate-end" color={props.color} bold={props.bold} dimColor={props.dim} inverse={props.inverse}>
      {props.children ?? ' '}
    </Text>
  );
}
