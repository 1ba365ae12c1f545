// Typed face of the native addon, and its only importer. Expected absences (addon not built, no
// NVML library, no GPU, no permission, CUDA_VISIBLE_DEVICES naming nothing) come back as
// `{ status: 'unavailable', reason }`; exceptions are for programming errors and for GPU failures
// in the middle of work (a lost GPU), which callers must see.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type {
  AddonCudaInfo,
  AddonDeviceInfo,
  AddonError,
  AddonGpuSettings,
  AddonNvmlOpenInfo,
  AddonReading,
  AddonSampler,
  NativeAddon,
} from './addon-types.ts';

export { METRIC_NAMES } from './addon-types.ts';
export type {
  AddonCudaInfo,
  AddonDeviceInfo,
  AddonError,
  AddonErrorInfo,
  AddonGpuSettings,
  AddonGpuSettingsField,
  AddonNvmlOpenInfo,
  AddonReading,
  AddonSampleBatch,
  AddonSampler,
  MetricName,
} from './addon-types.ts';

export type UnavailableCode =
  | 'addon_missing'
  | 'library_missing'
  | 'driver_error'
  | 'no_permission'
  | 'no_device'
  | 'unsupported'
  | 'visible_devices_unmatched';

export interface Unavailable {
  status: 'unavailable';
  code: UnavailableCode;
  reason: string;
  /** Loader failures: every path tried. */
  pathsTried?: string[];
}
export type Availability<T> = ({ status: 'available' } & T) | Unavailable;

/** Where the addon is built; LLEM_ADDON_PATH overrides (tests use it to simulate a failed build). */
export function addonPath(): string {
  return process.env.LLEM_ADDON_PATH || fileURLToPath(new URL('../../addon/build/Release/llem_native.node', import.meta.url));
}

let cachedAddon: Availability<{ addon: NativeAddon }> | null = null;

/** Loads the addon once per process. */
export function loadAddon(): Availability<{ addon: NativeAddon }> {
  if (cachedAddon) return cachedAddon;
  const path = addonPath();
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    cachedAddon = { status: 'available', addon };
    return cachedAddon;
  } catch (err) {
    cachedAddon = {
      status: 'unavailable',
      code: 'addon_missing',
      reason: `the native addon is not built or does not load (${path}: ${(err as Error).message.split('\n')[0]}); run \`npm run build:addon\``,
      pathsTried: [path],
    };
    return cachedAddon;
  }
}

export function isAddonError(err: unknown): err is AddonError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' && 'fn' in err;
}

/** Maps an addon error from opening NVML to an "unavailable" reason. */
export function unavailableFromError(err: unknown, what = 'NVML'): Unavailable {
  if (!isAddonError(err)) return { status: 'unavailable', code: 'driver_error', reason: `${what}: ${String((err as Error)?.message ?? err)}` };
  const code: UnavailableCode =
    err.code === 'LIB_NOT_FOUND' || err.code === 'NVML_ERROR_LIBRARY_NOT_FOUND' || err.code === 'NVML_ERROR_DRIVER_NOT_LOADED'
      ? 'library_missing'
      : err.code === 'NVML_ERROR_NO_PERMISSION'
        ? 'no_permission'
        : err.code === 'CUDA_ERROR_NO_DEVICE'
          ? 'no_device'
          : 'driver_error';
  return { status: 'unavailable', code, reason: err.message, ...(err.pathsTried ? { pathsTried: err.pathsTried } : {}) };
}

/** One physical GPU as NVML sees it. */
export interface GpuDeviceRef {
  index: number;
  uuid: string;
  name: string;
  /** Selected through a MIG id: energy and power cover the whole GPU, all its MIG slices. */
  viaMig: boolean;
}

/**
 * An open NVML reference (ref-counted in the addon: several sessions may be open; NVML shuts
 * down when the last closes). Methods throw AddonError for failures after opening (GPU lost …).
 */
