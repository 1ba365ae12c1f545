// zod schemas of the study YAML, field defaults, and zod-issue → positioned message conversion.
// Backend sections come from the registry, so adding a backend touches nothing here. The YAML
// sections are the partial forms of the effective shapes in ./plan-schema.ts (defined once there).
import { z } from 'zod';
import { backendNames, backendSpecs, getBackendSpec, registryVersion } from '../backends/registry.ts';
import type { BaselineConfig, EnergyConfig, WarmupConfig } from './types.ts';
import { didYouMean } from './errors.ts';
import { parseSlo, SloParseError } from '../results/slo.ts';
import {
  arrivalSchema,
  baselineConfigSchema,
  datasetSpecSchema,
  energyConfigSchema,
  executionConfigSchema,
  experimentConfigSchema,
  requestRateSchema,
  warmupConfigSchema,
} from './plan-schema.ts';

/** `slo:` conditions, a comma list or a list of them (src/results/slo.ts). */
export const sloFieldSchema = z.union([z.string(), z.array(z.string()).min(1)]).superRefine((v, ctx) => {
  try {
    parseSlo(v);
  } catch (err) {
    if (err instanceof SloParseError) ctx.addIssue({ code: 'custom', message: err.message.replace(/^"/, 'condition "') });
    else throw err;
  }
});
import { gpuSectionSchema } from './gpu-settings.ts';
import { nCyclesSchema, targetYamlSchema } from './target.ts';
import { validityInputSchema } from '../measure/validity.ts';

/** Universal experiment fields that are not backend sections. */
export const UNIVERSAL_FIELDS = [
  'model', 'backend', 'precision', 'n', 'max_new_tokens', 'batch_size', 'dataset', 'seed', 'warmup', 'baseline', 'energy',
  'request_rate', 'arrival',
  'gpu',
] as const;
export const STUDY_FIELDS = ['name', 'description', 'base', 'sweep', 'experiments', 'execution', 'slo'] as const;

// Defaults. MEASUREMENT.md fixes warmup cv_threshold 0.05 and the 10 Hz sampler.
export const DEFAULT_PRECISION = 'auto';
export const DEFAULT_N = 100;
export const DEFAULT_MAX_NEW_TOKENS = 128;
export const DEFAULT_BATCH_SIZE = 1;
export const DEFAULT_SEED = 42;
export const DEFAULT_WARMUP: WarmupConfig = { cv_threshold: 0.05, window: 5, min_prompts: 3, max_prompts: 30 };
export const DEFAULT_BASELINE: BaselineConfig = { enabled: true, duration_seconds: 30, reuse_seconds: 300 };
export const DEFAULT_ENERGY: EnergyConfig = { sample_interval_ms: 100, live_interval_ms: 500, rapl: true };
// the defaults an older plan.json's execution takes too, so they live with its schema
export { DEFAULT_EXECUTION } from './plan-schema.ts';

export const warmupSchema = warmupConfigSchema.partial().strict();
export const baselineSchema = baselineConfigSchema.partial().strict();
export const energySchema = energyConfigSchema.partial().strict();

const DATASET_EXPECTED =
  'expected "builtin", "builtin:<name>", "synthetic:<input_tokens>", a .jsonl path, or {kind: builtin|jsonl|synthetic, …}';

export const datasetSchema = z.unknown().superRefine((value, ctx) => {
  if (typeof value === 'string') {
    if (value === 'builtin' || /^builtin:[\w.-]+$/.test(value) || /^synthetic:\d+$/.test(value) || value.endsWith('.jsonl')) return;
    ctx.addIssue({ code: 'custom', message: `${DATASET_EXPECTED}, got "${value}"` });
    return;
  }
  if (datasetSpecSchema.safeParse(value).success) return;
  ctx.addIssue({ code: 'custom', message: DATASET_EXPECTED });
});

function checkBackendName(name: unknown, ctx: z.RefinementCtx, path: (string | number)[]): void {
  if (typeof name !== 'string') {
    ctx.addIssue({ code: 'custom', path, message: `expected a backend name (one of ${backendNames().join(', ')})` });
  } else if (!getBackendSpec(name)) {
    ctx.addIssue({
      code: 'custom',
      path,
      message: `expected one of ${backendNames().join(', ')}, got "${name}"${didYouMean(name, backendNames())}`,
    });
  }
}

export const backendFieldSchema = z.unknown().superRefine((value, ctx) => {
  if (Array.isArray(value)) {
    if (value.length === 0) ctx.addIssue({ code: 'custom', message: 'expected at least one backend, got an empty list' });
    value.forEach((v, i) => checkBackendName(v, ctx, [i]));
  } else checkBackendName(value, ctx, []);
});

/** A ZodObject's keys with their value schemas made optional and defaults not injected. */
export function partialParams(schema: z.ZodTypeAny): z.ZodTypeAny {
  return schema instanceof z.ZodObject ? schema.partial() : z.record(z.unknown());
}

function memoByRegistry<T>(build: () => T): () => T {
  let cached: T | null = null;
  let at = -1;
  return () => {
    if (cached === null || at !== registryVersion()) {
      cached = build();
      at = registryVersion();
    }
    return cached;
  };
}

/** Universal fields + one optional section per registered backend; every field optional. */
export const experimentPartialSchema = memoByRegistry(buildExperimentPartialSchema);
export const studyFileSchema = memoByRegistry(buildStudyFileSchema);

function buildExperimentPartialSchema() {
  const effective = experimentConfigSchema.shape;
  const shape: Record<string, z.ZodTypeAny> = {
    model: effective.model,
    backend: backendFieldSchema,
    precision: effective.precision,
    n: effective.n,
    max_new_tokens: effective.max_new_tokens,
    batch_size: effective.batch_size,
    dataset: datasetSchema,
    seed: effective.seed,
    warmup: warmupSchema,
    baseline: baselineSchema,
    energy: energySchema,
    request_rate: requestRateSchema,
    arrival: arrivalSchema,
    // GPU operating point (src/study/gpu-settings.ts).
    gpu: gpuSectionSchema,
  };
  for (const spec of backendSpecs()) shape[spec.name] = partialParams(spec.params);
  return z.object(shape).partial().strict();
}

/** `execution:` as written: the effective execution's fields, with the YAML forms of three. */
export const executionSchema = executionConfigSchema
  .extend({
    n_cycles: nCyclesSchema, // a count, or `auto` with `target:` (src/study/target.ts)
    target: targetYamlSchema,
    /** Which recorded conditions make a run invalid (src/measure/validity.ts). */
    validity: validityInputSchema,
  })
  .partial()
  .strict();

function buildStudyFileSchema() {
  const experiment = experimentPartialSchema();
  return experiment
    .extend({
      name: z.string().min(1).regex(/^[\w.-]+$/, 'expected letters, digits, "_", "." or "-"'),
      description: z.string(),
      base: z.string().min(1),
      sweep: z.record(z.unknown()),
      experiments: z.array(experiment).min(1),
      execution: executionSchema,
      slo: sloFieldSchema,
    })
    .partial()
    .strict();
}

/** The schema of the value at `path` (through objects, arrays, records and wrappers), or undefined. */
export function schemaAt(schema: z.ZodTypeAny, path: ReadonlyArray<string | number>): z.ZodTypeAny | undefined {
  let s: z.ZodTypeAny | undefined = schema;
  for (const seg of path) {
    if (!s) return undefined;
    s = unwrapSchema(s);
    if (s instanceof z.ZodObject && typeof seg === 'string') s = s.shape[seg] as z.ZodTypeAny | undefined;
    else if (s instanceof z.ZodArray) s = s.element;
    else if (s instanceof z.ZodRecord) s = s.valueSchema;
    else return undefined;
  }
  return s;
}

function unwrapSchema(t: z.ZodTypeAny): z.ZodTypeAny {
  for (;;) {
    if (t instanceof z.ZodOptional || t instanceof z.ZodNullable) t = t.unwrap();
    else if (t instanceof z.ZodDefault) t = t._def.innerType;
    else if (t instanceof z.ZodEffects) t = t.innerType();
    else return t;
  }
}

/** Follows a schema down a path (objects, arrays, optional/default/nullable wrappers) to list known keys. */
export function knownKeysAt(schema: z.ZodTypeAny, path: ReadonlyArray<string | number>): string[] {
  let s: z.ZodTypeAny | undefined = schema;
  const unwrap = (t: z.ZodTypeAny): z.ZodTypeAny => {
    for (;;) {
      if (t instanceof z.ZodOptional || t instanceof z.ZodNullable) t = t.unwrap();
      else if (t instanceof z.ZodDefault) t = t._def.innerType;
      else if (t instanceof z.ZodEffects) t = t.innerType();
      else return t;
    }
  };
  for (const seg of path) {
    if (!s) return [];
    s = unwrap(s);
    if (s instanceof z.ZodObject && typeof seg === 'string') s = s.shape[seg] as z.ZodTypeAny | undefined;
    else if (s instanceof z.ZodArray) s = s.element;
    else if (s instanceof z.ZodRecord) s = s.valueSchema;
    else return [];
  }
  if (!s) return [];
  s = unwrap(s);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

function describeReceived(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `"${v.length > 40 ? v.slice(0, 40) + '…' : v}"`;
  return String(v);
}

export interface PathMessage {
  path: (string | number)[];
  message: string;
  /** true when the position should be the key, not the value (unknown keys). */
  atKey: boolean;
}

/** `n: "10"`: YAML quotes make a string; say so rather than leave "expected number, got "10"" puzzling. */
function quotedNumberHint(expected: string, value: unknown): string {
  if ((expected === 'number' || expected === 'integer') && typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) {
    return ` (quoted, so it is text: write ${value.trim()} without quotes)`;
  }
  return '';
}

/** `batch_size: [1, 2]` outside sweep: a list there is one value, not a sweep; point at sweep:. */
function listNotSweepHint(path: (string | number)[], value: unknown): string {
  if (!Array.isArray(value) || path.length === 0 || path.some((p) => typeof p === 'number')) return '';
  if (['sweep', 'experiments', 'execution', 'base', 'name'].includes(String(path[0]))) return '';
  return ` (to sweep several values, list them under sweep: as ${path.join('.')}: [...])`;
}

/** zod issues → one message per problem, with did-you-mean for unknown keys and enum values. */
export function zodIssuesToMessages(error: z.ZodError, schema: z.ZodTypeAny, input: unknown): PathMessage[] {
  const out: PathMessage[] = [];
  const valueAt = (path: (string | number)[]): unknown => {
    let v: unknown = input;
    for (const seg of path) v = v && typeof v === 'object' ? (v as Record<string | number, unknown>)[seg] : undefined;
    return v;
  };
  for (const issue of error.issues) {
    const path = issue.path;
    switch (issue.code) {
      case 'unrecognized_keys': {
        const known = knownKeysAt(schema, path);
        for (const key of issue.keys) {
          out.push({
            path: [...path, key],
            message: `unknown field "${key}"${didYouMean(key, known)}${known.length && known.length <= 16 ? ` (expected one of ${known.join(', ')})` : ''}`,
            atKey: true,
          });
        }
        break;
      }
      case 'invalid_type':
        out.push({
          path,
          message: issue.received === 'undefined' ? `required field is missing (expected ${issue.expected})` : `expected ${issue.expected}, got ${describeReceived(valueAt(path))}${quotedNumberHint(issue.expected, valueAt(path))}${listNotSweepHint(path, valueAt(path))}`,
          atKey: issue.received === 'undefined',
        });
        break;
      case 'invalid_enum_value': {
        const options = issue.options.map(String);
        const got = String(issue.received);
        out.push({ path, message: `expected one of ${options.join(', ')}, got "${got}"${didYouMean(got, options)}`, atKey: false });
        break;
      }
      case 'invalid_union': {
        const alternatives = new Set<string>();
        for (const e of issue.unionErrors) {
          const first = e.issues[0];
          if (!first) continue;
          if (first.code === 'invalid_type') alternatives.add(first.expected);
          else if (first.code === 'invalid_enum_value') alternatives.add(`one of ${first.options.join(', ')}`);
          else if (first.code === 'invalid_literal') alternatives.add(JSON.stringify(first.expected));
          else alternatives.add(first.message.replace(/^Number must be /, 'a number '));
        }
        out.push({ path, message: `expected ${[...alternatives].join(' or ')}, got ${describeReceived(valueAt(path))}`, atKey: false });
        break;
      }
      case 'too_small':
        out.push({
          path,
          message:
            issue.type === 'array'
              ? `expected at least ${issue.minimum} item(s), got ${(valueAt(path) as unknown[] | undefined)?.length ?? 0}`
              : `expected ${issue.type === 'string' ? 'a non-empty string' : `a number ${issue.inclusive ? '>=' : '>'} ${issue.minimum}`}, got ${describeReceived(valueAt(path))}`,
          atKey: false,
        });
        break;
      case 'invalid_string': {
        const what = issue.validation === 'url' ? 'a URL (e.g. http://localhost:8000/v1)' : issue.validation === 'regex' ? issue.message : `a valid ${String(issue.validation)}`;
        out.push({ path, message: `expected ${what.replace(/^expected /, '')}, got ${describeReceived(valueAt(path))}`, atKey: false });
        break;
      }
      case 'too_big':
        out.push({ path, message: `expected a number ${issue.inclusive ? '<=' : '<'} ${issue.maximum}, got ${describeReceived(valueAt(path))}`, atKey: false });
        break;
      default:
        out.push({ path, message: issue.message.startsWith('expected') ? issue.message : `expected ${issue.message.charAt(0).toLowerCase()}${issue.message.slice(1)}`, atKey: false });
    }
  }
  return out;
}
