// The sweep grammar: merged study → backends × dimensions → configs on demand (lazy).
//  - `sweep:` key without a dot, or dotted with a prefix that is not a backend: a universal field
//    (`batch_size`, `warmup.max_prompts`) that multiplies every backend's grid.
//  - `<backend>.<param>` (prefix a registered backend): multiplies only that backend's grid.
//    `<backend>: {param: [..]}` is the same written nested.
//  - A list is the alternatives; a scalar is one value; an empty list is an error. (A field whose
//    type is itself a list, like `command.argv`, is swept as a list of lists.)
//  - Backends come from `backend:` (scalar or list, top level or in `sweep:`), else from the
//    prefixes of scoped keys. A scoped key for a backend not in the study is an error.
//  - `experiments:` entries are deep-merged over the top-level fields and added after the grid.
//    With `experiments:` and no `sweep:`, the top-level fields are shared defaults, not a config.
import { basename, extname } from 'node:path';
import type { BackendSpec } from '../backends/types.ts';
import { backendNames, getBackendSpec } from '../backends/registry.ts';
import { sortedDeep } from './hash.ts';
import { StudyInputError, didYouMean, formatPath, type StudyIssue } from './errors.ts';
import { deepMerge, isPlainObject, issueAt, sourceOf, type LoadedStudy, type SourceFile } from './load.ts';
import {
  DEFAULT_BASELINE, DEFAULT_BATCH_SIZE, DEFAULT_ENERGY, DEFAULT_EXECUTION, DEFAULT_MAX_NEW_TOKENS, DEFAULT_N,
  DEFAULT_PRECISION, DEFAULT_SEED, DEFAULT_WARMUP, STUDY_FIELDS, UNIVERSAL_FIELDS, experimentPartialSchema,
  schemaAt, zodIssuesToMessages,
} from './schema.ts';
import { resolveCycles } from './target.ts';
import type { z } from 'zod';
import { resolveValidityPolicy } from '../measure/validity.ts';
import type { DatasetSpec, ExecutionConfig, ExperimentConfig, WarmupConfig } from './types.ts';
import { DEFAULT_ARRIVAL, formatArrival, parseArrival } from '../arrival.ts';
import { formatSlo, parseSlo } from '../results/slo.ts';
import { effectiveGpuSettings, type GpuSettings } from './gpu-settings.ts';

export interface SweepDimension {
  /** The key as written in `sweep:` (for labels and messages). */
  key: string;
  /** Where the value goes in a raw experiment object: ['batch_size'], ['warmup', 'max_prompts'], ['vllm', 'max_num_seqs']. */
  path: string[];
  values: unknown[];
}

export interface BackendGrid {
  backend: string;
  spec: BackendSpec;
  /** Universal dimensions first (in sweep order), then this backend's scoped ones. */
  dims: SweepDimension[];
  /** Number of scoped dims at the end of `dims` (they alone decide `params`). */
  scopedCount: number;
  count: number;
  /** Index of this grid's first config in the study's config sequence. */
  start: number;
}

export interface ExplicitExperiment {
  index: number;
  backend: string;
  raw: Record<string, unknown>;
  /** Backend sections written in this entry for a backend it does not use (a skip reason). */
  otherBackendSections: string[];
}

export interface StudyModel {
  name: string;
  sourcePath: string;
  chain: SourceFile[];
  execution: ExecutionConfig;
  /** Top-level experiment fields (backend sections included, `backend` removed). */
  fixed: Record<string, unknown>;
  grids: BackendGrid[];
  explicit: ExplicitExperiment[];
  gridCount: number;
  /** Grid configs + explicit entries, before validity checks and duplicate merging. */
  totalCount: number;
  /** Swept keys, for labels. */
  sweptKeys: string[];
  /** issue 16: the study's `slo:` conditions, canonical (ttft_p95_ms<=200), or null. */
  slo: string[] | null;
  /** Top-level backend sections for a backend no config of the study uses (a plan warning each). */
  unusedSections: string[];
}

/** One config of the sequence, effective (defaults applied), with where it came from. */
export interface ExpandedConfig {
  sourceIndex: number;
  label: string;
  config: ExperimentConfig;
  reasons: string[];
}

