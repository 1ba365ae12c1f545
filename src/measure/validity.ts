// The validity gate's pure core: which recorded conditions make a run's numbers unusable, with
// thresholds a careful researcher would choose, and judgeValidity(result, policy), which applies
// them to one result.json. The run-attempt path (src/runner/attempt.ts attemptEndOf) calls it after
// each attempt that wrote a result: an invalid run keeps its result, is never averaged, and is
// measured again as a new attempt (src/runner/transitions.ts requeueInvalid).
//
// One table row per validity flag code (VALIDITY_RULES): its default, what a study may set, and
// how it is judged from the result. The study grammar's `execution.validity:` is built from it.
import { z } from 'zod';
import { FLAG_CODES, type FlagCode, type RunResult } from '../results/schema.ts';

export const FOREIGN_PROCESS_POLICIES = ['flag', 'invalid', 'wait'] as const;
export type ForeignProcessPolicy = (typeof FOREIGN_PROCESS_POLICIES)[number];

/** A run judged by the policy: invalid with every reason, or valid. */
export interface ValidityVerdict {
  valid: boolean;
  reasons: Array<{ code: FlagCode; detail: string }>;
  /** A foreign-process reason under policy `wait`: wait (gap, cooldown) before measuring again. */
  wait_before_retry: boolean;
}

/** Threshold of a measured quantity: invalid above it; false = never invalidates (flag only). */
type Threshold = number | false;

interface ThresholdRule {
  kind: 'threshold';
  /** What the number is compared with, for messages and docs. */
  of: string;
  default: Threshold;
  schema: z.ZodTypeAny;
  /** The measured value from a result, or null when the result does not have it. */
  value(r: RunResult): number | null;
  detail(value: number, threshold: number): string;
}

interface FlagRule {
  kind: 'flag';
  /** Whether the flag alone makes the run invalid. */
  default: boolean;
}

interface EnergyUnavailableRule {
  kind: 'energy_unavailable';
  default: boolean | 'when_gpu';
}

interface ForeignRule {
  kind: 'foreign';
  default: ForeignProcessSettings;
}

export interface ForeignProcessSettings {
  policy: ForeignProcessPolicy;
  /** Invalid (or wait) when foreign processes held at least this much GPU memory (MiB) … */
  memory_mib: number;
  /** … or the GPU was at least this busy (%) at preflight, before the model loaded. */
  utilization_pct: number;
}

type Rule = ThresholdRule | FlagRule | EnergyUnavailableRule | ForeignRule;

const fraction = z.number().min(0).max(1);
const thresholdOr = (num: z.ZodTypeAny) => z.union([num, z.boolean()]);
const pct = (x: number) => `${(x * 100).toFixed(x < 0.01 ? 2 : 1)} %`;

const throttleRule = (reason: 'thermal' | 'power_brake', name: string): ThresholdRule => ({
  kind: 'threshold',
  of: `fraction of the window with ${name}`,
  default: 0.05,
  schema: thresholdOr(fraction),
  value(r) {
    const f = r.metrics.throttle_fraction?.[reason];
    if (f !== undefined && f !== null) return f;
    const s = r.metrics.throttle_s[reason];
    return s === null || r.metrics.window_s <= 0 ? null : s / r.metrics.window_s;
  },
  detail: (v, t) => `${name} during ${pct(v)} of the window (more than ${pct(t)})`,
});

