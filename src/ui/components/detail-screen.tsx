// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { detailLines } from '../detail-view.ts';
import { contentOf } from '../lines.ts';
import { countRender } from '../render-count.ts';
import type { UiState } from '../state.ts';
import { ScrollView } from './scroll-view.tsx';

/** Every run of the selected config: attempts, full errors, log tails, metrics (scrolls). */
export function DetailScreen(props: { state: UiState; height: number; columns: number }) {
  countRender('DetailScreen');
  const { state } = props;
  return <ScrollView content={contentOf(detailLines(state, props.columns))} scroll={state.detailScroll} height={props.height} columns={props.columns} />;
}