export class NvmlSession {
  private closed = false;
  constructor(
    readonly addon: NativeAddon,
    readonly info: AddonNvmlOpenInfo,
  ) {}

  deviceInfo(index: number): AddonDeviceInfo {
    return this.addon.nvmlDeviceInfo(index);
  }

  /** All devices (index, uuid, name); reads no metric. */
  devices(): GpuDeviceRef[] {
    const out: GpuDeviceRef[] = [];
    for (let i = 0; i < this.info.deviceCount; i++) {
      const d = this.addon.nvmlDeviceIdentity(i);
      out.push({ index: i, uuid: d.uuid ?? `index-${i}`, name: d.name ?? 'unknown GPU', viaMig: false });
    }
    return out;
  }

  /** Reads every metric of the devices off the JS thread. */
  read(indices: number[]): Promise<AddonReading[]> {
    return this.addon.nvmlReadAsync(indices);
  }

  /** Same, on the JS thread: microseconds on a healthy driver; for benchmarks and doctor. */
  readSync(indices: number[]): AddonReading[] {
    return this.addon.nvmlRead(indices);
  }

  sampler(indices: number[], intervalMs: number, capacity?: number): AddonSampler {
    return new this.addon.Sampler(indices, intervalMs, capacity);
  }

  resolveUuid(uuid: string): { index: number; viaMig: boolean } | null {
    return this.addon.nvmlResolveUuid(uuid);
  }

  // GPU settings (src/gpu-settings drives these). Each setter throws an AddonError whose code is
  // the NVML one: NVML_ERROR_NO_PERMISSION (not root), NVML_ERROR_NOT_SUPPORTED,
  // NVML_ERROR_INVALID_ARGUMENT (out of range), NVML_ERROR_FUNCTION_NOT_FOUND (older driver).

  gpuSettings(index: number): AddonGpuSettings {
    return this.addon.nvmlGpuSettings(index);
  }

  setPowerLimitMw(index: number, mw: number): void {
    this.addon.nvmlSetPowerLimit(index, mw);
  }

  setGpuLockedClocks(index: number, minMhz: number, maxMhz: number): void {
    this.addon.nvmlSetGpuLockedClocks(index, minMhz, maxMhz);
  }

  resetGpuLockedClocks(index: number): void {
    this.addon.nvmlResetGpuLockedClocks(index);
  }

  setMemoryLockedClocks(index: number, minMhz: number, maxMhz: number): void {
    this.addon.nvmlSetMemoryLockedClocks(index, minMhz, maxMhz);
  }

  resetMemoryLockedClocks(index: number): void {
    this.addon.nvmlResetMemoryLockedClocks(index);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.nvmlClose();
  }
}

/**
 * Opens NVML on the JS thread: unavailable when the addon, the library or a GPU is missing.
 * nvmlInit can take seconds on a GPU without persistence mode: processes with a UI use
 * openNvmlAsync.
 */
export function openNvml(): Availability<{ session: NvmlSession }> {
  const loaded = loadAddon();
  if (loaded.status === 'unavailable') return loaded;
  let info: AddonNvmlOpenInfo;
  try {
    info = loaded.addon.nvmlOpen();
  } catch (err) {
    return unavailableFromError(err);
  }
  return sessionFrom(loaded.addon, info);
}

/** openNvml with the library load and nvmlInit off the JS thread. */
export async function openNvmlAsync(): Promise<Availability<{ session: NvmlSession }>> {
  const loaded = loadAddon();
  if (loaded.status === 'unavailable') return loaded;
  let info: AddonNvmlOpenInfo;
  try {
    info = await loaded.addon.nvmlOpenAsync();
  } catch (err) {
    return unavailableFromError(err);
  }
  return sessionFrom(loaded.addon, info);
}

