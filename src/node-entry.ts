// How to start another Node process on one of our TypeScript entry points (worker, fixtures).
// The children run through tsx's loader, resolved to an absolute path so that they start the
// same way whatever the current directory is. When this module itself runs compiled (dist/, built
// at `npm install` by scripts/build-dist.mjs), our own entry points are the compiled .js files and
// need no loader: no tsx thread or transpiling in the worker that is being measured.
import { fileURLToPath } from 'node:url';

const tsxLoader = import.meta.resolve('tsx');
const compiledDir = import.meta.url.endsWith('.js') ? fileURLToPath(new URL('./', import.meta.url)) : null;

/** argv (after process.execPath) that runs `entryPath` (a .ts or .js file) with our loader. */
export function nodeArgsFor(entryPath: string, args: string[] = []): string[] {
  if (compiledDir !== null && entryPath.startsWith(compiledDir) && entryPath.endsWith('.js')) return [entryPath, ...args];
  return ['--import', tsxLoader, entryPath, ...args];
}

/** Absolute path of a file in src/, given relative to src/ (its compiled .js in dist/ when running compiled). */
export function srcPath(rel: string): string {
  const path = fileURLToPath(new URL(`./${rel}`, import.meta.url));
  return compiledDir !== null ? path.replace(/\.tsx?$/, '.js') : path;
}
