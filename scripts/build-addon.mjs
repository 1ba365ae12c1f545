// Builds dist/ (src/ compiled to JavaScript, scripts/build-dist.mjs), then addon/ (the NVML/CUDA
// addon) with node-gyp. Run by `npm install` (the package's install
// script) and `npm run build:addon` (--force rebuilds). Never fails the install: without the addon
// llem still runs and reports energy as unavailable, and `llem doctor` says how to fix it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = join(root, 'addon');
const output = join(addonDir, 'build', 'Release', 'llem_native.node');
const force = process.argv.includes('--force');
const quiet = process.argv.includes('--quiet');

function log(line) {
  if (!quiet) process.stderr.write(`llem addon: ${line}\n`);
}

function warnAndExit(reason) {
  process.stderr.write(
    `\nllem addon: WARNING: the native NVML/CUDA addon was not built (${reason}).\n` +
      `  llem still runs, but GPU energy will be reported as unavailable.\n` +
      `  Fix: install a C++ compiler, make and python3, then run \`npm run build:addon\`;\n` +
      `  \`llem doctor\` shows what is missing.\n\n`,
  );
  process.exit(0);
}

// Headers come from a local Node install: there is no network for node-gyp's header download.
function nodeDir() {
  const candidates = [];
  if (process.env.npm_config_nodedir) candidates.push(process.env.npm_config_nodedir);
  const fromConfig = process.config?.variables?.node_prefix;
  if (fromConfig) candidates.push(fromConfig);
  candidates.push(dirname(dirname(process.execPath)), '/usr', '/usr/local');
  return candidates.find((d) => existsSync(join(d, 'include', 'node', 'node_api.h'))) ?? null;
}

// First the plain-JavaScript build of src/ (dist/), which the long-running parent prefers; its
// failure only means llem runs from src/ through tsx, so it is reported and never fails install.
try {
  const { buildDist } = await import('./build-dist.mjs');
  const compiled = await buildDist();
  log(`compiled ${compiled} files from src/ to dist/`);
} catch (err) {
  process.stderr.write(`llem: WARNING: dist/ was not built (${err?.message ?? err}); llem runs from src/ through tsx.\n`);
}

if (!force && existsSync(output)) {
  log(`already built (${output}); \`npm run build:addon\` rebuilds`);
  process.exit(0);
}

let nodeGyp;
try {
  nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
} catch {
  warnAndExit('node-gyp is not installed');
}
const dir = nodeDir();
const args = [nodeGyp, 'rebuild', '--directory', addonDir, '--loglevel', quiet ? 'error' : 'warn'];
if (dir) args.push(`--nodedir=${dir}`);
else log('no local Node headers found; node-gyp will try to download them');
log(`building with ${dir ? `headers from ${dir}` : 'downloaded headers'} …`);
const result = spawnSync(process.execPath, args, { cwd: root, stdio: quiet ? 'pipe' : 'inherit', encoding: 'utf8' });
if (result.error) warnAndExit(`could not run node-gyp: ${result.error.message}`);
if (result.status !== 0 || !existsSync(output)) {
  if (quiet) process.stderr.write(`${result.stdout ?? ''}${result.stderr ?? ''}`);
  warnAndExit(`node-gyp exited with ${result.status ?? result.signal}`);
}
log(`built ${output}`);
