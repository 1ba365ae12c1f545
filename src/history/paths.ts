// Where llem keeps state that outlives a study: $LLEM_STATE_DIR, else $XDG_STATE_HOME/llem, else
// ~/.local/state/llem (the XDG base-directory spec; a relative XDG_STATE_HOME is ignored, as the
// spec says). Tests set LLEM_STATE_DIR so they never touch the user's own history.
import { homedir } from 'node:os';
import path from 'node:path';

export const STATE_DIR_ENV = 'LLEM_STATE_DIR';

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  const own = env[STATE_DIR_ENV];
  if (own) return path.resolve(own);
  const xdg = env.XDG_STATE_HOME;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'llem');
  return path.join(env.HOME || homedir(), '.local', 'state', 'llem');
}

/** The run-history store (src/history/store.ts). */
export function historyDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(stateDir(env), 'history');
}
