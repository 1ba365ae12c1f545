// `llem doctor [--json]`: what this machine offers for measurement (addon, NVML and each GPU's
// metrics, CUDA, RAPL, backends) and what to do about each missing piece. Always exits 0: a
// missing GPU is information, not a failure.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { discoverRaplZones } from '../measure/rapl.ts';
import { backendSpecs } from '../backends/registry.ts';
import type { BackendCheck, BackendCheckStatus, DoctorProbe } from '../backends/types.ts';
import { addonPath, loadAddon, openNvml, probeCuda, resolveVisibleDevices, type GpuDeviceRef, type MetricName } from '../native/index.ts';
import { drySetPowerLimit, NvmlGpuControl } from '../gpu-settings/index.ts';

const execFileAsync = promisify(execFile);

export type CheckStatus = BackendCheckStatus;

export interface DoctorGpu {
  index: number;
  uuid: string | null;
  name: string | null;
  pci_bus_id: string | null;
  memory_total_bytes: number | null;
  power_limit_w: number | null;
  persistence_mode: boolean | null;
  mig_mode: boolean | null;
  supported: Record<MetricName, boolean>;
  measured: boolean;
  /**
   * Whether this process may change the GPU's power limit and clocks (study `gpu:` keys): a dry set
   * of its power limit to the value it has. `no_permission` needs root; `unsupported`: no setting.
   */
  gpu_settings: { status: 'changeable' | 'no_permission' | 'unsupported' | 'error'; detail: string };
}

export interface DoctorReport {
  addon: { status: CheckStatus; path: string; detail: string; fix: string | null };
  nvml: {
    status: CheckStatus;
    detail: string;
    library_path: string | null;
    driver_version: string | null;
    cuda_driver_version: string | null;
    missing_symbols: string[];
    gpus: DoctorGpu[];
    cuda_visible_devices: string | null;
    selection: string;
    fix: string | null;
  };
  cuda: { status: CheckStatus; detail: string; library_path: string | null; driver_version: number | null; devices: number | null; fix: string | null };
  rapl: { status: CheckStatus; detail: string; zones: Array<{ id: string; name: string }>; fix: string | null };
  backends: BackendCheck[];
}

