// Compiles src/ (TypeScript, TSX) to plain JavaScript in dist/, once, with the esbuild that tsx
// bundles. Why: a long-running `llem run` parent that loads its code through tsx keeps tsx's
// loader thread and the transpiler's garbage around for the whole study, which costs measurable
// CPU while a run is measuring (issues 4 and 6). bin/llem.js and the worker spawn prefer dist/
// when it is newer than every file in src/, and fall back to tsx otherwise (a developer editing
// src/ never runs stale code). dist/ mirrors src/ at the same depth, so `new URL('../../x',
// import.meta.url)` resolves the same from both; non-TypeScript files (worker.py …) are copied.
// Run by `npm install` (through scripts/build-addon.mjs) and never fails it: without dist/ llem
// runs from src/ through tsx as before.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(root, 'src');
const distDir = join(root, 'dist');
export const STAMP_FILE = '.llem-build.json';

function filesUnder(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(full));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

// Relative module specifiers in string literals ('./x.ts', '../ui/index.tsx'), static or dynamic
// (some modules import through a variable to avoid load-time cycles): .ts/.tsx become .js.
const RELATIVE_TS_SPECIFIER = /(['"`])(\.{1,2}\/[^'"`\s]*?)\.tsx?\1/g;

export async function buildDist() {
  const { transform } = await import('esbuild');
  // build into a sibling dir and swap, so a half-written dist/ is never picked up
  const tmpDir = `${distDir}.tmp-${process.pid}`;
  rmSync(tmpDir, { recursive: true, force: true });
  let compiled = 0;
  for (const file of filesUnder(srcDir)) {
    const rel = relative(srcDir, file);
    const isTs = /\.tsx?$/.test(rel) && !rel.endsWith('.d.ts');
    const target = join(tmpDir, isTs ? rel.replace(/\.tsx?$/, '.js') : rel);
    mkdirSync(dirname(target), { recursive: true });
    if (!isTs) {
      copyFileSync(file, target);
      continue;
    }
    const result = await transform(readFileSync(file, 'utf8'), {
      loader: rel.endsWith('.tsx') ? 'tsx' : 'ts',
      format: 'esm',
      target: 'node20',
      jsx: 'automatic',
      sourcefile: file,
      sourcemap: false,
    });
    writeFileSync(target, result.code.replace(RELATIVE_TS_SPECIFIER, (_m, q, p) => `${q}${p}.js${q}`));
    compiled += 1;
  }
  writeFileSync(join(tmpDir, STAMP_FILE), JSON.stringify({ built_at: new Date().toISOString(), files: compiled }) + '\n');
  rmSync(distDir, { recursive: true, force: true });
  renameSync(tmpDir, distDir);
  return compiled;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const n = await buildDist();
    if (!process.argv.includes('--quiet')) process.stderr.write(`llem: compiled ${n} files from src/ to dist/\n`);
  } catch (err) {
    process.stderr.write(`llem: WARNING: dist/ was not built (${err?.message ?? err}); llem runs from src/ through tsx.\n`);
  }
  process.exitCode = 0;
}