function sessionFrom(addon: NativeAddon, info: AddonNvmlOpenInfo): Availability<{ session: NvmlSession }> {
  const session = new NvmlSession(addon, info);
  if (info.deviceCount === 0) {
    session.close();
    return { status: 'unavailable', code: 'no_device', reason: `NVML (${info.libraryPath}) reports no GPU` };
  }
  return { status: 'available', session };
}

/** CUDA driver probe (cuInit): doctor only. The runner's parent process never touches CUDA. */
export function probeCuda(): Availability<{ cuda: AddonCudaInfo }> {
  const loaded = loadAddon();
  if (loaded.status === 'unavailable') return loaded;
  try {
    return { status: 'available', cuda: loaded.addon.cudaProbe() };
  } catch (err) {
    return unavailableFromError(err, 'CUDA');
  }
}

// ---- CUDA_VISIBLE_DEVICES ----------------------------------------------------------------------

export type VisibleDeviceToken =
  | { kind: 'index'; index: number; text: string }
  | { kind: 'uuid'; uuid: string; text: string }
  | { kind: 'mig'; uuid: string; text: string };

export type ParsedVisibleDevices =
  | { status: 'all' }
  | { status: 'list'; tokens: VisibleDeviceToken[]; notes: string[] };

/**
 * Parses CUDA_VISIBLE_DEVICES as the CUDA runtime does: a comma list of indices, GPU UUIDs (or
 * unique prefixes of them, with or without "GPU-"), MIG ids ("MIG-<uuid>", or the older
 * "MIG-GPU-<uuid>/<gi>/<ci>"); the list ends at the first entry that is none of these. Unset = all
 * devices; empty or starting with an invalid entry = none.
 */
export function parseCudaVisibleDevices(value: string | null | undefined): ParsedVisibleDevices {
  if (value === null || value === undefined) return { status: 'all' };
  const tokens: VisibleDeviceToken[] = [];
  const notes: string[] = [];
  const entries = value.split(',').map((s) => s.trim());
  for (let i = 0; i < entries.length; i++) {
    const text = entries[i];
    if (/^\d+$/.test(text)) {
      tokens.push({ kind: 'index', index: Number(text), text });
    } else if (/^MIG-GPU-[0-9a-f-]+\/\d+\/\d+$/i.test(text)) {
      tokens.push({ kind: 'uuid', uuid: text.slice(4, text.indexOf('/')), text });
    } else if (/^MIG-[0-9a-f-]+$/i.test(text)) {
      tokens.push({ kind: 'mig', uuid: text, text });
    } else if (/^(GPU-)?[0-9a-f][0-9a-f-]*$/i.test(text)) {
      tokens.push({ kind: 'uuid', uuid: text.toUpperCase().startsWith('GPU-') ? `GPU-${text.slice(4)}` : `GPU-${text}`, text });
    } else {
      if (text !== '' || i < entries.length - 1 || entries.length === 1) {
        notes.push(`CUDA_VISIBLE_DEVICES entry ${i + 1} ("${text}") is not an index, GPU UUID or MIG id: CUDA ignores it and every entry after it`);
      }
      break;
    }
  }
  return { status: 'list', tokens, notes };
}

/**
 * Maps CUDA_VISIBLE_DEVICES to NVML devices by UUID (NVML ignores the variable; measuring the
 * wrong GPU is the classic silent error). Indices are taken in NVML's (PCI bus) order, which is
 * CUDA's order only with CUDA_DEVICE_ORDER=PCI_BUS_ID: a note says so when the GPUs differ.
 * Unavailable when the list selects nothing or names a device NVML does not have.
 */