function setIn(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let obj = target;
  for (let i = 0; i < path.length - 1; i++) {
    const seg = path[i]!;
    obj[seg] = isPlainObject(obj[seg]) ? { ...(obj[seg] as Record<string, unknown>) } : {};
    obj = obj[seg] as Record<string, unknown>;
  }
  const last = path[path.length - 1]!;
  obj[last] = isPlainObject(obj[last]) && isPlainObject(value) ? deepMerge(obj[last], value) : value;
}

function nestedObject(path: readonly string[], value: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  setIn(out, path, value);
  return out;
}

export function normalizeDataset(value: unknown): DatasetSpec {
  if (value === undefined || value === 'builtin') return { kind: 'builtin', name: 'default' };
  if (typeof value === 'string') {
    if (value.startsWith('builtin:')) return { kind: 'builtin', name: value.slice('builtin:'.length) };
    if (value.startsWith('synthetic:')) return { kind: 'synthetic', input_tokens: Number(value.slice('synthetic:'.length)) };
    return { kind: 'jsonl', path: value };
  }
  return value as DatasetSpec;
}

/** Top-level scalar fields whose swept value is the effective value (no defaults to merge). */
const DIRECT_FIELDS = new Set(['model', 'precision', 'n', 'max_new_tokens', 'batch_size', 'seed']);

const LABEL_NAMES: Record<string, string> = {
  batch_size: 'bs', max_new_tokens: 'tok', precision: 'prec', n: 'n', seed: 'seed', request_rate: 'rate',
  'gpu.power_limit_w': 'power_w', 'gpu.sm_clock_mhz': 'sm_mhz', 'gpu.memory_clock_mhz': 'mem_mhz',
};

