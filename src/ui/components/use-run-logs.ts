// While the detail screen is open, the worker.log tails of the selected config's runs are read
// from disk (and again every few seconds while one of them runs) into the store.
import { join } from 'node:path';
import { useEffect } from 'react';
import { WORKER_LOG_FILE } from '../../study-dir/files.ts';
import { detailLogDirs, LOG_TAIL_LINES } from '../detail-view.ts';
import { readLogTail } from '../run-logs.ts';
import { selectSelectedRow } from '../selectors.ts';
import type { UiState } from '../state.ts';
import type { UiStore } from '../store.ts';

const RELOAD_WHILE_RUNNING_MS = 2000;

export function useRunLogs(store: UiStore, state: UiState): void {
  const studyDir = state.study?.study_dir ?? null;
  const open = state.view === 'detail' && studyDir !== null;
  const dirs = open ? detailLogDirs(state) : [];
  const dirsKey = dirs.join('\n');
  const statuses = open ? (selectSelectedRow(state)?.statuses.join(',') ?? '') : '';
  useEffect(() => {
    if (!open || dirsKey === '' || studyDir === null) return;
    const list = dirsKey.split('\n');
    let cancelled = false;
    const load = async () => {
      const entries = await Promise.all(list.map(async (dir) => [dir, await readLogTail(join(studyDir, dir, WORKER_LOG_FILE), LOG_TAIL_LINES)] as const));
      if (cancelled) return;
      store.dispatch({ type: 'run_logs', logs: Object.fromEntries(entries) });
      store.flush();
    };
    void load();
    const timer = statuses.includes('running') ? setInterval(() => void load(), RELOAD_WHILE_RUNNING_MS) : null;
    return () => {
      cancelled = true;
      if (timer) clearInterval(timer);
    };
  }, [store, open, studyDir, dirsKey, statuses]);
}