export function resolveVisibleDevices(
  session: NvmlSession,
  cudaVisibleDevices: string | null,
  env: NodeJS.ProcessEnv = process.env,
): Availability<{ devices: GpuDeviceRef[]; notes: string[] }> {
  const parsed = parseCudaVisibleDevices(cudaVisibleDevices);
  const all = session.devices();
  if (parsed.status === 'all') return { status: 'available', devices: all, notes: [] };
  const notes = [...parsed.notes];
  const chosen: GpuDeviceRef[] = [];
  const add = (d: GpuDeviceRef, viaMig: boolean) => {
    const existing = chosen.find((c) => c.index === d.index);
    if (existing) {
      if (viaMig) notes.push(`${d.uuid} appears more than once (several MIG slices): measured once, the whole GPU`);
      return;
    }
    chosen.push({ ...d, viaMig });
  };
  for (const token of parsed.tokens) {
    if (token.kind === 'index') {
      const d = all[token.index];
      if (!d) {
        return {
          status: 'unavailable',
          code: 'visible_devices_unmatched',
          reason: `CUDA_VISIBLE_DEVICES="${cudaVisibleDevices}" names device ${token.index}, but NVML sees ${all.length} GPU(s)`,
        };
      }
      add(d, false);
      continue;
    }
    let resolved: { index: number; viaMig: boolean } | null = null;
    try {
      resolved = session.resolveUuid(token.uuid);
    } catch {
      resolved = null;
    }
    if (!resolved && token.kind === 'uuid') {
      const matches = all.filter((d) => d.uuid.toLowerCase().startsWith(token.uuid.toLowerCase()));
      if (matches.length === 1) resolved = { index: matches[0].index, viaMig: false };
      else if (matches.length > 1) {
        return {
          status: 'unavailable',
          code: 'visible_devices_unmatched',
          reason: `CUDA_VISIBLE_DEVICES entry "${token.text}" is a prefix of ${matches.length} GPU UUIDs`,
        };
      }
    }
    if (!resolved || !all[resolved.index]) {
      return {
        status: 'unavailable',
        code: 'visible_devices_unmatched',
        reason: `CUDA_VISIBLE_DEVICES entry "${token.text}" matches no GPU NVML knows (${all.map((d) => d.uuid).join(', ')})`,
      };
    }
    add(all[resolved.index], resolved.viaMig || token.kind === 'mig' || token.text.startsWith('MIG-'));
  }
  if (chosen.length === 0) {
    return { status: 'unavailable', code: 'no_device', reason: `CUDA_VISIBLE_DEVICES="${cudaVisibleDevices}" hides every GPU` };
  }
  if (parsed.tokens.some((t) => t.kind === 'index') && env.CUDA_DEVICE_ORDER !== 'PCI_BUS_ID' && new Set(all.map((d) => d.name)).size > 1) {
    notes.push(
      'CUDA_VISIBLE_DEVICES uses indices and the GPUs differ: indices were read in PCI bus order; set CUDA_DEVICE_ORDER=PCI_BUS_ID so CUDA agrees, or use UUIDs',
    );
  }
  if (chosen.some((d) => d.viaMig)) notes.push('MIG: energy and power are those of the whole GPU, including other MIG slices');
  return { status: 'available', devices: chosen, notes };
}

// ---- Cheap parent-side helpers ----------------------------------------------------------------

/**
 * Current temperature (°C) of each GPU selected by `cudaVisibleDevices` (default: this process's
 * CUDA_VISIBLE_DEVICES), for cooldown between runs. NVML only, never CUDA. Null when unknown.
 */
export async function readGpuTemperatures(
  cudaVisibleDevices: string | null = process.env.CUDA_VISIBLE_DEVICES ?? null,
): Promise<number[] | null> {
  const opened = await openNvmlAsync();
  if (opened.status === 'unavailable') return null;
  const { session } = opened;
  try {
    const resolved = resolveVisibleDevices(session, cudaVisibleDevices);
    if (resolved.status === 'unavailable') return null;
    const readings = await session.read(resolved.devices.map((d) => d.index));
    const temps = readings.map((r) => r.temp_c).filter((t): t is number => t !== null);
    return temps.length === readings.length ? temps : null;
  } catch {
    return null;
  } finally {
    session.close();
  }
}

