// Request arrivals of an open-loop workload (`request_rate` and `arrival` in a study): the arrival
// process as written in YAML, and the seeded schedule the OpenAI-compatible client sends by.
//
// Gamma gaps: shape k = burstiness, mean 1/rate (scale 1/(rate·k)); k = 1 is Poisson (exponential
// gaps), k < 1 is burstier, k > 1 more regular — the convention of vLLM's serving benchmark.
// Sampled with Marsaglia & Tsang (2000), "A simple method for generating gamma variables", ACM
// TOMS 26(3), drawing every uniform from mulberry32 (src/prng.ts) so a seed gives the same schedule
// everywhere. We looked for a library: @stdlib/random-base-gamma accepts an external PRNG but
// brings dozens of micro-packages for these twenty lines; the method is pinned by a statistical
// test (moments and a Kolmogorov–Smirnov check) in test/unit/arrival.test.ts.
import { mulberry32 } from './prng.ts';

export type ArrivalKind = 'poisson' | 'constant' | 'gamma';

export interface ArrivalProcess {
  kind: ArrivalKind;
  /** Gamma shape (1 for poisson; unused for constant). */
  burstiness: number;
}

/** Requests per second, or 'inf': every request scheduled at once (batch_size still caps in-flight). */
export type RequestRate = number | 'inf';

/** What the worker hands the client: the offered rate and how arrivals are spaced. */
export interface WorkloadArrival {
  rate_per_s: RequestRate;
  process: ArrivalProcess;
}

export const DEFAULT_ARRIVAL = 'poisson';
export const ARRIVAL_EXPECTED = 'expected poisson, constant or gamma(<burstiness>) with burstiness > 0, e.g. gamma(0.5)';

const GAMMA = /^gamma\(\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*\)$/i;

/** The process an `arrival:` value names, or null when it names none. */
export function parseArrival(text: string): ArrivalProcess | null {
  const t = text.trim().toLowerCase();
  if (t === 'poisson') return { kind: 'poisson', burstiness: 1 };
  if (t === 'constant') return { kind: 'constant', burstiness: 1 };
  const m = GAMMA.exec(t);
  if (!m) return null;
  const k = Number(m[1]);
  return Number.isFinite(k) && k > 0 ? { kind: 'gamma', burstiness: k } : null;
}

/** The canonical spelling (what the config, its hash and its label carry). */
export function formatArrival(p: ArrivalProcess): string {
  return p.kind === 'gamma' ? `gamma(${p.burstiness})` : p.kind;
}

/** Standard normal from two uniforms (Box–Muller). */
function normal(rand: () => number): number {
  const u = 1 - rand(); // (0, 1]: log is finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** One Gamma(shape, 1) variate (Marsaglia–Tsang; shape < 1 boosted by U^(1/shape)). */
export function sampleGamma(shape: number, rand: () => number): number {
  if (!(shape > 0)) throw new RangeError(`gamma shape must be > 0, got ${shape}`);
  if (shape < 1) return sampleGamma(shape + 1, rand) * Math.pow(1 - rand(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = normal(rand);
    const t = 1 + c * x;
    if (t <= 0) continue;
    const v = t * t * t;
    const u = 1 - rand();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Scheduled send times (ms from the workload start), seeded: the first request at 0. */
export function arrivalOffsetsMs(count: number, arrival: WorkloadArrival, seed: number): number[] {
  if (arrival.rate_per_s === 'inf') return new Array<number>(count).fill(0);
  const meanGapMs = 1000 / arrival.rate_per_s;
  const rand = mulberry32(seed ^ 0xa11);
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) {
    out.push(t);
    const p = arrival.process;
    t += p.kind === 'constant' ? meanGapMs : p.kind === 'poisson' ? -Math.log(1 - rand()) * meanGapMs : (sampleGamma(p.burstiness, rand) / p.burstiness) * meanGapMs;
  }
  return out;
}
