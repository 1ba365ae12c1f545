// Test helper: fake libnvidia-ml / libcuda built from test/native/fake-*.c, loaded by the addon
// through its real dlopen path. Other areas' tests import this to run code (or a whole child
// process) "on a GPU":
//
//   const libs = await buildFakeLibs();
//   const script = writeFakeScript(dir, { devices: [{ power: [[0, 300_000]] }] });
//   Object.assign(process.env, fakeGpuEnv(libs, script));   // or pass it to a child's env
//
// The addon loads its library once per process, so set the env before the first open; a changed
// script is re-read when NVML is next initialised (after every meter/open has been closed).
// GPU settings (power limit, locked clocks) live in a state file next to the script, shared by
// every process that loads it, and start fresh whenever the script is written (see FakeScript).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import '../isolate-state.ts';

const execFileAsync = promisify(execFile);
const here = fileURLToPath(new URL('.', import.meta.url));

export const FAKE_GPU_ENV = {
  nvmlLib: 'LLEM_NVML_LIB',
  cudaLib: 'LLEM_CUDA_LIB',
  /** The script both fakes read. */
  script: 'LLEM_FAKE_GPU_SCRIPT',
  /** When set, the fake NVML appends one line per energy/power call (see readFakeLog). */
  log: 'LLEM_FAKE_GPU_LOG',
} as const;

export interface FakeLibs {
  nvml: string;
  cuda: string;
  dir: string;
}

/** A piecewise-constant trace: [seconds since the script epoch, value] points, sorted. */
export type Trace = Array<[number, number]>;

export interface FakeDevice {
  uuid?: string;
  name?: string;
  busId?: string;
  migUuid?: string;
  memTotalBytes?: number;
  memUsedBytes?: number;
  powerLimitMw?: number;
  powerLimitDefaultMw?: number;
  persistence?: boolean;
  mig?: boolean;
  smClockMhz?: number;
  memClockMhz?: number;
  utilGpuPct?: number;
  utilMemPct?: number;
  /** Power in mW. The energy counter is its exact integral (mW × s = mJ). */
  power?: Trace;
  temp?: Trace;
  /** Throttle-reason bitmask (0x20|0x40 thermal, 0x4 power cap, 0x80 power brake). */
  throttle?: Trace;
  energyOffsetMj?: number;
  /** Counter = scale × integral, to make counter and polled power disagree. */
  energyScale?: number;
  energyUnsupported?: boolean;
  /** Every call on the device fails with GPU_IS_LOST from this many seconds after the epoch. */
  lostAfterS?: number;
  /** The counter restarts from 0 at this time. */
  counterResetAtS?: number;
  /** While this file exists the energy counter answers NOT_SUPPORTED ('unsupported') or UNKNOWN ('error'). */
  energyFailFile?: { path: string; mode: 'unsupported' | 'error' };
  /** While this file exists every call on the device fails with GPU_IS_LOST. */
  lostFile?: string;
  /** Power (mW) is the number in this file when it exists; the counter integrates what was observed. */
  powerFile?: string;
  /** The counter answers NOT_SUPPORTED from this many seconds after the epoch. */
  energyUnsupportedAfterS?: number;
  /** The counter answers NVML_ERROR_UNKNOWN from this many seconds after the epoch. */
  energyErrorAfterS?: number;
  processes?: Array<{ pid: number; bytes: number }>;
  // GPU settings (power limit and locked clocks; the settable state lives in FakeScript.stateFile).
  /** Limit constraints; default 200 W … 700 W (an H100 SXM). */
  powerLimitMinMw?: number;
  powerLimitMaxMw?: number;
  /** Another limiter (out of band): the enforced limit is min(limit, this). */
  enforcedCapMw?: number;
  /** Supported SM clocks, highest to lowest in `step` MHz; default 1980 … 345 in 15. */
  smClocks?: { lowestMhz: number; highestMhz: number; stepMhz: number };
  /** Supported memory clocks, highest first; default [memClockMhz]. */
  memClocksMhz?: number[];
  /** Locked clocks and the supported-clock lists answer NOT_SUPPORTED. */
  clocksUnsupported?: boolean;
  /** A lock is accepted (and logged) but the clocks do not follow it: a driver that ignores it. */
  locksIgnored?: boolean;
}

export interface FakeScript {
  /** Unix ms that trace time 0 refers to; default Date.now() when the script is written. */
  epochMs?: number;
  driverVersion?: string;
  cudaVersion?: number;
  devices: FakeDevice[];
  /** NVML function name → ms every call of it sleeps. */
  slowMs?: Record<string, number>;
  cudaInitError?: number;
  /**
   * The file that holds the GPU's settable state (power limit, locked clocks) as a change log, so
   * that every process loading this script sees the same GPU. Default: `<script>.state`, removed
   * whenever the script is (re)written (a fresh GPU); null keeps the state in each process's memory.
   */
  stateFile?: string | null;
  /** false: every set/reset of a GPU setting fails with NVML_ERROR_NO_PERMISSION (not root). */
  privileged?: boolean;
}

