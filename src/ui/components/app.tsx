// The root: reads the published state from the external store, owns the one memoised input
// handler (inline useInput handlers would re-subscribe on every render) and picks the screen.
// React in scope: tsx started from another directory finds no tsconfig and compiles JSX to React.createElement.
import React from 'react';
import { Box, useInput, type Key } from 'ink';
import { useCallback, useEffect, useSyncExternalStore } from 'react';
import type { RunnerControls } from '../../runner/events.ts';
import { handleKey, type KeyName } from '../keymap.ts';
import { fitLabels } from '../labels.ts';
import { countRender } from '../render-count.ts';
import { selectFilteredRows, selectLayout } from '../selectors.ts';
import type { UiStore } from '../store.ts';
import { DetailScreen } from './detail-screen.tsx';
import { Footer } from './footer.tsx';
import { Header } from './header.tsx';
import { HelpOverlay } from './help-overlay.tsx';
import { LivePanel } from './live-panel.tsx';
import { LogPane } from './log-pane.tsx';
import { PreflightScreen } from './preflight-screen.tsx';
import { Table } from './table.tsx';
import { TooSmall } from './too-small.tsx';
import { useRunLogs } from './use-run-logs.ts';

export interface AppController {
  controls(): RunnerControls | null;
  start(): void;
  exit(code: number): void;
  abort(): void;
}

/** Control bytes that arrive inside a multi-byte read (key repeat over SSH, a paste) as key names. */
const CONTROL_KEYS: Record<string, KeyName> = { '\u007f': 'backspace', '\b': 'backspace', '\r': 'enter', '\n': 'enter', '\t': 'tab', '\u0003': 'ctrl+c', '\u001b': 'escape' };

/**
 * Ink's (input, key) as our key names. Several characters in one read (a paste, or Backspace
 * repeating over SSH: "\x7f\x7f") become one name each; control bytes among them are keys, never text.
 */
export function keyNamesOf(input: string, key: Key): KeyName[] {
  if (key.ctrl && input === 'c') return ['ctrl+c'];
  if (key.upArrow) return ['up'];
  if (key.downArrow) return ['down'];
  if (key.pageUp) return ['pageup'];
  if (key.pageDown) return ['pagedown'];
  if (key.home) return ['home'];
  if (key.end) return ['end'];
  if (key.return) return ['enter'];
  if (key.escape) return ['escape'];
  if (key.backspace || key.delete) return ['backspace'];
  if (key.tab) return ['tab'];
  if (key.ctrl || key.meta) return [];
  return [...input].flatMap((ch) => {
    const control = CONTROL_KEYS[ch];
    if (control) return [control];
    const code = ch.codePointAt(0)!;
    return code < 0x20 || (code >= 0x7f && code <= 0x9f) ? [] : [ch];
  });
}

export function App(props: { store: UiStore; controller: AppController; stdout: NodeJS.WriteStream }) {
  countRender('App');
  const { store, controller, stdout } = props;
  const state = useSyncExternalStore(store.subscribe, store.getPublished);

  const onInput = useCallback(
    (input: string, key: Key) => {
      const names = keyNamesOf(input, key);
      if (names.length === 0) return;
      const nowMs = Date.now();
      store.dispatch({ type: 'input', nowMs });
      for (const n of names) {
        handleKey(n, {
          state: store.getState(),
          nowMs,
          dispatch: store.dispatch,
          controls: controller.controls(),
          start: controller.start,
          exit: controller.exit,
          abort: controller.abort,
        });
      }
      store.flush();
    },
    [store, controller],
  );
  useInput(onInput);

  useEffect(() => {
    const onResize = () => {
      store.dispatch({ type: 'resize', columns: stdout.columns || 80, rows: stdout.rows || 24 });
      store.flush();
    };
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [store, stdout]);

  useRunLogs(store, state);

  const layout = selectLayout(state);
  if (layout.kind === 'too_small') return <TooSmall state={state} {...layout} />;
  const { columns, frameRows } = layout;
  const bodyRows = frameRows - layout.footerRows;

  let body;
  if (state.helpOpen) {
    body = <HelpOverlay state={state} height={bodyRows} columns={columns} />;
  } else if (state.stage !== 'study') {
    body = <PreflightScreen state={state} height={bodyRows} columns={columns} />;
  } else {
    const rows = selectFilteredRows(state);
    const main =
      state.view === 'detail' ? (
        <DetailScreen state={state} height={bodyRows - layout.headerRows} columns={columns} />
      ) : (
        <>
          <Table
            rows={rows}
            selected={state.selected}
            offset={state.offset}
            height={layout.tableRows}
            columns={layout.tableColumns}
            labels={fitLabels(state.plan, layout.tableColumns[0]?.width ?? columns)}
            width={columns}
          />
          <LivePanel state={state} height={layout.liveRows} columns={columns} />
          {layout.logRows > 0 ? <LogPane log={state.log} height={layout.logRows} columns={columns} /> : null}
        </>
      );
    body = (
      <>
        <Header state={state} columns={columns} />
        {main}
      </>
    );
  }
  return (
    <Box flexDirection="column" width={columns} height={frameRows} overflowY="hidden">
      <Box flexDirection="column" height={bodyRows} overflowY="hidden">
        {body}
      </Box>
      <Footer state={state} columns={columns} />
    </Box>
  );
}
