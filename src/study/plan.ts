// planStudy: study YAML → validated, expanded, hashed, ordered plan with an estimate. Nothing is
// spawned. Up to FULL_EXPANSION_LIMIT configs every config is generated, checked and hashed up
// front (skips and duplicates known exactly); above it the plan stays lazy: counts are arithmetic
// upper bounds, configs and runs are generated on demand, and the plan cannot be materialised.
import { StudyInputError } from './errors.ts';
import { modelBytesResolver } from '../backends/model-size.ts';
import { estimatePlan, type EstimateHistory } from './estimate.ts';
import { gpuFreeMemoryBytes as readGpuFreeMemory } from './gpu.ts';
import { buildStudyModel, expandConfig, type StudyModel } from './grammar.ts';
import { gpuSettingReasons, type GpuLimitsInput } from './gpu-settings.ts';
import { canonicalJson, configHashOfSorted, sha256Hex16, studyHash } from './hash.ts';
import { loadStudy } from './load.ts';
import { runPosition } from './order.ts';
import { maxCyclesOf, type CycleTarget } from './target.ts';
import type { Machine } from '../history/machine.ts';
import type { Estimate, ExecutionConfig, PlanFile, PlannedConfig, PlannedRun, SkippedConfig } from './types.ts';

/** Configs validated and hashed up front; above this the plan is lazy (and cannot be run). */
export const FULL_EXPANSION_LIMIT = 100_000;
/** toPlanFile refuses plans with more runs than this (plan.json would be hundreds of MB). */
export const PLAN_FILE_MAX_RUNS = 1_000_000;
/** Up to this many configs the expanded objects are kept rather than regenerated on each configAt. */
const KEEP_CONFIGS_LIMIT = 20_000;
/** Duplicate/skip messages listed one by one before "… and N more". */
const LIST_LIMIT = 10;

export type PlanExpansion = 'full' | 'lazy';

export interface BackendBreakdown {
  backend: string;
  configs: number;
  skipped: number;
}

export interface StudyPlan {
  study_name: string;
  study_hash: string;
  /** Absolute path of the study file. */
  source_path: string;
  /** Valid, distinct configs (lazy plans: grid size, an upper bound). */
  config_count: number;
  /** Cycles planned now (n_cycles: auto: target.min_cycles; rounds add more while running). */
  cycles: number;
  run_count: number;
  /** Most runs the study can take: config_count × target.max_cycles with n_cycles: auto, else run_count. */
  max_run_count: number;
  skipped: SkippedConfig[];
  warnings: string[];
  needs_confirmation: boolean;
  estimate: Estimate;
  execution: ExecutionConfig;
  /** Seed of the shuffled order (recorded even when derived from the study hash). */
  cycle_seed: number;
  expansion: PlanExpansion;
  /** Configs before skips and merging (grid + explicit entries). */
  expanded_count: number;
  by_backend: BackendBreakdown[];
  created_at: string;
  /** The i-th valid config, 0 ≤ i < config_count (generated on demand). */
  configAt(i: number): PlannedConfig;
  /** The k-th run in execution order, 0 ≤ k < run_count. */
  runAt(k: number): PlannedRun;
  /** The plan.json shape; throws above PLAN_FILE_MAX_RUNS runs or for a lazy plan. */
  toPlanFile(): PlanFile;
}

export interface PlanOptions {
  now?: Date;
  history?: EstimateHistory;
  /** The machine the study will run on, for matching the history (src/history currentMachine). */
  machine?: Machine | null;
  /** Free GPU memory in bytes; null = unknown; undefined = ask gpuFreeMemoryBytes() in src/study/gpu.ts. */
  gpuFreeMemoryBytes?: number | null;
  /** Why it is unknown, shown as the memory-fit reason (with gpuFreeMemoryBytes: null). */
  gpuFreeMemoryReason?: string;
  /**
   * Limits of the visible GPUs for `gpu:` settings (read by the CLI through NVML). Known: a config
   * whose settings fall outside them is skipped with the allowed range. Unknown or undefined: a
   * warning; the settings are checked again before each run.
   */
  gpuLimits?: GpuLimitsInput;
}

/** Whether running this plan needs an explicit confirmation (or `--yes`). */
export function confirmationNeeded(plan: Pick<StudyPlan, 'max_run_count' | 'execution'>): boolean {
  return plan.max_run_count > plan.execution.max_runs_without_confirmation;
}

function mentionsGpuSettings(model: StudyModel): boolean {
  return model.fixed.gpu !== undefined || model.grids.some((g) => g.dims.some((d) => d.path[0] === 'gpu')) || model.explicit.some((e) => e.raw.gpu !== undefined);
}

