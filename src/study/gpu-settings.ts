// The `gpu:` section of a study: the GPU's operating point (power limit, locked SM and memory
// clocks) as universal keys that multiply every backend's grid. Pure: the limits of the GPUs come
// in as data (the CLI reads them through src/native, src/gpu-settings converts them).
//
//   gpu:
//     power_limit_w: 300           # watts, or default
//     sm_clock_mhz: [1410, 1410]   # locked [min, max]; a single value locks min = max; or default
//     memory_clock_mhz: default    # same forms
//   sweep:
//     gpu.power_limit_w: [200, 300, 400, default]
//
// `default` means "the value the GPU had before the study" (recorded in <study>/gpu-state.json
// when something is changed). It is the same experiment as leaving the key out, so the effective
// config drops it: a study without `gpu:` keeps the config hashes it always had.
import { z } from 'zod';

export const GPU_SETTING_KEYS = ['power_limit_w', 'sm_clock_mhz', 'memory_clock_mhz'] as const;
export type GpuSettingKey = (typeof GPU_SETTING_KEYS)[number];

const DEFAULT = 'default';

function describe(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => JSON.stringify(x)).join(', ')}]`;
  if (v !== null && typeof v === 'object') return 'a mapping';
  return typeof v === 'string' ? `"${v}"` : String(v);
}

const powerLimitSchema = z.unknown().superRefine((v, ctx) => {
  if (v === DEFAULT || (typeof v === 'number' && Number.isFinite(v) && v > 0)) return;
  ctx.addIssue({ code: 'custom', message: `expected a power limit in watts (a number > 0) or "default", got ${describe(v)}` });
});

const isMhz = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 1;

const clockSchema = z.unknown().superRefine((v, ctx) => {
  if (v === DEFAULT || isMhz(v)) return;
  if (Array.isArray(v) && v.length === 2 && isMhz(v[0]) && isMhz(v[1])) {
    if (v[0] <= v[1]) return;
    ctx.addIssue({ code: 'custom', message: `expected [min, max] with min <= max, got ${describe(v)}` });
    return;
  }
  ctx.addIssue({ code: 'custom', message: `expected a clock in whole MHz, a locked range [min, max] in MHz, or "default", got ${describe(v)}` });
});

/** The `gpu:` section as written (validated; every key optional). */
export const gpuSectionSchema = z
  .object({ power_limit_w: powerLimitSchema, sm_clock_mhz: clockSchema, memory_clock_mhz: clockSchema })
  .partial()
  .strict();

/** The effective settings of one config: only what is set (not `default`), clocks as [min, max]. */
export const gpuSettingsSchema = z
  .object({
    memory_clock_mhz: z.tuple([z.number().int().min(1), z.number().int().min(1)]).optional(),
    power_limit_w: z.number().positive().optional(),
    sm_clock_mhz: z.tuple([z.number().int().min(1), z.number().int().min(1)]).optional(),
  })
  .strict();
export type GpuSettings = z.infer<typeof gpuSettingsSchema>;

const byRaw = new WeakMap<object, GpuSettings | null>();

function clockRange(v: unknown): [number, number] | undefined {
  if (v === undefined || v === DEFAULT) return undefined;
  return Array.isArray(v) ? [v[0] as number, v[1] as number] : [v as number, v as number];
}

/**
 * The effective settings of a validated raw `gpu:` section, keys in sorted order (the config is
 * hashed by JSON.stringify), frozen and shared per raw object; undefined when everything is default.
 */
export function effectiveGpuSettings(raw: unknown): GpuSettings | undefined {
  if (raw === undefined || raw === null || typeof raw !== 'object') return undefined;
  const cached = byRaw.get(raw);
  if (cached !== undefined) return cached ?? undefined;
  const r = raw as Record<string, unknown>;
  const out: GpuSettings = {};
  const mem = clockRange(r.memory_clock_mhz);
  if (mem) out.memory_clock_mhz = mem;
  if (typeof r.power_limit_w === 'number') out.power_limit_w = r.power_limit_w;
  const sm = clockRange(r.sm_clock_mhz);
  if (sm) out.sm_clock_mhz = sm;
  const result = Object.keys(out).length ? Object.freeze(out) : null;
  byRaw.set(raw, result);
  return result ?? undefined;
}

/** Which settings any of the configs changes (a study whose every setting is default needs no privilege). */
export function gpuSettingsUsed(configs: Iterable<{ gpu?: GpuSettings }>): GpuSettingKey[] {
  const used = new Set<GpuSettingKey>();
  for (const c of configs) {
    if (!c.gpu) continue;
    for (const k of GPU_SETTING_KEYS) if (c.gpu[k] !== undefined) used.add(k);
  }
  return GPU_SETTING_KEYS.filter((k) => used.has(k));
}

// ---- Limits of the GPUs (input to the planner and to the pre-run check) -------------------------

/** Why a setting cannot be changed on a GPU (the NVML code and message, or a missing entry point). */
export interface Unsupported {
  unsupported: string;
}

/** What one GPU accepts, as read through NVML. */
export interface GpuDeviceLimits {
  index: number;
  uuid: string;
  name: string;
  /** Settable power limit range in watts. */
  power_limit_w: { min: number; max: number } | Unsupported;
  /** Lockable SM clocks: lowest and highest supported, and the driver's step between them. */
  sm_clock_mhz: { min: number; max: number; step: number } | Unsupported;
  /** Lockable memory clocks (the driver lists a few discrete values). */
  memory_clock_mhz: { min: number; max: number; values: number[] } | Unsupported;
}

/** The planner's view of the GPUs: known limits, or why they could not be read (then: a warning). */
export type GpuLimitsInput = { status: 'known'; devices: GpuDeviceLimits[] } | { status: 'unknown'; reason: string };

const isUnsupported = (x: object): x is Unsupported => 'unsupported' in x;

/** "GPU 0 (NVIDIA H200, GPU-…)": how every message names a GPU. */
export function describeGpu(d: { index: number; name: string; uuid: string }): string {
  return `GPU ${d.index} (${d.name}, ${d.uuid})`;
}

function fmtRange(r: [number, number]): string {
  return r[0] === r[1] ? `${r[0]}` : `[${r[0]}, ${r[1]}]`;
}

/**
 * Every reason `settings` cannot be applied to the GPUs (empty when all fit): an out-of-range value
 * names the allowed range; a setting a GPU cannot change says why. Used at plan time (a reason
 * makes the config skipped) and again before a run against the GPUs it will use.
 */
export function gpuSettingReasons(settings: GpuSettings | undefined, devices: readonly GpuDeviceLimits[]): string[] {
  if (!settings) return [];
  const reasons: string[] = [];
  for (const d of devices) {
    const p = settings.power_limit_w;
    if (p !== undefined) {
      const lim = d.power_limit_w;
      if (isUnsupported(lim)) reasons.push(`gpu.power_limit_w: ${describeGpu(d)} cannot set a power limit (${lim.unsupported})`);
      else if (p < lim.min || p > lim.max) {
        reasons.push(`gpu.power_limit_w ${p} W is outside what ${describeGpu(d)} allows: ${lim.min}–${lim.max} W`);
      }
    }
    const sm = settings.sm_clock_mhz;
    if (sm !== undefined) {
      const lim = d.sm_clock_mhz;
      if (isUnsupported(lim)) reasons.push(`gpu.sm_clock_mhz: ${describeGpu(d)} cannot lock SM clocks (${lim.unsupported})`);
      else if (sm[0] < lim.min || sm[1] > lim.max) {
        reasons.push(`gpu.sm_clock_mhz ${fmtRange(sm)} MHz is outside what ${describeGpu(d)} supports: ${lim.min}–${lim.max} MHz in steps of ${lim.step} MHz`);
      }
    }
    const mem = settings.memory_clock_mhz;
    if (mem !== undefined) {
      const lim = d.memory_clock_mhz;
      if (isUnsupported(lim)) reasons.push(`gpu.memory_clock_mhz: ${describeGpu(d)} cannot lock memory clocks (${lim.unsupported})`);
      else if (mem[0] < lim.min || mem[1] > lim.max) {
        reasons.push(`gpu.memory_clock_mhz ${fmtRange(mem)} MHz is outside what ${describeGpu(d)} supports: ${lim.values.join(', ')} MHz`);
      }
    }
  }
  return reasons;
}

/** The driver's step of a list of supported clocks: the smallest gap between neighbours (1 for one value). */
export function clockStepMhz(values: readonly number[]): number {
  const sorted = [...new Set(values)].sort((a, b) => a - b);
  let step = Infinity;
  for (let i = 1; i < sorted.length; i++) step = Math.min(step, sorted[i]! - sorted[i - 1]!);
  return Number.isFinite(step) ? step : 1;
}