export function fakeUuid(index: number): string {
  return `GPU-${String(index).padStart(8, '0')}-1111-2222-3333-${String(index).padStart(12, '0')}`;
}

const trace = (t: Trace) => t.map(([s, v]) => `${s}:${v}`).join(' ');

/** Writes the script to `<dir>/fake-gpu.txt` (or `path`); returns the path and the epoch used. */
export function writeFakeScript(dir: string, script: FakeScript, fileName = 'fake-gpu.txt'): { path: string; epochMs: number } {
  const epochMs = script.epochMs ?? Date.now();
  const lines = [`epoch_ms ${epochMs}`];
  if (script.driverVersion) lines.push(`driver_version ${script.driverVersion}`);
  if (script.cudaVersion !== undefined) lines.push(`cuda_version ${script.cudaVersion}`);
  if (script.cudaInitError !== undefined) lines.push(`cuda_init_error ${script.cudaInitError}`);
  for (const [fn, ms] of Object.entries(script.slowMs ?? {})) lines.push(`slow ${fn} ${ms}`);
  const path = join(dir, fileName);
  const stateFile = script.stateFile === undefined ? fakeStateFile(path) : script.stateFile;
  if (stateFile !== null) {
    rmSync(stateFile, { force: true });
    lines.push(`state_file ${stateFile}`);
  }
  if (script.privileged === false) lines.push('privileged 0');
  script.devices.forEach((d, i) => {
    const set = (key: string, value: string | number | boolean | undefined) => {
      if (value !== undefined) lines.push(`device ${i} ${key} ${typeof value === 'boolean' ? (value ? 1 : 0) : value}`);
    };
    set('uuid', d.uuid ?? fakeUuid(i));
    set('name', d.name ?? `Fake H100 ${i}`);
    set('bus_id', d.busId);
    set('mig_uuid', d.migUuid);
    set('mem_total', d.memTotalBytes ?? 80 * 2 ** 30);
    set('mem_used', d.memUsedBytes ?? 2 ** 30);
    set('power_limit_mw', d.powerLimitMw ?? 700_000);
    set('power_limit_default_mw', d.powerLimitDefaultMw ?? 700_000);
    set('persistence', d.persistence ?? true);
    set('mig', d.mig ?? false);
    set('sm_clock', d.smClockMhz ?? 1980);
    set('mem_clock', d.memClockMhz ?? 2619);
    set('util_gpu', d.utilGpuPct ?? 0);
    set('util_mem', d.utilMemPct ?? 0);
    set('energy_offset_mj', d.energyOffsetMj);
    set('energy_scale', d.energyScale);
    set('energy_unsupported', d.energyUnsupported);
    set('lost_after_s', d.lostAfterS);
    set('counter_reset_at_s', d.counterResetAtS);
    if (d.energyFailFile) set('energy_fail_file', `${d.energyFailFile.path} ${d.energyFailFile.mode}`);
    set('lost_file', d.lostFile);
    set('power_file', d.powerFile);
    set('energy_unsupported_after_s', d.energyUnsupportedAfterS);
    set('energy_error_after_s', d.energyErrorAfterS);
    if (d.power) set('power', trace(d.power));
    set('temp', trace(d.temp ?? [[0, 40]]));
    if (d.throttle) set('throttle', trace(d.throttle));
    for (const p of d.processes ?? []) set('proc', `${p.pid} ${p.bytes}`);
    set('power_limit_min_mw', d.powerLimitMinMw ?? 200_000);
    set('power_limit_max_mw', d.powerLimitMaxMw ?? 700_000);
    set('enforced_cap_mw', d.enforcedCapMw);
    const sm = d.smClocks ?? { lowestMhz: 345, highestMhz: 1980, stepMhz: 15 };
    set('sm_clocks', `${sm.lowestMhz} ${sm.highestMhz} ${sm.stepMhz}`);
    set('mem_clocks', (d.memClocksMhz ?? [d.memClockMhz ?? 2619]).join(' '));
    set('clocks_unsupported', d.clocksUnsupported);
    set('locks_ignored', d.locksIgnored);
  });
  writeFileSync(path, lines.join('\n') + '\n');
  return { path, epochMs };
}

/** Where writeFakeScript keeps the fake GPU's settable state for the script at `scriptPath`. */
export function fakeStateFile(scriptPath: string): string {
  return `${scriptPath}.state`;
}

export interface FakeSettingChange {
  /** Unix seconds. */
  t: number;
  device: number;
  kind: 'power_limit_mw' | 'sm_lock' | 'mem_lock';
  /** power: [mW]; locks: [min, max] MHz ([0, 0] = unlocked). */
  values: number[];
}

