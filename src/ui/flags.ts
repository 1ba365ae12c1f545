// Validity flags (src/results/schema.ts FLAG_CODES) as two-letter codes for the table's flags
// column, with the legend the help screen shows. Typed over FlagCode: a new flag without a code
// does not compile.
import type { FlagCode } from '../results/schema.ts';

export const FLAG_SHORT: Record<FlagCode, string> = {
  short_window: 'SW',
  few_samples: 'FS',
  energy_divergence: 'ED',
  thermal_throttle: 'TT',
  power_brake: 'PB',
  temperature_drift: 'TD',
  foreign_gpu_process: 'FG',
  warmup_not_converged: 'WC',
  persistence_mode_off: 'PM',
  energy_unavailable: 'EU',
  baseline_stale: 'BS',
  counter_reset: 'CR',
  builtin_model: 'BM',
};

function isFlagCode(code: string): code is FlagCode {
  return Object.hasOwn(FLAG_SHORT, code);
}

/** A flag's short code; an unknown one (a newer result) keeps its own name. */
export function flagShort(code: string): string {
  return isFlagCode(code) ? FLAG_SHORT[code] : code;
}

/** Codes that fit `width`: "BM SW", or "BM +2" when they do not all fit (one alone is left to the cell to cut). */
export function flagCell(codes: readonly string[], width: number): string {
  const shorts = codes.map(flagShort);
  const all = shorts.join(' ');
  if (all.length <= width || shorts.length === 1) return all;
  for (let shown = shorts.length - 1; shown >= 0; shown--) {
    const text = [...shorts.slice(0, shown), `+${shorts.length - shown}`].join(' ');
    if (text.length <= width) return text;
  }
  return `${shorts.length}`;
}
