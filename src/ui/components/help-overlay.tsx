// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { helpLines } from '../help-view.ts';
import { contentOf } from '../lines.ts';
import { countRender } from '../render-count.ts';
import type { UiState } from '../state.ts';
import { ScrollView } from './scroll-view.tsx';
import { useUiEnv } from './ui-env.tsx';

/** Generated from the keymap: every key of the screen underneath, why a key cannot apply now, and every mark. */
export function HelpOverlay(props: { state: UiState; height: number; columns: number }) {
  countRender('HelpOverlay');
  const env = useUiEnv();
  return <ScrollView content={contentOf(helpLines(props.state, env.glyphs, props.columns))} scroll={props.state.helpScroll} height={props.height} columns={props.columns} />;
}
