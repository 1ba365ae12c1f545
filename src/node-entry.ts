// How to start another Node process on one of our TypeScript entry points (worker, fixtures).
// The children run through tsx's loader, resolved to an absolute path so that they start the
// same way whatever the current directory is.
import { fileURLToPath } from 'node:url';

const tsxLoader = import.meta.resolve('tsx');

/** argv (after process.execPath) that runs `entryPath` (a .ts or .js file) with our loader. */
export function nodeArgsFor(entryPath: string, args: string[] = []): string[] {
  return ['--import', tsxLoader, entryPath, ...args];
}

/** Absolute path of a file in src/, given relative to src/. */
export function srcPath(rel: string): string {
  return fileURLToPath(new URL(`./${rel}`, import.meta.url));
}