function labelValue(v: unknown): string {
  if (typeof v === 'string') return v.includes('/') ? basename(v) : v;
  if (v && typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Builds the model of a loaded study: validates sweep keys and values, computes counts. */
export function buildStudyModel(loaded: LoadedStudy, studyPath: string): StudyModel {
  const { chain, merged } = loaded;
  const issues: StudyIssue[] = [];
  const names = backendNames();
  const partialSchema = experimentPartialSchema();

  const fixed: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(merged)) {
    if (!(STUDY_FIELDS as readonly string[]).includes(k) && k !== 'backend') fixed[k] = v;
  }

  // Validate one value as if it were written at `path` of an experiment. The leaf schema alone
  // when the path is known (cheap for sweeps of thousands of values), else the whole object (which
  // names the unknown key).
  const leafSchemas = new Map<string, z.ZodTypeAny | undefined>();
  const checkValue = (path: string[], value: unknown, where: (string | number)[]): void => {
    const key = path.join('\0');
    if (!leafSchemas.has(key)) leafSchemas.set(key, path.length ? schemaAt(partialSchema, path) : undefined);
    const leaf = leafSchemas.get(key);
    if (leaf) {
      const r = leaf.safeParse(value);
      if (r.success) return;
    }
    // An unknown field is one problem of the key, not of each value: reported once, at the key.
    const keyWhere = typeof where[where.length - 1] === 'number' ? where.slice(0, -1) : where;
    if (!leaf && reportedKeys.has(keyWhere.join('\0'))) return;
    const candidate = nestedObject(path, value);
    const parsed = partialSchema.safeParse(candidate);
    if (!parsed.success) {
      const at = leaf ? where : keyWhere;
      const src = sourceOf(chain, at);
      if (!leaf) reportedKeys.add(keyWhere.join('\0'));
      for (const m of zodIssuesToMessages(parsed.error, partialSchema, candidate)) {
        issues.push(issueAt(src, at, `${formatPath(m.path)}: ${m.message}`, !leaf));
      }
    }
  };
  const reportedKeys = new Set<string>();

  // Classify sweep keys.
  const sweep = (merged.sweep as Record<string, unknown> | undefined) ?? {};
  const universalDims: SweepDimension[] = [];
  const scopedDims = new Map<string, SweepDimension[]>();
  let sweptBackends: string[] | null = null;
  const scopedKeySource = new Map<string, (string | number)[]>();

  const valuesOf = (key: string, raw: unknown): unknown[] | null => {
    if (!Array.isArray(raw)) return [raw];
    if (raw.length === 0) {
      issues.push(issueAt(sourceOf(chain, ['sweep', key]), ['sweep', key], 'expected a value or a non-empty list of values, got an empty list (an empty sweep would plan zero experiments)'));
      return null;
    }
    return raw;
  };

  const addScoped = (backend: string, param: string[], key: string, raw: unknown, where: (string | number)[]) => {
    const values = valuesOf(where[1] as string, raw);
    if (!values) return;
    values.forEach((v, i) => checkValue([backend, ...param], v, Array.isArray(raw) ? [...where, i] : where));
    const list = scopedDims.get(backend) ?? [];
    list.push({ key, path: [backend, ...param], values });
    scopedDims.set(backend, list);
    if (!scopedKeySource.has(backend)) scopedKeySource.set(backend, where);
  };

  for (const [key, raw] of Object.entries(sweep)) {
    const where = ['sweep', key];
    const segs = key.split('.');
    const head = segs[0]!;
    if (segs.length > 1 && names.includes(head)) {
      addScoped(head, segs.slice(1), key, raw, where);
    } else if (segs.length === 1 && names.includes(head) && isPlainObject(raw)) {
      for (const [param, v] of Object.entries(raw)) addScoped(head, [param], `${head}.${param}`, v, [...where, param]);
    } else if (segs.length === 1 && names.includes(head)) {
      // `vllm: [{…}, {…}]`: whole-section alternatives.
      addScoped(head, [], key, raw, where);
    } else if (key === 'backend') {
      const values = valuesOf(key, raw);
      if (values) {
        checkValue(['backend'], values, where);
        sweptBackends = values.map(String);
      }
    } else if (!(UNIVERSAL_FIELDS as readonly string[]).includes(head) || (segs.length > 1 && !['warmup', 'baseline', 'energy', 'dataset', 'gpu'].includes(head))) {
      const known = [...UNIVERSAL_FIELDS, ...names];
      issues.push(
        issueAt(sourceOf(chain, where), where, `unknown sweep key "${key}"${didYouMean(head, known)}: expected a field (${UNIVERSAL_FIELDS.join(', ')}), a nested field like warmup.max_prompts, or <backend>.<param> for a backend in ${names.join(', ')}`, true),
      );
    } else {
      const values = valuesOf(key, raw);
      if (!values) continue;
      values.forEach((v, i) => checkValue(segs, v, Array.isArray(raw) ? [...where, i] : where));
      universalDims.push({ key, path: segs, values });
    }
  }

  // Which backends the study has.
  const topBackend = merged.backend;
  let declared: string[] | null = sweptBackends ?? (topBackend === undefined ? null : Array.isArray(topBackend) ? topBackend.map(String) : [String(topBackend)]);
  const hasSweep = merged.sweep !== undefined;
  const explicitRaw = (merged.experiments as Record<string, unknown>[] | undefined) ?? [];
  const hasGrid = hasSweep || explicitRaw.length === 0;
  if (declared) {
    for (const [backend, where] of scopedKeySource) {
      if (!declared.includes(backend)) {
        issues.push(
          issueAt(sourceOf(chain, where), where, `scoped key for backend "${backend}", which is not in this study (backend: ${declared.join(', ')})`, true),
        );
      }
    }
  } else if (scopedDims.size > 0) {
    declared = [...scopedDims.keys()];
  }
  if (hasGrid && !declared) {
    issues.push({ ...issueAt(chain[0]!, [], ''), path: 'backend', message: `required field is missing (expected one of ${names.join(', ')})` });
  }
  if (declared && new Set(declared).size !== declared.length) {
    const where = sweptBackends ? ['sweep', 'backend'] : ['backend'];
    issues.push(issueAt(sourceOf(chain, where), where, `expected each backend once, got ${declared.join(', ')}`));
  }
  if (hasGrid && fixed.model === undefined && !universalDims.some((d) => d.path[0] === 'model')) {
    issues.push({ ...issueAt(chain[0]!, [], ''), path: 'model', message: 'required field is missing (expected a model: a .gguf path, a hub id, or builtin:tiny-random)' });
  }

  const execRaw = (merged.execution as Record<string, unknown> | undefined) ?? {};
  const cycles = resolveCycles(execRaw, DEFAULT_EXECUTION.n_cycles, (path, message, atKey) => issues.push(issueAt(sourceOf(chain, path), path, message, atKey)));
  const execution: ExecutionConfig = {
    ...DEFAULT_EXECUTION,
    ...(execRaw as Partial<ExecutionConfig>),
    ...cycles,
    validity: resolveValidityPolicy(execRaw.validity as Parameters<typeof resolveValidityPolicy>[0]),
  };
  if (execution.cooldown) execution.cooldown = { ...execution.cooldown, max_wait_seconds: execution.cooldown.max_wait_seconds ?? 300 };

  if (issues.length) throw new StudyInputError(issues);

  const grids: BackendGrid[] = [];
  let start = 0;
  if (hasGrid && declared) {
    for (const backend of declared) {
      const spec = getBackendSpec(backend)!;
      const scoped = scopedDims.get(backend) ?? [];
      const dims = [...universalDims, ...scoped];
      const count = dims.reduce((acc, d) => acc * d.values.length, 1);
      grids.push({ backend, spec, dims, scopedCount: scoped.length, count, start });
      start += count;
    }
  }
  const gridCount = start;

  const explicit: ExplicitExperiment[] = explicitRaw.map((entry, index) => {
    const where = ['experiments', index];
    const raw = deepMerge(fixed, entry) as Record<string, unknown>;
    let backend = entry.backend ?? (declared && declared.length === 1 ? declared[0] : undefined);
    if (Array.isArray(backend)) {
      issues.push(issueAt(sourceOf(chain, [...where, 'backend']), [...where, 'backend'], 'expected one backend per entry, got a list'));
      backend = undefined;
    } else if (backend === undefined) {
      issues.push({ ...issueAt(sourceOf(chain, where), where, ''), path: `experiments[${index}].backend`, message: `required field is missing (the study has ${declared ? declared.length : 0} backends, so each entry names one)` });
    }
    if (raw.model === undefined) {
      issues.push({ ...issueAt(sourceOf(chain, where), where, ''), path: `experiments[${index}].model`, message: 'required field is missing' });
    }
    delete raw.backend;
    // Only what the entry itself writes: a shared top-level section is judged once, study-wide.
    const otherBackendSections = Object.keys(entry).filter((k) => names.includes(k) && k !== String(backend));
    return { index, backend: String(backend), raw, otherBackendSections };
  });
  if (issues.length) throw new StudyInputError(issues);

  const model: StudyModel = {
    name: typeof merged.name === 'string' ? merged.name : basename(studyPath, extname(studyPath)).replace(/[^\w.-]/g, '_'),
    sourcePath: chain[0]!.file,
    chain,
    execution,
    fixed,
    grids,
    explicit,
    gridCount,
    totalCount: gridCount + explicit.length,
    sweptKeys: [...universalDims.map((d) => d.key), ...[...scopedDims.values()].flat().map((d) => d.key)],
    // Validated by the study file schema (src/study/schema.ts) before the model is built.
    slo: merged.slo === undefined ? null : formatSlo(parseSlo(merged.slo as string | string[])).split(','),
    unusedSections: [],
  };
  const used = new Set([...grids.filter((g) => g.count > 0).map((g) => g.backend), ...explicit.map((e) => e.backend)]);
  for (const name of names) {
    if (fixed[name] !== undefined && !used.has(name)) {
      model.unusedSections.push(
        `the top-level ${name}: section applies to no config (the study's backends: ${[...used].join(', ') || 'none'}): its settings are never used`,
      );
    }
  }

  // Every backend section must parse with its defaults (a required field like openai.base_url may
  // only be missing here). Checked on each grid's first config and each explicit entry.
  for (const g of grids) {
    if (g.count > 0) expandRaw(model, g.start, issues);
  }
  for (const e of explicit) expandRaw(model, gridCount + e.index, issues);
  if (issues.length) throw new StudyInputError(issues);
  return model;
}

interface RawConfig {
  backend: string;
  spec: BackendSpec;
  raw: Record<string, unknown>;
  /** Swept scalar fields to set on the effective config as they are. */
  direct: Array<[string, unknown]>;
  label: () => string;
  /** Key under which the parsed params may be cached (scoped choice), or null. */
  paramsKey: string | null;
  where: (string | number)[];
  /** Skip reasons from the entry's own sections (explicit entries only). */
  sectionReasons: string[];
}

function rawConfigAt(model: StudyModel, i: number): RawConfig {
  if (i < model.gridCount) {
    let lo = 0;
    let hi = model.grids.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (model.grids[mid]!.start <= i) lo = mid;
      else hi = mid - 1;
    }
    const g = model.grids[lo]!;
    let rest = i - g.start;
    const choice: number[] = new Array(g.dims.length);
    // First dimension slowest, like nested loops in sweep order.
    for (let d = g.dims.length - 1; d >= 0; d--) {
      const len = g.dims[d]!.values.length;
      choice[d] = rest % len;
      rest = Math.floor(rest / len);
    }
    // Scalar top-level fields go straight onto the effective config (the hot path of big grids);
    // anything nested is merged into a copy of the raw fields.
    let raw = model.fixed;
    const direct: Array<[string, unknown]> = [];
    for (let d = 0; d < g.dims.length; d++) {
      const dim = g.dims[d]!;
      const value = dim.values[choice[d]!];
      if (dim.path.length === 1 && DIRECT_FIELDS.has(dim.path[0]!)) direct.push([dim.path[0]!, value]);
      else {
        if (raw === model.fixed) raw = { ...model.fixed };
        setIn(raw, dim.path, value);
      }
    }
    // Labels are only needed for skipped configs and display: built on demand.
    const label = () => {
      const parts: string[] = [g.backend];
      for (let d = 0; d < g.dims.length; d++) {
        const dim = g.dims[d]!;
        if (dim.values.length < 2) continue;
        const name = dim.path[0] === g.backend ? dim.path.slice(1).join('.') || g.backend : (LABEL_NAMES[dim.key] ?? dim.key);
        parts.push(`${name}=${labelValue(dim.values[choice[d]!])}`);
      }
      return parts.join(' ');
    };
    const paramsKey = g.scopedCount === 0 ? g.backend : `${g.backend}#${choice.slice(g.dims.length - g.scopedCount).join(',')}`;
    return { backend: g.backend, spec: g.spec, raw, direct, label, paramsKey, where: ['sweep'], sectionReasons: [] };
  }
  const e = model.explicit[i - model.gridCount];
  if (!e) throw new RangeError(`config index ${i} out of range 0..${model.totalCount - 1}`);
  return {
    backend: e.backend,
    spec: getBackendSpec(e.backend)!,
    raw: e.raw,
    direct: [],
    label: () => `${e.backend} experiments[${e.index}]`,
    paramsKey: null,
    where: ['experiments', e.index],
    sectionReasons: e.otherBackendSections.map((section) => {
      const keys = isPlainObject(e.raw[section]) ? Object.keys(e.raw[section] as object) : [];
      return `experiments[${e.index}] has a ${section}: section${keys.length ? ` (${keys.join(', ')})` : ''}, but the entry uses backend ${e.backend}: those settings would never apply (set backend: ${section}, or move the section to an entry that uses it)`;
    }),
  };
}

