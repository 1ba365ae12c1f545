// `execution.n_cycles: auto` and `execution.target:`: the YAML shapes (checked per file, with
// positions), the effective target recorded in plan.json, and the cross-field resolution after the
// `base:` chain is merged (unit against metric, min against max, defaults that adapt).
import { z } from 'zod';
import { SUMMARY_METRICS, type SummaryMetricKey } from '../results/summary-schema.ts';
import { didYouMean } from './errors.ts';

export const DEFAULT_TARGET_METRIC: SummaryMetricKey = 'energy_per_output_token_j';
/** ±5 %: NVML's own power readings are specified to about ±5 %, so a tighter default would claim
 * a precision of the mean that the absolute numbers do not have. Set it lower to compare configs. */
export const DEFAULT_CI_HALF_WIDTH = 0.05;
export const DEFAULT_MIN_CYCLES = 3;
export const DEFAULT_MAX_CYCLES = 12;
/** An interval of the mean needs two values. */
export const MIN_CYCLES_FLOOR = 2;
/** plan.json holds every run; a per-config ceiling keeps an auto study's worst case plannable. */
export const MAX_CYCLES_CEILING = 1000;

const METRIC_KEYS = SUMMARY_METRICS.map((m) => m.key) as [SummaryMetricKey, ...SummaryMetricKey[]];

/** Unit spellings accepted for an absolute half-width, per metric unit, as multiples of that unit. */
const UNIT_SCALES: Record<string, Record<string, number>> = {
  J: { J: 1, mJ: 1e-3, uJ: 1e-6, 'µJ': 1e-6, kJ: 1e3 },
  W: { W: 1, mW: 1e-3, kW: 1e3 },
  ms: { ms: 1, s: 1e3, us: 1e-3, 'µs': 1e-3 },
  'tok/s': { 'tok/s': 1 },
  'req/s': { 'req/s': 1 },
  '°C': { '°C': 1, C: 1 },
  B: { B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 2 ** 20, GiB: 2 ** 30 },
};
const ALL_UNITS = [...new Set(Object.values(UNIT_SCALES).flatMap((u) => Object.keys(u)))];

const HALF_WIDTH_EXPECTED = 'expected a fraction of the mean below 1 (0.02), a percentage ("2%") or a value with a unit ("0.5 mJ")';

export type ParsedHalfWidth = { kind: 'relative'; value: number } | { kind: 'absolute'; amount: number; unit: string };

/** `0.02`, `"2%"`, `"0.5 mJ"` → relative fraction or absolute amount + unit; a message when it is none. */
export function parseHalfWidth(value: unknown): ParsedHalfWidth | { error: string } {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) return { error: `${HALF_WIDTH_EXPECTED}, got ${value}` };
    if (value >= 1) return { error: `${HALF_WIDTH_EXPECTED}, got ${value} (a bare number is relative to the mean; for an absolute half-width write its unit, e.g. "${value} J")` };
    return { kind: 'relative', value };
  }
  if (typeof value !== 'string') return { error: HALF_WIDTH_EXPECTED };
  const m = /^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(\S.*?)?\s*$/.exec(value);
  if (!m) return { error: `${HALF_WIDTH_EXPECTED}, got "${value}"` };
  const amount = Number(m[1]);
  const unit = m[2];
  if (unit === undefined) return { error: `${HALF_WIDTH_EXPECTED}, got "${value}" (quoted, so it is text: write ${m[1]} without quotes for a fraction of the mean)` };
  if (!(amount > 0)) return { error: `${HALF_WIDTH_EXPECTED}, got "${value}" (it must be above 0)` };
  if (unit === '%') {
    if (amount >= 100) return { error: `${HALF_WIDTH_EXPECTED}, got "${value}" (a percentage below 100)` };
    return { kind: 'relative', value: amount / 100 };
  }
  if (!ALL_UNITS.includes(unit)) return { error: `expected a percentage or a unit (${ALL_UNITS.join(', ')}), got unknown unit "${unit}"${didYouMean(unit, ALL_UNITS)}` };
  return { kind: 'absolute', amount, unit };
}

// ── The YAML shapes (per file: each file of a base chain is checked on its own) ──────────────

export const nCyclesSchema = z.union([z.number().int().min(1), z.literal('auto')]);

export const targetYamlSchema = z
  .object({
    metric: z.enum(METRIC_KEYS),
    ci_half_width: z.unknown().superRefine((v, ctx) => {
      const parsed = parseHalfWidth(v);
      if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
    }),
    min_cycles: z.number().int().min(MIN_CYCLES_FLOOR).max(MAX_CYCLES_CEILING),
    max_cycles: z.number().int().min(MIN_CYCLES_FLOOR).max(MAX_CYCLES_CEILING),
    decide: z.enum(['ranking']),
  })
  .partial()
  .strict();

// ── The effective target (plan.json `execution.target`) ─────────────────────────────────────

export const halfWidthSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('relative'), value: z.number().positive().lt(1) }),
  /** value in the metric's own unit (`unit`); `as_written` is what the YAML said ("0.5 mJ"). */
  z.object({ kind: z.literal('absolute'), value: z.number().positive(), unit: z.string(), as_written: z.string() }),
]);
export type HalfWidth = z.infer<typeof halfWidthSchema>;