/** The fake GPU's change log (every set and reset any process made), oldest first. */
export function readFakeStateLog(stateFile: string): FakeSettingChange[] {
  if (!existsSync(stateFile)) return [];
  return readFileSync(stateFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [t, device, kind, ...values] = line.split(' ');
      return { t: Number(t), device: Number(device), kind: kind as FakeSettingChange['kind'], values: values.map(Number) };
    });
}

/** The environment that makes the addon load the fakes and the fakes read `scriptPath`. */
export function fakeGpuEnv(libs: FakeLibs, scriptPath: string, logPath?: string): Record<string, string> {
  const env: Record<string, string> = {
    [FAKE_GPU_ENV.nvmlLib]: libs.nvml,
    [FAKE_GPU_ENV.cudaLib]: libs.cuda,
    [FAKE_GPU_ENV.script]: scriptPath,
  };
  if (logPath) env[FAKE_GPU_ENV.log] = logPath;
  return env;
}

/**
 * Compiles the fakes with cc into test/native/build/<hash>/ (git-ignored), once per source
 * version and `omit` set. `omit` leaves NVML entry points out of the library (the "symbol absent"
 * case); supported: nvmlDeviceGetTotalEnergyConsumption, nvmlDeviceGetPowerUsage,
 * nvmlDeviceGetCurrentClocksThrottleReasons, and the GPU-settings entry points
 * (nvmlDeviceGetPowerManagementLimitConstraints, nvmlDeviceGetEnforcedPowerLimit,
 * nvmlDeviceSetPowerManagementLimit, nvmlDevice{Set,Reset}{Gpu,Memory}LockedClocks,
 * nvmlDeviceGetSupported{Memory,Graphics}Clocks). Safe to call from parallel test processes.
 */
export async function buildFakeLibs(opts: { omit?: string[] } = {}): Promise<FakeLibs> {
  const omit = [...(opts.omit ?? [])].sort();
  const sources = ['fake-nvml.c', 'fake-cuda.c'].map((f) => join(here, f));
  const hash = createHash('sha256');
  for (const s of sources) hash.update(readFileSync(s));
  hash.update(omit.join(','));
  const dir = join(here, 'build', hash.digest('hex').slice(0, 16));
  mkdirSync(dir, { recursive: true });
  const nvml = join(dir, 'libnvidia-ml.so.1');
  const cuda = join(dir, 'libcuda.so.1');
  const build = async (src: string, out: string, extra: string[]) => {
    if (existsSync(out) && statSync(out).size > 0) return;
    // Unique temp name, then rename: parallel test files may build the same thing at once.
    const tmp = `${out}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await execFileAsync('cc', ['-shared', '-fPIC', '-O1', '-Wall', ...extra, '-o', tmp, src, '-lpthread']);
    renameSync(tmp, out);
  };
  await build(sources[0], nvml, omit.map((name) => `-DOMIT_${name}`));
  await build(sources[1], cuda, []);
  return { nvml, cuda, dir };
}

export interface FakeLogLine {
  fn: string;
  tid: number;
  /** Seconds since the script epoch at which the value was computed. */
  tS: number;
  device: number;
  value: number;
}

export function readFakeLog(path: string): FakeLogLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [fn, tid, tS, device, value] = line.split(' ');
      return { fn, tid: Number(tid), tS: Number(tS), device: Number(device), value: Number(value) };
    });
}

/** ∫ of a piecewise-constant trace from a to b (seconds); mW traces give mJ. Mirrors the fake. */
export function traceIntegral(t: Trace, a: number, b: number): number {
  if (t.length === 0 || b <= a) return 0;
  let total = 0;
  for (let i = 0; i < t.length; i++) {
    const lo = i === 0 ? -Infinity : t[i][0];
    const hi = i + 1 < t.length ? t[i + 1][0] : Infinity;
    const x = Math.max(a, lo);
    const y = Math.min(b, hi);
    if (y > x) total += t[i][1] * (y - x);
  }
  return total;
}

const repoRoot = join(here, '..', '..');
export const ADDON_BINARY = join(repoRoot, 'addon', 'build', 'Release', 'llem_native.node');

/**
 * Builds the addon if this checkout has not (npm install normally does). Serialised across
 * parallel test processes by a lock directory. Throws when the build fails: tests of the native
 * path need it.
 */
export async function ensureAddonBuilt(): Promise<string> {
  if (existsSync(ADDON_BINARY)) return ADDON_BINARY;
  const lock = join(repoRoot, 'addon', '.build-lock');
  const deadline = Date.now() + 600_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (existsSync(ADDON_BINARY)) return ADDON_BINARY;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    if (!existsSync(ADDON_BINARY)) {
      await execFileAsync(process.execPath, [join(repoRoot, 'scripts', 'build-addon.mjs'), '--quiet'], { cwd: repoRoot, maxBuffer: 16 << 20 });
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  if (!existsSync(ADDON_BINARY)) throw new Error(`the addon did not build (${ADDON_BINARY}); run npm run build:addon to see why`);
  return ADDON_BINARY;
}
