// What each scrollable screen holds and how many of its lines fit, as functions of the state: the
// reducer clamps scroll positions with them and the components draw the same slices.
import { detailLines } from './detail-view.ts';
import { helpLines } from './help-view.ts';
import { contentOf, type ScrollContent } from './lines.ts';
import { preflightBody, preflightTop } from './preflight-view.ts';
import { selectLayout, selectPreflight } from './selectors.ts';
import type { ScrollTarget, UiState } from './state.ts';
import { glyphsFor } from './theme.ts';

/** Only the number of help lines matters here, and it is the same for every glyph set. */
const COUNTING_GLYPHS = glyphsFor({ color: true, ascii: false, escapes: true });
/** The pre-flight's last body line: the prompt (Enter to start …). */
const PREFLIGHT_PROMPT_LINES = 1;

export function scrollViewport(state: UiState, target: ScrollTarget): number {
  const layout = selectLayout(state);
  if (layout.kind !== 'full') return 1;
  const body = layout.frameRows - layout.footerRows;
  switch (target) {
    case 'preflight':
      return Math.max(1, body - preflightTop(selectPreflight(state), state.nowMs).length - PREFLIGHT_PROMPT_LINES);
    case 'detail':
      return Math.max(1, body - layout.headerRows);
    case 'help':
      return Math.max(1, body);
  }
}

export function scrollContent(state: UiState, target: ScrollTarget): ScrollContent {
  switch (target) {
    case 'preflight':
      return preflightBody(selectPreflight(state), state.columns);
    case 'detail':
      return contentOf(detailLines(state, state.columns));
    case 'help':
      return contentOf(helpLines(state, COUNTING_GLYPHS, state.columns));
  }
}
