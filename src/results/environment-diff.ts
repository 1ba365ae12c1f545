// What differs between the environments of two studies, before any of their numbers are compared.
// One table row per field: how to read it from a result, and whether a difference changes the
// meaning of the numbers (`meaning`: compare refuses without --allow-env-diff) or is worth knowing
// (`note`: readings, not settings, or things that do not touch the GPU's work). Pure.
import type { RunResult } from './schema.ts';
import type { GpuDeviceSettings } from '../gpu-settings/record.ts';

export type DifferenceSeverity = 'meaning' | 'note';

export interface EnvField {
  field: string;
  label: string;
  severity: DifferenceSeverity;
  /** The field's values in one run (a run on two GPUs can have two). Null = not recorded. */
  read(r: RunResult): Array<string | null>;
}

const gpus = (r: RunResult) => r.environment.gpus;
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** A requested GPU setting per GPU, `default` when the run left it so; null when the run has no record of its settings. */
function requested(r: RunResult, pick: (d: GpuDeviceSettings) => unknown): Array<string | null> {
  return r.environment.gpu_settings?.devices.map((d) => str(pick(d)) ?? 'default') ?? [null];
}

/** Per-run bookkeeping in `extra` (a server's pid and log path) that differs every run by design. */
const VOLATILE_EXTRA = /\.(pid|log)$/;

export const ENV_FIELDS: readonly EnvField[] = [
  // the models a run used, each once: a run on two of the same GPU is gpu_count's difference, not another model
  { field: 'gpu', label: 'GPU model', severity: 'meaning', read: (r) => [[...new Set(gpus(r).map((g) => g.name))].sort().join(' + ') || 'no GPU'] },
  { field: 'gpu_count', label: 'GPUs per run', severity: 'meaning', read: (r) => [String(gpus(r).length)] },
  { field: 'driver', label: 'NVIDIA driver', severity: 'meaning', read: (r) => [r.environment.nvml.driver_version] },
  { field: 'cuda', label: 'CUDA driver version', severity: 'meaning', read: (r) => [r.environment.nvml.cuda_driver_version] },
  // The GPU settings a run asked for (gpu.*; `default` = what the GPU had) and what the driver
  // enforced, verified before the run; results without the record fall back to the limit read then.
  { field: 'power_limit_requested', label: 'GPU power limit requested (gpu.power_limit_w, W)', severity: 'meaning', read: (r) => requested(r, (d) => d.requested.power_limit_w) },
  {
    field: 'power_limit_w',
    label: 'GPU power limit enforced (W)',
    severity: 'meaning',
    read: (r) => r.environment.gpu_settings?.devices.map((d) => str(d.enforced.power_limit_w)) ?? gpus(r).map((g) => str(g.power_limit_w)),
  },
  {
    field: 'clock_locks_requested',
    label: 'GPU clock locks requested (gpu.sm_clock_mhz / gpu.memory_clock_mhz, MHz)',
    severity: 'meaning',
    read: (r) => requested(r, (d) => (d.requested.sm_clock_mhz || d.requested.memory_clock_mhz ? `SM ${d.requested.sm_clock_mhz?.join('–') ?? 'default'}, memory ${d.requested.memory_clock_mhz?.join('–') ?? 'default'}` : null)),
  },
  { field: 'persistence_mode', label: 'persistence mode', severity: 'meaning', read: (r) => gpus(r).map((g) => str(g.persistence_mode)) },
  { field: 'mig_mode', label: 'MIG mode', severity: 'meaning', read: (r) => gpus(r).map((g) => str(g.mig_mode)) },
  { field: 'engine', label: 'inference engine version', severity: 'meaning', read: (r) => [`${r.backend.name} ${r.backend.version ?? 'unknown'}`] },
  {
    field: 'engine_extra',
    label: 'backend library versions',
    severity: 'meaning',
    read: (r) => [
      Object.entries(r.environment.extra ?? {})
        .filter(([k]) => !VOLATILE_EXTRA.test(k))
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}=${v ?? '?'}`)
        .join(' ') || 'none',
    ],
  },
  // Metric definitions and the protocol can change between llem versions.
  { field: 'llem_version', label: 'llem version', severity: 'meaning', read: (r) => [r.environment.llem_version] },
  { field: 'dataset_sha256', label: 'dataset hash (sha256 of the prompt set)', severity: 'meaning', read: (r) => [r.dataset?.sha256 ?? null] },
  // Clock readings at the start of a run are what the GPU was doing then, not a setting.
  { field: 'sm_clock_mhz', label: 'SM clock at run start (MHz, a reading)', severity: 'note', read: (r) => gpus(r).map((g) => str(g.sm_clock_mhz)) },
  { field: 'mem_clock_mhz', label: 'memory clock at run start (MHz, a reading)', severity: 'note', read: (r) => gpus(r).map((g) => str(g.mem_clock_mhz)) },
  { field: 'hostname', label: 'host', severity: 'note', read: (r) => [r.environment.hostname] },
  { field: 'cpu_model', label: 'CPU', severity: 'note', read: (r) => [r.environment.cpu_model] },
  { field: 'node_version', label: 'Node.js', severity: 'note', read: (r) => [r.environment.node_version] },
];

export interface EnvDifference {
  field: string;
  label: string;
  severity: DifferenceSeverity;
  a: string;
  b: string;
}

/**
 * A study's values of `f` as shown (every run's, `not recorded` included) and as recorded (only
 * the runs that recorded it), each sorted and joined.
 */
function valuesOf(results: readonly RunResult[], f: EnvField): { shown: string; recorded: string } {
  const set = new Set<string | null>();
  for (const r of results) for (const v of f.read(r)) set.add(v);
  const recorded = [...set].filter((v): v is string => v !== null).sort();
  const shown = set.has(null) ? [...recorded, 'not recorded'].sort() : recorded;
  return { shown: shown.length ? shown.join(', ') : 'no completed run', recorded: recorded.join(', ') };
}

/** Differences between the runs of two studies, field by field (values joined when a study's runs
 * disagree among themselves). Fields not recorded in either study are not a difference. */
export function environmentDifferences(a: readonly RunResult[], b: readonly RunResult[]): EnvDifference[] {
  const out: EnvDifference[] = [];
  for (const f of ENV_FIELDS) {
    const va = valuesOf(a, f);
    const vb = valuesOf(b, f);
    if (va.shown === vb.shown) continue;
    // Not recorded by some runs (older results): what was not recorded cannot be checked, which is
    // worth saying but is no evidence that the numbers mean something else. Only values both sides
    // recorded, and that differ, are a difference of meaning.
    const unknown = va.recorded === '' || vb.recorded === '' || va.recorded === vb.recorded;
    out.push({ field: f.field, label: unknown ? `${f.label}; not recorded on one side, cannot be checked` : f.label, severity: unknown ? 'note' : f.severity, a: va.shown, b: vb.shown });
  }
  return out;
}

export function formatDifference(d: EnvDifference): string {
  return `${d.field} (${d.label}): A ${d.a} · B ${d.b}`;
}
