// Short codes of the validity flags for narrow table columns, and the legend printed below a table.
// One row per flag code: a new code in schema.ts fails to compile until it has its row here.
import type { FlagCode } from './schema.ts';
import { FLAG_DEFINITIONS } from '../worker/metrics.ts';

export interface FlagLegendEntry {
  short: string;
  meaning: string;
}

/** Two-letter codes; the meaning of each flag is its one definition, FLAG_DEFINITIONS (embedded in every result). */
const FLAG_SHORT: Record<FlagCode, string> = {
  short_window: 'SW',
  few_samples: 'FS',
  energy_divergence: 'ED',
  thermal_throttle: 'TT',
  power_brake: 'PB',
  temperature_drift: 'TD',
  foreign_gpu_process: 'FP',
  warmup_not_converged: 'WU',
  persistence_mode_off: 'PM',
  energy_unavailable: 'EU',
  baseline_stale: 'BS',
  counter_reset: 'CR',
  builtin_model: 'BM',
  over_saturated: 'OS',
  failed_requests: 'FR',
  energy_method_fallback: 'EF',
  mig_whole_gpu: 'MG',
  baseline_above_load: 'BL',
  gpu_setting_drift: 'GD',
};

export const FLAG_LEGEND = Object.fromEntries(
  (Object.keys(FLAG_SHORT) as FlagCode[]).map((code) => [code, { short: FLAG_SHORT[code], meaning: FLAG_DEFINITIONS[code] }]),
) as Record<FlagCode, FlagLegendEntry>;

/** Not a per-run flag: a metric's coefficient of variation across cycles is above the threshold
 * while its mean is distinguishable from zero. */
export const HIGH_CV_LEGEND: FlagLegendEntry = { short: 'CV', meaning: 'coefficient of variation across cycles above the threshold, mean distinguishable from zero' };

export function shortFlag(code: string): string {
  return (FLAG_LEGEND as Record<string, FlagLegendEntry | undefined>)[code]?.short ?? code;
}

/** "TT×2 SW×3": each code shortened with the number of completed runs carrying it. */
export function shortFlagsText(flags: Record<string, number>): string {
  return Object.entries(flags)
    .map(([code, count]) => `${shortFlag(code)}×${count}`)
    .join(' ');
}

/** Legend lines for the codes that appear (in FLAG_LEGEND order), high CV last. */
export function flagLegend(codes: Iterable<string>, highCv: boolean, highCvThreshold: number): string[] {
  const present = new Set(codes);
  const lines: string[] = [];
  for (const [code, entry] of Object.entries(FLAG_LEGEND)) {
    if (present.has(code)) lines.push(`${entry.short} ${code}: ${entry.meaning}`);
  }
  if (highCv) lines.push(`${HIGH_CV_LEGEND.short}(metrics) high CV: ${HIGH_CV_LEGEND.meaning.replace('the threshold', `${Math.round(highCvThreshold * 100)} %`)}`);
  return lines.length ? ['flags: ×N = number of completed runs carrying the flag', ...lines] : [];
}
