// Gaps between runs, in the parent, never in the child: a config gap, a cycle gap at a true cycle
// boundary, then a cooldown until the GPU is back under a temperature. Each is announced as a
// `gap` event with a countdown, can be cut short (key `c`, quit, abort) and ends with `gap_end`.
import type { ExecutionConfig, PlannedRun } from '../study/types.ts';
import type { GapKind, RunnerEvent } from './events.ts';

/**
 * Whether a true cycle boundary lies between order positions `a` and `b` (a < b): a point after
 * which every run of the earlier cycles is done and none of the later ones has started. Sequential
 * order (A A B B) has none; interleaved and shuffled have one after each full cycle.
 */
export function trueCycleBoundaryBetween(order: PlannedRun[], a: number, b: number): boolean {
  if (b <= a) return false;
  const n = order.length;
  const minAfter = new Array<number>(n + 1).fill(Infinity);
  for (let j = n - 1; j >= 0; j--) minAfter[j] = Math.min(minAfter[j + 1]!, order[j]!.cycle);
  let maxBefore = -Infinity;
  for (let i = 0; i < b && i < n; i++) {
    maxBefore = Math.max(maxBefore, order[i]!.cycle);
    if (i >= a && maxBefore < minAfter[i + 1]!) return true;
  }
  return false;
}

/** The idle time due before run `next` after run `previous` ended: the cycle gap at a true cycle boundary, else the config gap. */
export function gapBetween(order: PlannedRun[], exec: Pick<ExecutionConfig, 'config_gap_seconds' | 'cycle_gap_seconds'>, previous: number, next: number): { kind: GapKind; seconds: number } {
  return trueCycleBoundaryBetween(order, previous, next)
    ? { kind: 'cycle', seconds: exec.cycle_gap_seconds }
    : { kind: 'config', seconds: exec.config_gap_seconds };
}

export interface GapHost {
  /** Tell listeners only (countdown ticks). */
  emit(e: RunnerEvent): void;
  /** Journal, then tell listeners. */
  emitJournaled(e: RunnerEvent): void;
  warn(message: string): void;
  /** The study must stop (quit, abort): a gap is not a run, so it ends at once. */
  stopping(): boolean;
}

export interface GapOptions {
  /** Time unit of gaps (tests shrink it); default 1000 ms per "second". */
  secondMs?: number;
  /** GPU temperatures for cooldown; default NVML through src/native. null = unavailable. */
  readTemperatures?: () => Promise<number[] | null>;
}

async function readGpuTemperaturesFromNvml(): Promise<number[] | null> {
  // loaded on first use: a study without cooldown never opens NVML in the parent
  const { readGpuTemperatures } = await import('../native/index.ts');
  return readGpuTemperatures();
}

/** Runs the gaps of one study; `cut()` ends the one in progress. */
export class Gaps {
  private cutCurrent: (() => void) | null = null;

  constructor(
    private readonly host: GapHost,
    private readonly exec: ExecutionConfig,
    private readonly opts: GapOptions = {},
  ) {}

  private get unitMs(): number {
    return this.opts.secondMs ?? 1000;
  }

  /** Cuts the gap or cooldown in progress short (no-op between gaps). */
  cut(): void {
    this.cutCurrent?.();
  }

  /**
   * The gap due before run `next` (see gapBetween), less `idleSeconds` the GPU has already been
   * idle (a resume after a stop), then the cooldown.
   */
  async before(order: PlannedRun[], previous: number, next: number, idleSeconds = 0): Promise<void> {
    const gap = gapBetween(order, this.exec, previous, next);
    const seconds = Math.max(0, gap.seconds - idleSeconds);
    if (seconds > 0) await this.countdown(gap.kind, seconds);
    if (this.exec.cooldown && !this.host.stopping()) await this.cooldown(this.exec.cooldown.target_temp_c, this.exec.cooldown.max_wait_seconds);
  }

  private async countdown(kind: GapKind, totalSeconds: number): Promise<void> {
    const unitMs = this.unitMs;
    this.host.emitJournaled({ type: 'gap', at: now(), kind, seconds_left: totalSeconds, total_seconds: totalSeconds, temp_c: null });
    const endAt = Date.now() + totalSeconds * unitMs;
    let cut = false;
    while (!cut) {
      const leftMs = endAt - Date.now();
      if (leftMs <= 0) break;
      cut = await this.sleep(Math.min(unitMs, leftMs));
      if (!cut && endAt - Date.now() > 0) {
        this.host.emit({ type: 'gap', at: now(), kind, seconds_left: Math.ceil((endAt - Date.now()) / unitMs), total_seconds: totalSeconds, temp_c: null });
      }
    }
    this.host.emitJournaled({ type: 'gap_end', at: now(), kind, cut_short: cut });
  }

  private async cooldown(targetC: number, maxWaitSeconds: number): Promise<void> {
    const read = this.opts.readTemperatures ?? readGpuTemperaturesFromNvml;
    const unitMs = this.unitMs;
    let temps = await read().catch(() => null);
    if (!temps || temps.length === 0) {
      this.host.warn('cooldown skipped: GPU temperature unavailable (NVML not readable)');
      return;
    }
    const endAt = Date.now() + maxWaitSeconds * unitMs;
    let hottest = Math.max(...temps);
    if (hottest <= targetC) return;
    this.host.emitJournaled({ type: 'gap', at: now(), kind: 'cooldown', seconds_left: maxWaitSeconds, total_seconds: maxWaitSeconds, temp_c: hottest });
    let cut = false;
    while (hottest > targetC && Date.now() < endAt && !cut) {
      cut = await this.sleep(Math.min(unitMs, Math.max(0, endAt - Date.now())));
      temps = await read().catch(() => null);
      if (!temps || temps.length === 0) break;
      hottest = Math.max(...temps);
      this.host.emit({ type: 'gap', at: now(), kind: 'cooldown', seconds_left: Math.max(0, Math.ceil((endAt - Date.now()) / unitMs)), total_seconds: maxWaitSeconds, temp_c: hottest });
    }
    if (!cut && hottest > targetC) this.host.warn(`cooldown gave up after ${maxWaitSeconds} s at ${hottest} °C (target ${targetC} °C)`);
    this.host.emitJournaled({ type: 'gap_end', at: now(), kind: 'cooldown', cut_short: cut });
  }

  /** Sleeps; true when cut short (skip-gap, quit, abort). */
  private sleep(ms: number): Promise<boolean> {
    if (this.host.stopping()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.cutCurrent = null;
        resolve(false);
      }, ms);
      this.cutCurrent = () => {
        clearTimeout(timer);
        this.cutCurrent = null;
        resolve(true);
      };
    });
  }
}

function now(): string {
  return new Date().toISOString();
}