const paramsCache = new WeakMap<StudyModel, Map<string, Record<string, unknown>>>();

function expandRaw(model: StudyModel, i: number, issues: StudyIssue[] | null): ExpandedConfig {
  const rc = rawConfigAt(model, i);
  const { raw, spec, backend } = rc;
  let cache = paramsCache.get(model);
  if (!cache) paramsCache.set(model, (cache = new Map()));
  let params = rc.paramsKey ? cache.get(rc.paramsKey) : undefined;
  if (!params) {
    const section = raw[backend] ?? {};
    const parsed = spec.params.safeParse(section);
    if (!parsed.success) {
      const where = rc.where[0] === 'experiments' ? [...rc.where, backend] : [backend];
      const src = sourceOf(model.chain, where);
      const list = zodIssuesToMessages(parsed.error, spec.params, section).map((m) =>
        issueAt(src, where, `${formatPath([backend, ...m.path])}: ${m.message}`),
      );
      if (issues) issues.push(...list);
      else throw new StudyInputError(list);
      params = {};
    } else {
      params = Object.freeze(sortedDeep(parsed.data as Record<string, unknown>));
      if (rc.paramsKey) {
        if (cache.size > 10_000) cache.clear();
        cache.set(rc.paramsKey, params);
      }
    }
  }
  const warmup = warmupOf(raw.warmup);
  // Built in sorted key order at every depth so that JSON.stringify is the canonical JSON (hash.ts
  // configHashOfSorted); a unit test holds this equal to canonicalJson.
  // Open-loop fields only when a rate or an arrival is set (sorted positions: arrival first,
  // request_rate after precision), so closed-loop configs hash as before they existed.
  const rate = raw.request_rate as number | 'inf' | undefined;
  const arrivalText = raw.arrival as string | undefined;
  const arrival = arrivalText !== undefined ? formatArrival(parseArrival(arrivalText)!) : rate !== undefined ? DEFAULT_ARRIVAL : undefined;
  const config: ExperimentConfig = {
    ...(arrival !== undefined ? { arrival } : {}),
    backend,
    baseline: mergedSection(raw.baseline, DEFAULT_BASELINE),
    batch_size: (raw.batch_size as number | undefined) ?? DEFAULT_BATCH_SIZE,
    dataset: datasetOf(raw.dataset),
    energy: mergedSection(raw.energy, DEFAULT_ENERGY),
    // No key at all when every GPU setting is default: the config and its hash are then exactly
    // what they were before `gpu:` existed.
    ...gpuField(raw.gpu),
    max_new_tokens: (raw.max_new_tokens as number | undefined) ?? DEFAULT_MAX_NEW_TOKENS,
    model: raw.model as string,
    n: (raw.n as number | undefined) ?? DEFAULT_N,
    params,
    precision: (raw.precision as string | undefined) ?? defaultPrecision(spec),
    ...(rate !== undefined ? { request_rate: rate } : {}),
    seed: (raw.seed as number | undefined) ?? DEFAULT_SEED,
    warmup: warmup.config,
  };
  for (const [key, value] of rc.direct) (config as Record<string, unknown>)[key] = value;
  const reasons = [...warmup.reasons, ...rc.sectionReasons, ...invalidReasons(config, spec)];
  return new Expanded(i, rc.label, config, reasons);
}