export const cycleTargetSchema = z.object({
  metric: z.enum(METRIC_KEYS),
  ci_half_width: halfWidthSchema,
  min_cycles: z.number().int().min(MIN_CYCLES_FLOOR),
  max_cycles: z.number().int().min(MIN_CYCLES_FLOOR),
  /** `ranking`: stop configs whose interval is clear of their neighbours' in the ranking (`decided`). */
  decide: z.enum(['ranking']).nullable(),
  /** Fields that took a default, and defaults that adapted to a value the user set (shown by `llem plan`). */
  notes: z.array(z.string()),
});
/** Present (non-null) exactly when the study said `n_cycles: auto` (or wrote a target alone). */
export type CycleTarget = z.infer<typeof cycleTargetSchema>;

/** The unit of a summary metric ('' for a ratio). */
export function metricUnit(metric: SummaryMetricKey): string {
  return SUMMARY_METRICS.find((m) => m.key === metric)!.unit;
}

/** "±5 % of the mean" / "±0.5 mJ" for plan and report lines. */
export function describeHalfWidth(h: HalfWidth): string {
  return h.kind === 'relative' ? `±${+(h.value * 100).toPrecision(6)} % of the mean` : `±${h.as_written}`;
}

export interface ResolvedCycles {
  /** Cycles planned now: the fixed count, or min_cycles with a target (rounds add the rest). */
  n_cycles: number;
  target: CycleTarget | null;
}

/**
 * n_cycles and target of the merged `execution:` mapping. Cross-field problems go to `issues`
 * (the caller positions them in the file that wrote the field). Defaults adapt to what the user set:
 *  - `target:` without `n_cycles` means auto (the default 3 would silently ignore the target);
 *  - a user min_cycles above the default max raises max (and a user max below the default min
 *    lowers min); when both are the user's and conflict, the error names both.
 */
export function resolveCycles(
  execRaw: Record<string, unknown>,
  defaultCycles: number,
  /** Records a problem at a field path (the grammar positions it in the file that wrote it). */
  push: (path: string[], message: string, atKey?: boolean) => void,
): ResolvedCycles {
  const nRaw = execRaw.n_cycles as number | 'auto' | undefined;
  const tRaw = execRaw.target as Record<string, unknown> | undefined;
  if (nRaw !== 'auto' && tRaw === undefined) return { n_cycles: nRaw ?? defaultCycles, target: null };
  if (typeof nRaw === 'number') {
    push(['execution', 'target'], `only used with n_cycles: auto, but execution.n_cycles is ${nRaw} (write n_cycles: auto to stop each config when its interval is narrow enough, or remove target)`, true);
    return { n_cycles: nRaw, target: null };
  }
  const t = tRaw ?? {};
  const notes: string[] = [];
  if (nRaw === undefined) notes.push('n_cycles: auto (implied by execution.target)');
  const metric = (t.metric as SummaryMetricKey | undefined) ?? DEFAULT_TARGET_METRIC;
  if (t.metric === undefined) notes.push(`target.metric: ${metric} (default)`);

  let halfWidth: HalfWidth = { kind: 'relative', value: DEFAULT_CI_HALF_WIDTH };
  if (t.ci_half_width === undefined) notes.push(`target.ci_half_width: ${DEFAULT_CI_HALF_WIDTH} of the mean (default)`);
  else {
    const parsed = parseHalfWidth(t.ci_half_width);
    if ('error' in parsed) push(['execution', 'target', 'ci_half_width'], parsed.error); // checked per file already; kept for merged input
    else if (parsed.kind === 'relative') halfWidth = parsed;
    else {
      const unit = metricUnit(metric);
      const scale = UNIT_SCALES[unit]?.[parsed.unit];
      if (scale === undefined) {
        const accepted = Object.keys(UNIT_SCALES[unit] ?? {});
        push(
          ['execution', 'target', 'ci_half_width'],
          `unit "${parsed.unit}" does not fit metric ${metric} (${unit ? `measured in ${unit}` : 'a ratio without a unit'}${t.metric === undefined ? ', the default metric' : ''}): ` +
            (accepted.length ? `expected one of ${accepted.join(', ')} or a percentage` : 'expected a fraction of the mean or a percentage'),
        );
      } else {
        halfWidth = { kind: 'absolute', value: parsed.amount * scale, unit, as_written: String(t.ci_half_width).trim() };
      }
    }
  }

  const userMin = t.min_cycles as number | undefined;
  const userMax = t.max_cycles as number | undefined;
  let min = userMin ?? DEFAULT_MIN_CYCLES;
  let max = userMax ?? DEFAULT_MAX_CYCLES;
  if (userMin !== undefined && userMax !== undefined && userMin > userMax) {
    push(['execution', 'target', 'min_cycles'], `min_cycles ${userMin} exceeds max_cycles ${userMax}`);
  } else if (min > max) {
    if (userMax === undefined) {
      max = min;
      notes.push(`target.max_cycles: ${max} (the default ${DEFAULT_MAX_CYCLES} raised to min_cycles)`);
    } else {
      min = Math.max(MIN_CYCLES_FLOOR, max);
      notes.push(`target.min_cycles: ${min} (the default ${DEFAULT_MIN_CYCLES} lowered to max_cycles)`);
    }
  } else {
    if (userMin === undefined) notes.push(`target.min_cycles: ${min} (default)`);
    if (userMax === undefined) notes.push(`target.max_cycles: ${max} (default)`);
  }
  return {
    n_cycles: min,
    target: { metric, ci_half_width: halfWidth, min_cycles: min, max_cycles: max, decide: (t.decide as 'ranking' | undefined) ?? null, notes },
  };
}

/** Most runs an auto study may take (every config to max_cycles); the fixed count otherwise. */
export function maxCyclesOf(exec: { n_cycles: number; target?: CycleTarget | null }): number {
  return exec.target ? exec.target.max_cycles : exec.n_cycles;
}