function cudaVersionText(v: number | null): string | null {
  return v === null ? null : `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

function onPath(cmd: string): string | null {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : null;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return null;
}

/** Which Python modules import-resolve, in one interpreter start (find_spec: nothing is imported). */
async function pythonModules(python: string | null, modules: string[]): Promise<{ python: string | null; found: Record<string, boolean> }> {
  if (!python) return { python: null, found: {} };
  const code = `import importlib.util, json\nprint(json.dumps({m: importlib.util.find_spec(m) is not None for m in ${JSON.stringify(modules)}}))`;
  try {
    const { stdout } = await execFileAsync(python, ['-c', code], { timeout: 20_000 });
    return { python, found: JSON.parse(stdout) as Record<string, boolean> };
  } catch {
    return { python, found: {} };
  }
}

/** The machine as the backend specs may look at it: each Python start and PATH lookup done once. */
function doctorProbe(): DoctorProbe {
  // The pytorch backend tries python3 on PATH, then the system Python (Debian's python3-torch).
  const candidates = [...new Set([onPath('python3'), onPath('/usr/bin/python3')].filter((p): p is string => p !== null))];
  const asked = new Map<string, Promise<Array<{ python: string; found: Record<string, boolean> }>>>();
  return {
    pythonModules(modules) {
      const key = [...modules].sort().join(',');
      if (!asked.has(key)) {
        asked.set(key, Promise.all(candidates.map(async (p) => ({ python: p, found: (await pythonModules(p, modules)).found }))));
      }
      return asked.get(key)!;
    },
    onPath,
    nodePackage(name) {
      try {
        createRequire(import.meta.url).resolve(name);
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** Each backend's own check (its spec's doctor), in registry order. */
async function backendChecks(): Promise<BackendCheck[]> {
  const probe = doctorProbe();
  return Promise.all(backendSpecs().map((spec) => spec.doctor(probe)));
}

export async function collectDoctorReport(env: NodeJS.ProcessEnv = process.env): Promise<DoctorReport> {
  const loaded = loadAddon();
  const addon: DoctorReport['addon'] =
    loaded.status === 'available'
      ? { status: 'ok', path: addonPath(), detail: `loaded (N-API ${loaded.addon.napiVersion})`, fix: null }
      : {
          status: 'missing',
          path: addonPath(),
          detail: loaded.reason,
          fix: 'install a C++ compiler, make and python3, then run `npm run build:addon` in the llem directory; until then energy is reported as unavailable',
        };

  const cvd = env.CUDA_VISIBLE_DEVICES ?? null;
  const nvml: DoctorReport['nvml'] = {
    status: 'missing',
    detail: '',
    library_path: null,
    driver_version: null,
    cuda_driver_version: null,
    missing_symbols: [],
    gpus: [],
    cuda_visible_devices: cvd,
    selection: '',
    fix: null,
  };
  const opened = openNvml();
  if (opened.status === 'unavailable') {
    nvml.detail = opened.reason;
    nvml.fix =
      opened.code === 'addon_missing'
        ? 'build the addon first (see addon)'
        : opened.code === 'library_missing'
          ? 'install the NVIDIA driver (it ships libnvidia-ml.so.1), or point LLEM_NVML_LIB at the library'
          : opened.code === 'no_permission'
            ? 'run as a user allowed to use the GPU (video/render group)'
            : opened.code === 'no_device'
              ? 'no NVIDIA GPU is visible on this machine'
              : 'check `nvidia-smi`: the driver reported an error';
  } else {
    const { session } = opened;
    try {
      nvml.library_path = session.info.libraryPath;
      nvml.driver_version = session.info.driverVersion;
      nvml.cuda_driver_version = cudaVersionText(session.info.cudaDriverVersion);
      nvml.missing_symbols = session.info.missing;
      const resolved = resolveVisibleDevices(session, cvd, env);
      const measured = new Set(resolved.status === 'available' ? resolved.devices.map((d) => d.index) : []);
      const control = new NvmlGpuControl(session);
      for (let i = 0; i < session.info.deviceCount; i++) {
        const info = session.deviceInfo(i);
        nvml.gpus.push({
          index: i,
          uuid: info.uuid,
          name: info.name,
          pci_bus_id: info.pciBusId,
          memory_total_bytes: info.memoryTotalBytes,
          power_limit_w: info.powerLimitMw === null ? null : info.powerLimitMw / 1000,
          persistence_mode: info.persistenceMode,
          mig_mode: info.migMode,
          supported: info.supported,
          measured: measured.has(i),
          gpu_settings: settingsPermission(control, { index: i, uuid: info.uuid ?? '?', name: info.name ?? '?', viaMig: false }),
        });
      }
      nvml.selection =
        resolved.status === 'available'
          ? `${cvd === null ? 'CUDA_VISIBLE_DEVICES unset: all GPUs' : `CUDA_VISIBLE_DEVICES=${cvd}`} → ${resolved.devices.map((d) => d.uuid).join(', ')}${resolved.notes.length ? ` (${resolved.notes.join('; ')})` : ''}`
          : resolved.reason;
      const noCounter = nvml.gpus.filter((g) => !g.supported.energy_mj);
      const noPower = nvml.gpus.filter((g) => !g.supported.power_mw);
      const persistenceOff = nvml.gpus.filter((g) => g.persistence_mode === false);
      const problems: string[] = [];
      if (noCounter.length) problems.push(`GPU ${noCounter.map((g) => g.index).join(', ')}: no energy counter (pre-Volta or unsupported): energy will be integrated from polled power`);
      if (noPower.length) problems.push(`GPU ${noPower.map((g) => g.index).join(', ')}: no power readings`);
      if (persistenceOff.length) problems.push(`GPU ${persistenceOff.map((g) => g.index).join(', ')}: persistence mode off (sudo nvidia-smi -pm 1 avoids driver reloads between runs)`);
      if (resolved.status === 'unavailable') problems.push(resolved.reason);
      nvml.status = problems.length ? 'warn' : 'ok';
      nvml.detail = `${session.info.deviceCount} GPU(s), driver ${nvml.driver_version ?? '?'}, CUDA ${nvml.cuda_driver_version ?? '?'}`;
      nvml.fix = problems.length ? problems.join('; ') : null;
    } catch (err) {
      nvml.status = 'warn';
      nvml.detail = `NVML failed while listing GPUs: ${(err as Error).message}`;
      nvml.fix = 'check `nvidia-smi`';
    } finally {
      session.close();
    }
  }

  const cudaProbe = probeCuda();
  const cuda: DoctorReport['cuda'] =
    cudaProbe.status === 'available'
      ? {
          status: 'ok',
          detail: `${cudaProbe.cuda.devices.length} device(s) visible to CUDA${cvd !== null ? ` (CUDA_VISIBLE_DEVICES=${cvd})` : ''}`,
          library_path: cudaProbe.cuda.libraryPath,
          driver_version: cudaProbe.cuda.driverVersion,
          devices: cudaProbe.cuda.devices.length,
          fix: null,
        }
      : {
          status: 'missing',
          detail: cudaProbe.reason,
          library_path: null,
          driver_version: null,
          devices: null,
          fix: cudaProbe.code === 'addon_missing' ? 'build the addon first (see addon)' : 'install the NVIDIA driver (libcuda.so.1), or point LLEM_CUDA_LIB at it; GPU backends need it',
        };

  const raplFound = await discoverRaplZones(env.LLEM_POWERCAP_ROOT || undefined);
  const rapl: DoctorReport['rapl'] =
    raplFound.reason === null
      ? { status: 'ok', detail: `${raplFound.zones.length} zone(s)`, zones: raplFound.zones.map((z) => ({ id: z.id, name: z.name })), fix: null }
      : { status: 'missing', detail: raplFound.reason, zones: [], fix: 'CPU energy will be null; GPU measurement is unaffected' };

  return { addon, nvml, cuda, rapl, backends: await backendChecks() };
}

/** Whether this process may change a GPU's settings, by a dry set (its power limit set to what it is). */
function settingsPermission(control: NvmlGpuControl, ref: GpuDeviceRef): DoctorGpu['gpu_settings'] {
  try {
    const dry = drySetPowerLimit(control, ref);
    if (dry.status === 'allowed') return { status: 'changeable', detail: `power limit and clocks can be set (a dry set of ${dry.powerLimitMw / 1000} W worked)` };
    if (dry.status === 'no_limit') return { status: 'unsupported', detail: `no power limit to set (${dry.why})` };
    return { status: dry.error.kind === 'no_permission' ? 'no_permission' : dry.error.kind === 'unsupported' ? 'unsupported' : 'error', detail: dry.error.message };
  } catch (err) {
    return { status: 'error', detail: (err as Error).message };
  }
}

const mark = (s: CheckStatus) => (s === 'ok' ? 'ok  ' : s === 'warn' ? 'warn' : 'MISS');

export function formatDoctor(r: DoctorReport): string {
  const lines: string[] = [];
  const section = (title: string, status: CheckStatus, detail: string, fix: string | null) => {
    lines.push(`[${mark(status)}] ${title}: ${detail}`);
    if (fix) lines.push(`       → ${fix}`);
  };
  section('native addon', r.addon.status, r.addon.detail, r.addon.fix);
  section('NVML', r.nvml.status, r.nvml.detail, r.nvml.fix);
  if (r.nvml.library_path) lines.push(`       library ${r.nvml.library_path}${r.nvml.missing_symbols.length ? `; absent entry points: ${r.nvml.missing_symbols.join(', ')}` : ''}`);
  for (const g of r.nvml.gpus) {
    const supported = Object.entries(g.supported).filter(([, v]) => v).map(([k]) => k);
    const unsupported = Object.entries(g.supported).filter(([, v]) => !v).map(([k]) => k);
    const mem = g.memory_total_bytes === null ? '?' : `${(g.memory_total_bytes / 2 ** 30).toFixed(0)} GiB`;
    lines.push(`       ${g.measured ? '*' : ' '} GPU ${g.index} ${g.name ?? '?'} ${g.uuid ?? ''} ${mem}, limit ${g.power_limit_w ?? '?'} W, persistence ${g.persistence_mode ?? '?'}, MIG ${g.mig_mode ?? '?'}`);
    lines.push(`           metrics: ${supported.join(' ')}${unsupported.length ? `; unsupported: ${unsupported.join(' ')}` : ''}`);
    lines.push(`           gpu settings (study gpu: keys): ${g.gpu_settings.status === 'changeable' ? 'can be changed' : g.gpu_settings.status.replace('_', ' ')}: ${g.gpu_settings.detail}`);
  }
  if (r.nvml.selection) lines.push(`       measured (*): ${r.nvml.selection}`);
  section('CUDA', r.cuda.status, r.cuda.detail, r.cuda.fix);
  section('RAPL (CPU energy)', r.rapl.status, r.rapl.detail, r.rapl.fix);
  lines.push('backends:');
  for (const b of r.backends) lines.push(`  [${mark(b.status)}] ${b.name}: ${b.detail}`);
  return lines.join('\n') + '\n';
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('Show what this machine offers for measurement (NVML, GPUs, CUDA, RAPL, addon, backends) and how to fix what is missing')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const report = await collectDoctorReport();
      process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatDoctor(report));
      process.exitCode = 0;
    });
}