/**
 * Free memory (bytes) of the smallest selected GPU (default selection: CUDA_VISIBLE_DEVICES), for
 * the planner's fit check; null when unknown.
 */
/** Free memory (bytes) of the least-free visible GPU, or null with the reason it is unknown. */
export async function gpuFreeMemory(
  cudaVisibleDevices: string | null = process.env.CUDA_VISIBLE_DEVICES ?? null,
): Promise<{ bytes: number | null; reason: string }> {
  const opened = await openNvmlAsync();
  // One line for a table cell; `llem doctor` gives the full story (every path tried).
  if (opened.status === 'unavailable') return { bytes: null, reason: opened.reason.split(/;? tried:|\n/)[0]!.trim() };
  const { session } = opened;
  try {
    const resolved = resolveVisibleDevices(session, cudaVisibleDevices);
    if (resolved.status === 'unavailable') return { bytes: null, reason: resolved.reason };
    const free = resolved.devices.map((d) => session.deviceInfo(d.index).memoryFreeBytes);
    if (free.some((f) => f === null)) return { bytes: null, reason: 'NVML does not report free memory on this GPU' };
    return { bytes: Math.min(...(free as number[])), reason: '' };
  } catch (err) {
    return { bytes: null, reason: `NVML: ${(err as Error).message}` };
  } finally {
    session.close();
  }
}

export async function gpuFreeMemoryBytes(
  cudaVisibleDevices: string | null = process.env.CUDA_VISIBLE_DEVICES ?? null,
): Promise<number | null> {
  return (await gpuFreeMemory(cudaVisibleDevices)).bytes;
}

// ---- Process tree: plain syscalls, no NVML or CUDA library ------------------------------------

function processCallUnavailable(err: unknown, call: string): Unavailable {
  // An addon built before these calls existed has no such function: say how to fix it.
  const reason =
    err instanceof TypeError
      ? `the native addon was built before ${call} existed; run \`npm run build:addon\``
      : `${call} failed: ${(err as Error)?.message ?? String(err)}`;
  return { status: 'unavailable', code: 'unsupported', reason };
}

/**
 * prctl(PR_SET_CHILD_SUBREAPER): while set, descendants orphaned by their parent's exit (setsid()
 * ones included) are re-parented to this process instead of init, so they can still be found and
 * ended. `on = false` clears it; processes already adopted stay our children.
 */
export function setChildSubreaper(on = true): Availability<Record<never, never>> {
  const loaded = loadAddon();
  if (loaded.status === 'unavailable') return loaded;
  try {
    loaded.addon.setChildSubreaper(on);
    return { status: 'available' };
  } catch (err) {
    return processCallUnavailable(err, 'prctl(PR_SET_CHILD_SUBREAPER)');
  }
}

/** One process-tree query through the addon; null when the addon is missing or the call fails. */
function askAddon<T>(call: (addon: NativeAddon) => T): T | null {
  const loaded = loadAddon();
  if (loaded.status === 'unavailable') return null;
  try {
    return call(loaded.addon);
  } catch {
    return null;
  }
}

/** Whether this process is a child subreaper now; null when that cannot be asked. */
export function isChildSubreaper(): boolean | null {
  return askAddon((addon) => addon.isChildSubreaper());
}

/** Whether this process has any child (running or zombie) without reaping it; null when unknown. */
export function hasChildProcesses(): boolean | null {
  return askAddon((addon) => addon.hasChildren());
}

/**
 * Reaps `pid` if it is a zombie child of ours: for processes re-parented to us only. Node reaps
 * only the children it spawned, so an adopted orphan that exits stays a zombie until reaped here;
 * reaping a child Node spawned would hide its exit from Node. null when the addon is missing.
 */
export function reapAdoptedChild(pid: number): 'reaped' | 'running' | 'not_child' | null {
  return askAddon((addon) => addon.reapChild(pid));
}