const NO_GPU_FIELD = Object.freeze({});

function gpuField(raw: unknown): { gpu?: GpuSettings } {
  const gpu = effectiveGpuSettings(raw);
  return gpu ? { gpu } : NO_GPU_FIELD;
}

class Expanded implements ExpandedConfig {
  constructor(
    readonly sourceIndex: number,
    private readonly makeLabel: () => string,
    readonly config: ExperimentConfig,
    readonly reasons: string[],
  ) {}
  get label(): string {
    return this.makeLabel();
  }
}

// Nested sections are shared between configs that do not sweep them (and frozen: configs are
// read-only), keyed by the raw section object, which stays the same reference unless swept.
const sectionCache = new WeakMap<object, WeakMap<object, object>>();
const defaultSections = new Map<object, object>();

function mergedSection<T extends object>(raw: unknown, defaults: T): T {
  if (raw === undefined) {
    let d = defaultSections.get(defaults);
    if (!d) defaultSections.set(defaults, (d = Object.freeze(sortedShallow({ ...defaults }))));
    return d as T;
  }
  let byDefaults = sectionCache.get(raw as object);
  if (!byDefaults) sectionCache.set(raw as object, (byDefaults = new WeakMap()));
  let merged = byDefaults.get(defaults);
  if (!merged) byDefaults.set(defaults, (merged = Object.freeze(sortedShallow({ ...defaults, ...(raw as object) }))));
  return merged as T;
}

