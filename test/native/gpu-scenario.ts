// Child-process entry for GPU-settings tests: each process loads the fake NVML once (as a parent,
// a child or a later `resume` would), so cross-process behaviour is tested with real processes.
// Usage: node --import tsx test/native/gpu-scenario.ts <what> [json args]; prints one JSON line.
//   open                          what the addon bound and what the GPU reports
//   apply   {studyDir, cvd, settings, host?, kill?}   applyGpuSettings; kill: SIGKILL itself after
//   restore {studyDir, host?}     restoreGpuSettings
//   set-power {index, mw}         one raw set through the seam (errors as {code, message})
//   apply-then-throw {studyDir, settings}  the run path's RunGpuSettings applies, then an uncaught
//                                 error ends the process (its 'exit' hook is the last restore)
import { applyGpuSettings, openGpuControl, restoreGpuSettings, GpuSettingsError } from '../../src/gpu-settings/index.ts';
import { isAddonError, openNvml } from '../../src/native/index.ts';

const what = process.argv[2];
const args = JSON.parse(process.argv[3] ?? '{}') as Record<string, any>;

function control() {
  const opened = openGpuControl();
  if (opened.status !== 'available') throw new Error(opened.reason);
  return opened.control;
}

function errorOf(err: unknown) {
  if (err instanceof GpuSettingsError) return { kind: err.kind, code: err.nvmlCode, message: err.message };
  if (isAddonError(err)) return { code: err.code, fn: err.fn, message: err.message };
  throw err;
}

let out: unknown;
if (what === 'open') {
  const opened = openNvml();
  if (opened.status !== 'available') throw new Error(opened.reason);
  out = { bound: opened.session.info.bound, missing: opened.session.info.missing, settings: opened.session.gpuSettings(args.index ?? 0) };
  opened.session.close();
} else if (what === 'apply') {
  const c = control();
  try {
    out = { devices: applyGpuSettings({ studyDir: args.studyDir, control: c, host: args.host }, { cudaVisibleDevices: args.cvd ?? null, settings: args.settings }) };
  } catch (err) {
    out = { error: errorOf(err) };
  }
  if (args.kill) {
    // A runner killed mid-study: no restore, no cleanup, nothing after this line runs.
    process.kill(process.pid, 'SIGKILL');
  }
  c.close();
} else if (what === 'restore') {
  const c = control();
  try {
    out = restoreGpuSettings({ studyDir: args.studyDir, control: c, host: args.host });
  } catch (err) {
    out = { error: errorOf(err) };
  }
  c.close();
} else if (what === 'set-power') {
  const opened = openNvml();
  if (opened.status !== 'available') throw new Error(opened.reason);
  try {
    opened.session.setPowerLimitMw(args.index, args.mw);
    out = { ok: true };
  } catch (err) {
    out = { error: errorOf(err) };
  }
  opened.session.close();
} else if (what === 'apply-then-throw') {
  const { RunGpuSettings } = await import('../../src/runner/gpu-settings.ts');
  const plan = { configs: [{ config: { gpu: args.settings } }] } as unknown as import('../../src/study/types.ts').PlanFile;
  const gpu = await RunGpuSettings.open(args.studyDir, plan);
  process.stdout.write(JSON.stringify({ devices: gpu.apply(null, args.settings) }) + '\n');
  setTimeout(() => {
    throw new Error('an uncaught error in the runner');
  }, 10);
  out = null;
} else {
  throw new Error(`unknown scenario ${what}`);
}
if (out !== null) process.stdout.write(JSON.stringify(out) + '\n');
