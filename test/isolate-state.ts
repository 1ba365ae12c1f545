// Imported for its effect by the helpers that run studies (test/runner/helpers.ts,
// test/native/fake.ts, test/e2e/tmux.ts): the runner records every completed run in the run
// history (src/history), and no test may write into the user's own ~/.local/state/llem (a later
// `llem plan` there would estimate from fixture runs), nor share one with another test file (the
// estimates it sees would depend on which files ran before). So each test process gets its own,
// over scripts/test.sh's shared one; a test that wants a particular one sets it after its imports.
// It goes when the process exits.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

{
  const dir = mkdtempSync(join(tmpdir(), 'llem-test-state-'));
  process.env.LLEM_STATE_DIR = dir;
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
}