/** Every flag code, one row: a new flag is one row here (the `satisfies` makes a missing one a type error). */
export const VALIDITY_RULES = {
  failed_requests: {
    kind: 'threshold',
    of: 'fraction of measured requests that failed',
    default: 0.01,
    schema: thresholdOr(fraction),
    value(r) {
      const failed = r.metrics.requests_failed;
      if (failed === undefined) return null;
      const total = failed + r.metrics.requests;
      return total === 0 ? null : failed / total;
    },
    detail: (v, t) => `${pct(v)} of the measured requests failed (more than ${pct(t)})`,
  },
  energy_divergence: {
    kind: 'threshold',
    of: '|counter − polled| ÷ counter',
    default: 0.1,
    schema: thresholdOr(z.number().min(0)),
    value: (r) => r.metrics.energy_divergence,
    detail: (v, t) => `counter and polled energy differ by ${pct(v)} (more than ${pct(t)})`,
  },
  thermal_throttle: throttleRule('thermal', 'thermal throttling'),
  power_brake: throttleRule('power_brake', 'the power brake'),
  temperature_drift: { kind: 'flag', default: true },
  energy_method_fallback: { kind: 'flag', default: true },
  baseline_above_load: { kind: 'flag', default: true },
  // a number measured under a power limit or clock lock the study did not ask for is wrong
  gpu_setting_drift: { kind: 'flag', default: true },
  energy_unavailable: { kind: 'energy_unavailable', default: 'when_gpu' },
  foreign_gpu_process: { kind: 'foreign', default: { policy: 'invalid', memory_mib: 1024, utilization_pct: 5 } },
  short_window: { kind: 'flag', default: false },
  few_samples: { kind: 'flag', default: false },
  warmup_not_converged: { kind: 'flag', default: false },
  persistence_mode_off: { kind: 'flag', default: false },
  baseline_stale: { kind: 'flag', default: false },
  counter_reset: { kind: 'flag', default: false },
  builtin_model: { kind: 'flag', default: false },
  mig_whole_gpu: { kind: 'flag', default: false },
  // an over-saturated server is a finding about the config (its rate is past capacity), not a bad measurement
  over_saturated: { kind: 'flag', default: false },
} as const satisfies Record<FlagCode, Rule>;

export const DEFAULT_MAX_INVALID_RETRIES = 2;

const foreignSettingsSchema = z
  .object({
    policy: z.enum(FOREIGN_PROCESS_POLICIES),
    memory_mib: z.number().min(0),
    utilization_pct: z.number().min(0).max(100),
  })
  .strict();

function ruleSchema(rule: Rule): z.ZodTypeAny {
  switch (rule.kind) {
    case 'threshold':
      return rule.schema;
    case 'flag':
      return z.boolean();
    case 'energy_unavailable':
      return z.union([z.boolean(), z.literal('when_gpu')]);
    case 'foreign':
      return foreignSettingsSchema.partial().strict();
  }
}

/** `execution.validity:` as written in a study: every key optional. */
export const validityInputSchema = z
  .object({
    max_invalid_retries: z.number().int().min(0),
    ...(Object.fromEntries(Object.entries(VALIDITY_RULES).map(([code, rule]) => [code, ruleSchema(rule)])) as Record<FlagCode, z.ZodTypeAny>),
  })
  .partial()
  .strict();

/** The effective policy recorded in plan.json: every code with its setting, defaults applied. */
export const validityPolicySchema = z.object({
  max_invalid_retries: z.number().int().min(0),
  failed_requests: z.union([z.number(), z.literal(false)]),
  energy_divergence: z.union([z.number(), z.literal(false)]),
  thermal_throttle: z.union([z.number(), z.literal(false)]),
  power_brake: z.union([z.number(), z.literal(false)]),
  energy_unavailable: z.union([z.boolean(), z.literal('when_gpu')]),
  foreign_gpu_process: foreignSettingsSchema,
  temperature_drift: z.boolean(),
  energy_method_fallback: z.boolean(),
  baseline_above_load: z.boolean(),
  // absent in plan.json written before issue 15: its default
  gpu_setting_drift: z.boolean().default(VALIDITY_RULES.gpu_setting_drift.default),
  short_window: z.boolean(),
  few_samples: z.boolean(),
  warmup_not_converged: z.boolean(),
  persistence_mode_off: z.boolean(),
  baseline_stale: z.boolean(),
  counter_reset: z.boolean(),
  builtin_model: z.boolean(),
  mig_whole_gpu: z.boolean(),
});
export type ValidityPolicy = z.infer<typeof validityPolicySchema>;

function defaultPolicy(): ValidityPolicy {
  const out: Record<string, unknown> = { max_invalid_retries: DEFAULT_MAX_INVALID_RETRIES };
  for (const [code, rule] of Object.entries(VALIDITY_RULES)) out[code] = rule.kind === 'foreign' ? { ...rule.default } : rule.default;
  return validityPolicySchema.parse(out);
}

export const DEFAULT_VALIDITY: ValidityPolicy = Object.freeze(defaultPolicy());

/**
 * The effective policy from what a study wrote (already checked by validityInputSchema): `true`
 * on a threshold means "any amount" (0).
 */
