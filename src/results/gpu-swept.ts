// The gpu.* settings as swept fields (issue 15). A config that leaves a setting at `default` has no
// `gpu` key in its effective config (the same experiment as no `gpu:` at all), so its flattened
// field is null — and a sweep `gpu.power_limit_w: [300, default]` would not look swept. `default`
// means the value the GPU had before the study, and every run records it: a config's
// gpu.power_limit_w at default reads as that recorded original limit (a number, so energy per
// token plots against the cap), or "default" while no result records one (or its GPUs disagree); a
// clock lock left at default reads "default". Fields no config sets stay absent.
import type { RunResult } from './schema.ts';
import type { Scalar } from './summarize.ts';

const GPU_FIELDS = ['gpu.power_limit_w', 'gpu.sm_clock_mhz', 'gpu.memory_clock_mhz'] as const;

/** The power limit `default` stood for in the completed results of config `hash` (null: unknown or not one value). */
function recordedOriginalW(results: readonly RunResult[], hash: string): number | null {
  const values = new Set<number>();
  for (const r of results) {
    if (r.config_hash !== hash) continue;
    for (const d of r.environment.gpu_settings?.devices ?? []) if (d.original_power_limit_w !== null) values.add(d.original_power_limit_w);
  }
  return values.size === 1 ? [...values][0]! : null;
}

/** `flat` (one flattened config per hash in `hashes`) with every gpu.* field some config sets filled in for the others. */
export function withGpuDefaults(flat: ReadonlyArray<Record<string, Scalar>>, hashes: readonly string[], results: readonly RunResult[]): Array<Record<string, Scalar>> {
  const set = (v: Scalar | undefined) => v !== undefined && v !== null;
  const used = GPU_FIELDS.filter((f) => flat.some((c) => set(c[f])));
  if (used.length === 0) return [...flat];
  return flat.map((c, i) => {
    const out = { ...c };
    for (const f of used) {
      if (set(out[f])) continue;
      out[f] = f === 'gpu.power_limit_w' ? (recordedOriginalW(results, hashes[i]!) ?? 'default') : 'default';
    }
    return out;
  });
}
