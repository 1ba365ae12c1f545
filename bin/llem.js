#!/usr/bin/env node
// Entry point. Runs the compiled JavaScript in dist/ (built once at `npm install` by
// scripts/build-dist.mjs) when it is at least as new as every file in src/; otherwise the
// TypeScript sources through tsx's loader, so a fresh clone or an edited src/ needs no build step.
// Why prefer dist/: a `llem run` parent lives for the whole study, and tsx's loader thread and
// transpiler garbage cost CPU while runs are measured. LLEM_FROM_SOURCE=1 forces src/.
import { readdirSync, readFileSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);

/** dist/ is usable when its stamp is newer than every file under src/ (a ~150-file stat walk, ~2 ms). */
function distIsFresh() {
  if (process.env.LLEM_FROM_SOURCE === '1') return false;
  let builtMs;
  try {
    builtMs = statSync(new URL('dist/.llem-build.json', root)).mtimeMs;
    JSON.parse(readFileSync(new URL('dist/.llem-build.json', root), 'utf8'));
  } catch {
    return false;
  }
  // a directory's own mtime changes when a file in it is added, removed or renamed
  const newerThanBuild = (dir) => {
    if (statSync(dir).mtimeMs > builtMs) return true;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const url = new URL(entry.name + (entry.isDirectory() ? '/' : ''), dir);
      if (entry.isDirectory() ? newerThanBuild(url) : statSync(url).mtimeMs > builtMs) return true;
    }
    return false;
  };
  try {
    return !newerThanBuild(new URL('src/', root));
  } catch {
    return false;
  }
}

if (distIsFresh()) {
  await import('../dist/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
