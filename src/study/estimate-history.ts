// What the run history (src/history) says about one config of a plan: its phase times on this
// machine from the nearest match, with a range that widens the further the match is, and the
// per-cycle spread of a metric (for `n_cycles: auto`). Pure: records and machine are passed in.
import { canonicalJson, sha256Hex16 } from './hash.ts';
import type { HistoryRecord } from '../history/schema.ts';
import { hardwareKey, machineKey, type Machine } from '../history/machine.ts';
import type { ExperimentConfig } from './types.ts';
import { quantileSorted } from '../results/stats.ts';

/** Phase times of one run in seconds. `baseline` is handled apart (reuse across runs). */
export interface PhaseTimes {
  startup: number;
  load: number;
  warmup: number;
  measure: number;
}

export interface HistoryMatch {
  /** 1 = this machine, same config … 5 = this machine, same backend (start-up only). */
  level: 1 | 2 | 3 | 4 | 5;
  /** What matched, for `llem plan` ("same config on this machine, 4 runs"). */
  label: string;
  /** Median phase times predicted for this config (null: not learned at this level, use the heuristic). */
  phases: { [K in keyof PhaseTimes]: number | null };
  /** Range factors around the prediction: wider for farther matches. */
  lowFactor: number;
  highFactor: number;
  /** Seconds a measured baseline took on this machine, and the share of runs that measured one. */
  baseline: { seconds: number; measuredShare: number } | null;
  records: HistoryRecord[];
}

const median = (xs: number[]): number => quantileSorted([...xs].sort((a, b) => a - b), 0.5);

function medianOf(records: HistoryRecord[], pick: (r: HistoryRecord) => number | null): number | null {
  const xs = records.map(pick).filter((v): v is number => v !== null && Number.isFinite(v));
  return xs.length ? median(xs) : null;
}

function paramsHash(config: ExperimentConfig): string {
  return sha256Hex16(canonicalJson(config.params ?? {}));
}

/** Seconds per generated-token slot (prompt × max_new_tokens) of the measure phase of a record. */
function perSlot(r: HistoryRecord, phase: 'measure' | 'warmup'): number | null {
  const s = r.phases_s[phase];
  const prompts = phase === 'measure' ? r.key.n : r.warmup_prompts;
  const slots = prompts * r.key.max_new_tokens;
  return s !== null && slots > 0 ? s / slots : null;
}

export interface HistoryIndex {
  machine: Machine | null;
  byConfig: Map<string, HistoryRecord[]>;
  /** Same config measured on the same hardware with another driver. */
  byConfigHardware: Map<string, HistoryRecord[]>;
  byKnobs: Map<string, HistoryRecord[]>;
  byModel: Map<string, HistoryRecord[]>;
  byBackend: Map<string, HistoryRecord[]>;
  /** Records of this machine (any config): baseline behaviour. */
  thisMachine: HistoryRecord[];
}

const knobsKey = (backend: string, model: string, precision: string, params: string, batch: number) => `${backend}\0${model}\0${precision}\0${params}\0${batch}`;
const modelKey = (backend: string, model: string) => `${backend}\0${model}`;

function push<K>(map: Map<K, HistoryRecord[]>, key: K, r: HistoryRecord): void {
  const list = map.get(key);
  if (list) list.push(r);
  else map.set(key, [r]);
}

/** Indexes the records of this machine (exact identity) and of its hardware (other drivers). */
export function indexHistory(records: ReadonlyArray<HistoryRecord>, machine: Machine | null): HistoryIndex {
  const index: HistoryIndex = { machine, byConfig: new Map(), byConfigHardware: new Map(), byKnobs: new Map(), byModel: new Map(), byBackend: new Map(), thisMachine: [] };
  if (!machine) return index;
  const exact = machineKey(machine);
  const hardware = hardwareKey(machine);
  for (const r of records) {
    if (machineKey(r.machine) === exact) {
      index.thisMachine.push(r);
      push(index.byConfig, r.config_hash, r);
      push(index.byKnobs, knobsKey(r.key.backend, r.key.model, r.key.precision, r.key.params_hash, r.key.batch_size), r);
      push(index.byModel, modelKey(r.key.backend, r.key.model), r);
      push(index.byBackend, r.key.backend, r);
    } else if (hardwareKey(r.machine) === hardware) {
      push(index.byConfigHardware, r.config_hash, r);
    }
  }
  return index;
}

function baselineOf(index: HistoryIndex): HistoryMatch['baseline'] {
  const withBaseline = index.thisMachine.filter((r) => r.key.baseline_seconds > 0 && r.baseline_measured !== null);
  if (withBaseline.length < 3) return null;
  const measured = withBaseline.filter((r) => r.baseline_measured === true);
  const seconds = medianOf(measured, (r) => r.phases_s.baseline);
  return { seconds: seconds ?? 0, measuredShare: measured.length / withBaseline.length };
}