export function resolveValidityPolicy(input: z.infer<typeof validityInputSchema> | undefined): ValidityPolicy {
  const out: Record<string, unknown> = { ...DEFAULT_VALIDITY, foreign_gpu_process: { ...DEFAULT_VALIDITY.foreign_gpu_process } };
  for (const [key, value] of Object.entries(input ?? {})) {
    if (value === undefined) continue;
    const rule = (VALIDITY_RULES as Record<string, Rule>)[key];
    if (rule?.kind === 'threshold') out[key] = value === true ? 0 : value;
    else if (rule?.kind === 'foreign') out[key] = { ...DEFAULT_VALIDITY.foreign_gpu_process, ...(value as object) };
    else out[key] = value;
  }
  return validityPolicySchema.parse(out);
}

/** The policy a plan runs under (plan.json written before issue 17 has none: the defaults). */
export function validityPolicyOf(execution: { validity?: ValidityPolicy }): ValidityPolicy {
  return execution.validity ?? DEFAULT_VALIDITY;
}

const MIB = 2 ** 20;

function judgeForeign(r: RunResult, s: ForeignProcessSettings): string | null {
  const checks = r.foreign_gpu ? [r.foreign_gpu.preflight, r.foreign_gpu.window_start, r.foreign_gpu.window_stop] : [];
  const reasons: string[] = [];
  const maxMem = Math.max(0, ...checks.map((c) => (c && c.processes.length > 0 ? c.memory_bytes : 0)));
  if (checks.some((c) => c && c.processes.length > 0) && maxMem >= s.memory_mib * MIB) {
    reasons.push(`foreign processes held ${(maxMem / MIB).toFixed(0)} MiB of GPU memory (at least ${s.memory_mib} MiB)`);
  }
  const util = r.foreign_gpu?.preflight?.gpu_util_pct ?? null;
  if (util !== null && util >= s.utilization_pct && s.utilization_pct > 0) {
    reasons.push(`the GPU was ${util} % busy at preflight, before the model loaded (at least ${s.utilization_pct} %)`);
  }
  // A result written before these checks has only the flag, no amounts: it stays flagged.
  return reasons.length ? reasons.join('; ') : null;
}

/** Every reason in one line, `<code>: <detail>; …`: how messages, notes and tables show a verdict. */
export function reasonsText(reasons: ReadonlyArray<{ code: string; detail: string }>): string {
  return reasons.map((r) => `${r.code}: ${r.detail}`).join('; ');
}

/** The message of an invalid attempt (the manifest's `message`, the plain reporter, `llem status`). */
export function invalidMessage(reasons: ReadonlyArray<{ code: string; detail: string }>): string {
  return `invalid: ${reasonsText(reasons)}`;
}

/** Applies `policy` to one result: every reason it is invalid, or valid. Pure. */
export function judgeValidity(result: RunResult, policy: ValidityPolicy): ValidityVerdict {
  const reasons: ValidityVerdict['reasons'] = [];
  let wait = false;
  const flag = (code: FlagCode) => result.flags.find((f) => f.code === code) ?? null;
  for (const code of FLAG_CODES) {
    const rule: Rule = VALIDITY_RULES[code];
    switch (rule.kind) {
      case 'threshold': {
        const threshold = policy[code as keyof ValidityPolicy] as Threshold;
        if (threshold === false) break;
        const value = rule.value(result);
        if (value !== null && value > threshold) reasons.push({ code, detail: rule.detail(value, threshold) });
        break;
      }
      case 'flag': {
        const f = flag(code);
        if (f && policy[code as keyof ValidityPolicy] === true) reasons.push({ code, detail: f.message });
        break;
      }
      case 'energy_unavailable': {
        const setting = policy.energy_unavailable;
        const f = flag(code);
        if (!f || setting === false) break;
        // Without a GPU (no NVML, or no device) there is no energy to expect: the run measures speed.
        const hasGpu = result.environment.nvml.available && result.environment.gpus.length > 0;
        if (setting === true || hasGpu) reasons.push({ code, detail: f.message });
        break;
      }
      case 'foreign': {
        const s = policy.foreign_gpu_process;
        if (s.policy === 'flag') break;
        const detail = judgeForeign(result, s);
        if (detail !== null) {
          reasons.push({ code, detail });
          if (s.policy === 'wait') wait = true;
        }
        break;
      }
    }
  }
  return { valid: reasons.length === 0, reasons, wait_before_retry: wait };
}