/** Checks configs' `gpu:` settings against the GPUs' limits, counting those it could not check. */
function gpuLimitsCheck(input: GpuLimitsInput | undefined) {
  const reason = input === undefined ? 'the caller passed no GPU limits' : input.status === 'unknown' ? input.reason : '';
  const check = {
    unchecked: 0,
    reasons(settings: NonNullable<PlannedConfig['config']['gpu']>): string[] {
      if (input?.status !== 'known') {
        check.unchecked++;
        return [];
      }
      return gpuSettingReasons(settings, input.devices);
    },
    warning(lazy: boolean): string {
      const what = lazy ? 'gpu.* settings were not checked against the GPU limits (the plan is lazy)' : `${check.unchecked} config(s) set gpu.* but the GPU limits could not be read (${reason})`;
      return `${what}: they are checked again before each run`;
    },
  };
  return check;
}

/** What a target cannot do on this machine, said before anything runs. */
function targetWarnings(target: CycleTarget, machine: Machine | null): string[] {
  const warnings: string[] = [];
  const energyMetric = /^(energy|power)_/.test(target.metric);
  if (machine?.kind === 'cpu' && energyMetric) {
    warnings.push(
      `execution.target.metric ${target.metric} needs GPU energy, which this machine (no GPU) does not measure: ` +
        `every config would stop "failed" after ${target.min_cycles} cycles; set target.metric to e.g. output_tokens_per_s`,
    );
  }
  return warnings;
}

function listWithLimit(items: string[]): string[] {
  return items.length <= LIST_LIMIT ? items : [...items.slice(0, LIST_LIMIT), `… and ${items.length - LIST_LIMIT} more`];
}

