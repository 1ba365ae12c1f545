// Short codes of the validity flags for narrow table columns, and the legend printed below a table.
// One row per flag code: a new code in schema.ts fails to compile until it has its row here.
import type { FlagCode } from './schema.ts';

export interface FlagLegendEntry {
  short: string;
  meaning: string;
}

export const FLAG_LEGEND: Record<FlagCode, FlagLegendEntry> = {
  short_window: { short: 'SW', meaning: 'measurement window shorter than 5 s' },
  few_samples: { short: 'FS', meaning: 'too few power samples in the window' },
  energy_divergence: { short: 'ED', meaning: 'energy counter and polled power differ by more than 10 %' },
  thermal_throttle: { short: 'TT', meaning: 'GPU throttled for temperature during the window' },
  power_brake: { short: 'PB', meaning: 'GPU power brake engaged during the window' },
  temperature_drift: { short: 'TD', meaning: 'GPU temperature drifted more than 10 °C over the window' },
  foreign_gpu_process: { short: 'FP', meaning: 'another process used the measured GPUs' },
  warmup_not_converged: { short: 'WU', meaning: 'warmup latency did not settle before its prompt limit' },
  persistence_mode_off: { short: 'PM', meaning: 'GPU persistence mode was off' },
  energy_unavailable: { short: 'EU', meaning: 'energy could not be measured (null, with a reason)' },
  baseline_stale: { short: 'BS', meaning: 'idle baseline reused without a comparable temperature' },
  counter_reset: { short: 'CR', meaning: 'the energy counter went backwards during the window' },
  builtin_model: { short: 'BM', meaning: 'builtin random-weights model: pipeline check, not a real model' },
  over_saturated: { short: 'OS', meaning: 'achieved request rate more than 5 % below the offered rate: the server did not keep up' },
};

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
