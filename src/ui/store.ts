// External store between the runner and React. Every action goes through the reducer at once
// (state is always current for key handling), but React hears about it at most every
// `minPublishIntervalMs` (10×/s by default): a flood of power samples or log lines costs one
// render, not one per event, which keeps the parent's CPU out of the measurement.
import { reducer } from './reducer.ts';
import type { UiAction, UiState } from './state.ts';

export interface UiStore {
  dispatch(action: UiAction): void;
  /** The latest state (what key handlers read). */
  getState(): UiState;
  /** The state React renders: updated at most every minPublishIntervalMs. */
  getPublished(): UiState;
  subscribe(listener: () => void): () => void;
  /** Publish now if anything changed (used right after a key press). */
  flush(): void;
  publishCount(): number;
  dispose(): void;
}

export function createUiStore(initial: UiState, opts: { minPublishIntervalMs?: number | ((state: UiState) => number) } = {}): UiStore {
  const interval = opts.minPublishIntervalMs ?? 100;
  const minIntervalMs = () => (typeof interval === 'function' ? interval(state) : interval);
  let state = initial;
  let published = initial;
  let lastPublishMs = 0;
  let timer: NodeJS.Timeout | null = null;
  let publishes = 0;
  let disposed = false;
  const listeners = new Set<() => void>();

  const publish = () => {
    timer = null;
    if (disposed || published === state) return;
    published = state;
    lastPublishMs = Date.now();
    publishes += 1;
    for (const l of [...listeners]) l();
  };

  const schedule = () => {
    if (timer !== null || disposed) return;
    const waitMs = Math.max(0, lastPublishMs + minIntervalMs() - Date.now());
    timer = setTimeout(publish, waitMs);
  };

  return {
    dispatch(action) {
      const next = reducer(state, action);
      if (next === state) return;
      state = next;
      schedule();
    },
    getState: () => state,
    getPublished: () => published,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    flush() {
      if (timer !== null) clearTimeout(timer);
      publish();
    },
    publishCount: () => publishes,
    dispose() {
      disposed = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      listeners.clear();
    },
  };
}