/** The smallest CV window (a CV needs two latencies). */
const MIN_WARMUP_WINDOW = 2;
const warmupCache = new WeakMap<object, { config: WarmupConfig; reasons: string[] }>();
let warmupDefault: { config: WarmupConfig; reasons: string[] } | null = null;

/**
 * The effective warmup section. Defaults adapt to the values a user set: window and min_prompts
 * are capped at a user's max_prompts, and max_prompts grows to a user's window or min_prompts.
 * What still conflicts is a skip reason that says which value is a default.
 */
export function warmupOf(raw: unknown): { config: WarmupConfig; reasons: string[] } {
  if (raw === undefined) return (warmupDefault ??= { config: mergedSection(undefined, DEFAULT_WARMUP), reasons: [] });
  const cached = warmupCache.get(raw as object);
  if (cached) return cached;
  const set = raw as Partial<WarmupConfig>;
  const d = DEFAULT_WARMUP;
  const max = set.max_prompts ?? Math.max(d.max_prompts, set.window ?? 0, set.min_prompts ?? 0);
  let window = set.window ?? d.window;
  let min = set.min_prompts ?? d.min_prompts;
  if (set.max_prompts !== undefined && set.max_prompts > 0) {
    if (set.window === undefined) window = Math.max(MIN_WARMUP_WINDOW, Math.min(window, max));
    if (set.min_prompts === undefined) min = Math.min(min, max);
  } else if (set.max_prompts === 0 && set.min_prompts === undefined) {
    min = 0; // no warmup: the default minimum adapts
  }
  const reasons: string[] = [];
  if (min > max) reasons.push(`warmup.min_prompts ${min} exceeds warmup.max_prompts ${max}`);
  if (max > 0 && window > max) {
    reasons.push(
      set.window !== undefined
        ? `warmup.window ${window} exceeds warmup.max_prompts ${max}: the CV could never be computed`
        : `warmup.max_prompts ${max} leaves no room for the CV window: warmup.window (not set, so its default ${d.window}, capped at max_prompts) needs at least ${MIN_WARMUP_WINDOW} prompts; set warmup.max_prompts to 0 (no warmup) or at least ${MIN_WARMUP_WINDOW}`,
    );
  }
  const out = { config: Object.freeze(sortedShallow({ ...d, ...set, window, min_prompts: min, max_prompts: max })), reasons };
  warmupCache.set(raw as object, out);
  return out;
}

