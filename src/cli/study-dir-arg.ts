// The <dir> argument of resume, status, repair-manifest and cancel: a clear exit-2 error for a path
// that does not exist, a file (often the study YAML itself), or a directory that is not a study
// dir, before anything reads, locks or writes inside it.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { InputError } from './errors.ts';

/** Returns the absolute study dir, or throws InputError naming `dir` and what was expected. */
export function requireStudyDir(dir: string): string {
  const abs = path.resolve(dir);
  let isDir: boolean;
  try {
    isDir = statSync(abs).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new InputError(`${dir}: no such study directory`);
    throw new InputError(`${dir}: cannot read the study directory (${code ?? (err as Error).message})`);
  }
  if (!isDir) {
    const hint = /\.ya?ml$/i.test(dir) ? ' (a study YAML is started with `llem run`)' : '';
    throw new InputError(`${dir}: expected a study directory, got a file${hint}`);
  }
  if (!existsSync(path.join(abs, 'plan.json'))) {
    if (existsSync(path.join(abs, 'manifest.json'))) {
      throw new InputError(
        `${path.join(dir, 'plan.json')}: not found; a study directory needs the plan.json it was created with and it cannot be rebuilt (start again with \`llem run ${path.join(dir, 'study.yaml')}\`)`,
      );
    }
    throw new InputError(`${dir}: not a study directory (no plan.json; \`llem run <study.yaml>\` creates one)`);
  }
  return abs;
}