/** Plans a study file: loads, validates, expands, hashes, orders and estimates. Throws StudyInputError (exit 2). */
export async function planStudy(studyPath: string, opts: PlanOptions = {}): Promise<StudyPlan> {
  const now = opts.now ?? new Date();
  const model = buildStudyModel(loadStudy(studyPath), studyPath);
  const exec = model.execution;
  const warnings: string[] = [...model.unusedSections];
  const skipped: SkippedConfig[] = [];
  const byBackend = new Map<string, BackendBreakdown>();
  const breakdown = (b: string) => {
    let e = byBackend.get(b);
    if (!e) byBackend.set(b, (e = { backend: b, configs: 0, skipped: 0 }));
    return e;
  };

  const gpuLimits = gpuLimitsCheck(opts.gpuLimits);
  let expansion: PlanExpansion;
  let configCount: number;
  let hash: string;
  let configAt: (i: number) => PlannedConfig;
  let hashAt: (i: number) => string;

  if (model.totalCount <= FULL_EXPANSION_LIMIT) {
    expansion = 'full';
    const sourceIndex: number[] = [];
    const hashes: string[] = [];
    const kept: PlannedConfig[] | null = model.totalCount <= KEEP_CONFIGS_LIMIT ? [] : null;
    const firstSourceOf = new Map<string, number>();
    const duplicates: string[] = [];
    for (let i = 0; i < model.totalCount; i++) {
      const e = expandConfig(model, i);
      const reasons = e.config.gpu ? [...e.reasons, ...gpuLimits.reasons(e.config.gpu)] : e.reasons;
      if (reasons.length) {
        skipped.push({ label: e.label, config: e.config, reasons });
        breakdown(e.config.backend).skipped++;
        continue;
      }
      const h = configHashOfSorted(e.config);
      const first = firstSourceOf.get(h);
      if (first !== undefined) {
        duplicates.push(`"${e.label}" is identical to "${expandConfig(model, first).label}" (config ${h}); merged into one config`);
        continue;
      }
      firstSourceOf.set(h, i);
      sourceIndex.push(i);
      hashes.push(h);
      kept?.push({
        config_hash: h,
        get label() {
          return e.label;
        },
        config: e.config,
      });
      breakdown(e.config.backend).configs++;
    }
    if (duplicates.length) warnings.push(...listWithLimit(duplicates));
    configCount = hashes.length;
    if (configCount === 0) {
      const lines = skipped.map((s) => `${s.label}: ${s.reasons.join('; ')}`);
      throw new StudyInputError({
        file: model.sourcePath, line: null, col: null, path: '',
        message: `every config is invalid, nothing to run:\n  ${listWithLimit(lines).join('\n  ')}`,
      });
    }
    if (skipped.length * 2 > model.totalCount) {
      warnings.push(`${skipped.length} of ${model.totalCount} configs are skipped as invalid (more than half): check the sweep`);
    }
    hash = studyHash(hashes);
    configAt = (i) => {
      if (kept) {
        const c = kept[i];
        if (!c) throw new RangeError(`config ${i} out of range 0..${configCount - 1}`);
        return c;
      }
      const idx = sourceIndex[i];
      if (idx === undefined) throw new RangeError(`config ${i} out of range 0..${configCount - 1}`);
      const e = expandConfig(model, idx);
      return {
        config_hash: hashes[i]!,
        get label() {
          return e.label;
        },
        config: e.config,
      };
    };
    hashAt = (i) => hashes[i]!;
  } else {
    expansion = 'lazy';
    configCount = model.totalCount;
    for (const g of model.grids) breakdown(g.backend).configs += g.count;
    for (const e of model.explicit) breakdown(e.backend).configs++;
    // Without hashing every config, identify the study by its definition instead (documented).
    hash = sha256Hex16(`lazy:${canonicalJson({ fixed: model.fixed, grids: model.grids.map((g) => ({ b: g.backend, dims: g.dims })), explicit: model.explicit })}`);
    warnings.push(
      `${configCount} configs exceed the ${FULL_EXPANSION_LIMIT} that are checked up front: counts are upper bounds, invalid and duplicate configs are not detected, the estimate is sampled, and the study hash identifies the definition; this plan can be shown but not run`,
    );
    configAt = (i) => {
      if (!Number.isInteger(i) || i < 0 || i >= configCount) throw new RangeError(`config ${i} out of range 0..${configCount - 1}`);
      const e = expandConfig(model, i);
      return {
        config_hash: configHashOfSorted(e.config),
        get label() {
          return e.label;
        },
        config: e.config,
      };
    };
    hashAt = (i) => configAt(i).config_hash;
  }

  if (gpuLimits.unchecked > 0) warnings.push(gpuLimits.warning(false));
  else if (expansion === 'lazy' && mentionsGpuSettings(model)) warnings.push(gpuLimits.warning(true));

  const cycles = exec.n_cycles;
  const runCount = configCount * cycles;
  const cycleSeed = exec.shuffle_seed ?? parseInt(hash.slice(0, 8), 16);
  const runAt = (k: number): PlannedRun => {
    const { configIndex, cycle } = runPosition(k, configCount, cycles, exec.cycle_order, cycleSeed);
    return { index: k, config_hash: hashAt(configIndex), cycle };
  };

  const free = opts.gpuFreeMemoryBytes !== undefined
    ? { bytes: opts.gpuFreeMemoryBytes, reason: opts.gpuFreeMemoryBytes === null ? (opts.gpuFreeMemoryReason ?? 'GPU free memory unknown') : '' }
    : readGpuFreeMemory();
  const estimate = estimatePlan({ config_count: configCount, cycles, execution: exec, configAt }, opts.history, {
    now,
    gpuFreeMemoryBytes: free.bytes,
    gpuFreeMemoryReason: free.reason,
    modelBytes: modelBytesResolver(),
    machine: opts.machine,
  });
  const maxRunCount = configCount * maxCyclesOf(exec);
  if (exec.target) warnings.push(...targetWarnings(exec.target, opts.machine ?? null));
  const wontFit = estimate.per_config.filter((c) => c.memory_fit === 'wont_fit').length;
  if (wontFit) warnings.push(`${wontFit} config(s) will likely not fit in free GPU memory`);
  if (exec.parallel === 'per_gpu') {
    warnings.push(
      'execution.parallel: per_gpu runs one run per visible GPU at once: neighbours heat each other and share ' +
        'PCIe/CPU, so energy can differ from sequential runs (the time estimate assumes one run at a time)',
    );
  }

  const plan: StudyPlan = {
    study_name: model.name,
    study_hash: hash,
    source_path: model.sourcePath,
    config_count: configCount,
    cycles,
    run_count: runCount,
    skipped,
    warnings,
    max_run_count: maxRunCount,
    needs_confirmation: maxRunCount > exec.max_runs_without_confirmation,
    estimate,
    execution: exec,
    cycle_seed: cycleSeed,
    expansion,
    expanded_count: model.totalCount,
    by_backend: [...byBackend.values()],
    created_at: now.toISOString(),
    configAt,
    runAt,
    toPlanFile(): PlanFile {
      if (expansion === 'lazy') {
        throw new StudyInputError({
          file: model.sourcePath, line: null, col: null, path: '',
          message: `expected at most ${FULL_EXPANSION_LIMIT} configs to run a study, got ${configCount}: split the sweep`,
        });
      }
      if (maxRunCount > PLAN_FILE_MAX_RUNS) {
        throw new StudyInputError({
          file: model.sourcePath, line: null, col: null, path: '',
          message: exec.target
            ? `expected at most ${PLAN_FILE_MAX_RUNS} runs to write plan.json, and n_cycles: auto may take ${maxRunCount} (${configCount} configs × max_cycles ${exec.target.max_cycles}): reduce the sweep or execution.target.max_cycles`
            : `expected at most ${PLAN_FILE_MAX_RUNS} runs to write plan.json, got ${runCount}: reduce the sweep or execution.n_cycles`,
        });
      }
      const configs: PlannedConfig[] = [];
      for (let i = 0; i < configCount; i++) configs.push(configAt(i));
      const order: PlannedRun[] = [];
      for (let k = 0; k < runCount; k++) order.push(runAt(k));
      return {
        schema_version: 1,
        study_name: model.name,
        study_hash: hash,
        source_path: model.sourcePath,
        created_at: now.toISOString(),
        execution: exec,
        cycle_seed: cycleSeed,
        configs,
        skipped,
        order,
        warnings,
        estimate,
        ...(model.slo ? { slo: model.slo } : {}),
      };
    },
  };
  return plan;
}