const datasetByString = new Map<string, DatasetSpec>();
const datasetByObject = new WeakMap<object, DatasetSpec>();

function datasetOf(raw: unknown): DatasetSpec {
  if (raw === undefined || typeof raw === 'string') {
    const key = raw ?? 'builtin';
    let d = datasetByString.get(key);
    if (!d) {
      if (datasetByString.size > 10_000) datasetByString.clear();
      datasetByString.set(key, (d = Object.freeze(sortedDeep(normalizeDataset(raw)))));
    }
    return d;
  }
  let d = datasetByObject.get(raw as object);
  if (!d) datasetByObject.set(raw as object, (d = Object.freeze(sortedDeep(normalizeDataset(raw)))));
  return d;
}

/** `auto` (the checkpoint's own dtype) where the backend accepts it, else the backend's first precision. */
export function defaultPrecision(spec: BackendSpec): string {
  return spec.precisions.includes(DEFAULT_PRECISION) ? DEFAULT_PRECISION : (spec.precisions[0] ?? DEFAULT_PRECISION);
}

function sortedShallow<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o).sort()) out[k] = (o as Record<string, unknown>)[k];
  return out as T;
}

/** Universal checks, then the backend's own: every reason, not the first. */
export function invalidReasons(config: ExperimentConfig, spec: BackendSpec): string[] {
  const reasons: string[] = [];
  if (!spec.precisions.includes(config.precision)) {
    reasons.push(`precision "${config.precision}" is not supported by backend ${spec.name} (supported: ${spec.precisions.join(', ')})${didYouMean(config.precision, spec.precisions)}`);
  }
  if (config.request_rate !== undefined && spec.acceptsRequestRate !== true) {
    reasons.push(`request_rate ${config.request_rate} needs a backend that sends requests itself (openai and the managed servers); backend ${spec.name} runs its own loop and cannot honour a rate`);
  } else if (config.request_rate === undefined && config.arrival !== undefined) {
    reasons.push(`arrival ${config.arrival} is set without request_rate: arrivals need a rate (requests per second, or inf)`);
  }
  reasons.push(...spec.invalidReasons(config));
  return reasons;
}

/** Config `i` of the study's sequence (grid first, then explicit entries), effective and checked. */
export function expandConfig(model: StudyModel, i: number): ExpandedConfig {
  return expandRaw(model, i, null);
}