const plural = (n: number) => `${n} run${n === 1 ? '' : 's'}`;

/**
 * The nearest history match of a config, or null. Levels, nearest first:
 *  1 same config, this machine (driver included) · 2 same config, same hardware, other driver ·
 *  3 same backend, model, precision, backend knobs and batch size (other n / max_new_tokens:
 *    token phases scaled by prompt × token slots) · 4 same backend and model (other knobs:
 *    start-up and load learned; token phases scaled by batch size) · 5 same backend: start-up only.
 */
export function historyMatch(index: HistoryIndex, config: ExperimentConfig, configHash: string, warmupPrompts: number): HistoryMatch | null {
  if (!index.machine) return null;
  const slots = config.n * config.max_new_tokens;
  const warmSlots = warmupPrompts * config.max_new_tokens;
  const baseline = baselineOf(index);
  const direct = (records: HistoryRecord[], level: 1 | 2, label: string, low: number, high: number): HistoryMatch => ({
    level,
    label,
    phases: {
      startup: medianOf(records, (r) => r.phases_s.startup),
      load: medianOf(records, (r) => r.phases_s.load),
      warmup: medianOf(records, (r) => r.phases_s.warmup),
      measure: medianOf(records, (r) => r.phases_s.measure),
    },
    // One run says little about the spread; several narrow the range toward what was seen.
    lowFactor: records.length >= 3 ? low : low - 0.05,
    highFactor: records.length >= 3 ? high : high + 0.1,
    baseline,
    records,
  });
  const same = index.byConfig.get(configHash);
  if (same?.length) return direct(same, 1, `same config on this machine (${plural(same.length)})`, 0.85, 1.2);
  const hw = index.byConfigHardware.get(configHash);
  if (hw?.length) return direct(hw, 2, `same config on the same hardware, driver ${hw[hw.length - 1]!.machine.driver ?? '?'} (${plural(hw.length)})`, 0.75, 1.35);

  const scaled = (records: HistoryRecord[], level: 3 | 4, label: string, batchAdjust: (r: HistoryRecord) => number, low: number, high: number): HistoryMatch => ({
    level,
    label,
    phases: {
      startup: medianOf(records, (r) => r.phases_s.startup),
      load: medianOf(records, (r) => r.phases_s.load),
      warmup: warmSlots === 0 ? 0 : medianOf(records, (r) => { const s = perSlot(r, 'warmup') ?? perSlot(r, 'measure'); return s === null ? null : s * batchAdjust(r) * warmSlots; }),
      measure: medianOf(records, (r) => { const s = perSlot(r, 'measure'); return s === null ? null : s * batchAdjust(r) * slots; }),
    },
    lowFactor: low,
    highFactor: high,
    baseline,
    records,
  });
  const knobs = index.byKnobs.get(knobsKey(config.backend, config.model, config.precision, paramsHash(config), config.batch_size));
  if (knobs?.length) return scaled(knobs, 3, `same model and knobs on this machine, other prompt/token counts (${plural(knobs.length)})`, () => 1, 0.7, 1.5);
  const model = index.byModel.get(modelKey(config.backend, config.model));
  if (model?.length) {
    // Aggregate throughput grows about as batch^0.7 (the heuristic's exponent): time per slot shrinks.
    const adjust = (r: HistoryRecord) => Math.pow(r.key.batch_size / config.batch_size, 0.7);
    return scaled(model, 4, `same model with other knobs on this machine (${plural(model.length)})`, adjust, 0.5, 2);
  }
  const backend = index.byBackend.get(config.backend);
  if (backend?.length) {
    return {
      level: 5,
      label: `start-up of ${config.backend} on this machine (${plural(backend.length)}); the rest by heuristic`,
      phases: { startup: medianOf(backend, (r) => r.phases_s.startup), load: null, warmup: null, measure: null },
      lowFactor: 0.5,
      highFactor: 2,
      baseline,
      records: backend,
    };
  }
  return null;
}

/** Per-cycle CV of a metric among matched records (levels 1–3 only: the spread of another
 * model says nothing), with its mean; null below three finite values. */
export function metricSpread(match: HistoryMatch | null, metric: string): { cv: number; mean: number; n: number } | null {
  if (!match || match.level > 3) return null;
  const xs = match.records.map((r) => (r.metrics as Record<string, number | null | undefined>)[metric]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (xs.length < 3) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (mean === 0) return null;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
  return { cv: sd / Math.abs(mean), mean, n: xs.length };
}
