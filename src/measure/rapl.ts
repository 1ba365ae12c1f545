// CPU package and DRAM energy from Linux powercap (RAPL), reported apart from GPU energy.
// Counters are in µJ and wrap at max_energy_range_uj; the meter reads them at the window edges and
// every `pollMs` in between so that one wrap between reads is always resolved.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface RaplZone {
  /** Directory name, e.g. "intel-rapl:0" or "intel-rapl:0:1". */
  id: string;
  /** The zone's `name`: "package-0", "dram", "core", "uncore", "psys". */
  name: string;
  kind: 'package' | 'dram' | 'other';
  maxEnergyRangeUj: number;
}

export interface RaplWindow {
  window_s: number;
  /** Sum over CPU packages, joules; null with a reason when unknown (never 0 for unknown). */
  cpu_energy_j: number | null;
  /** Sum over DRAM zones; null when the machine has none or they are unreadable. */
  dram_energy_j: number | null;
  unavailable_reason: string | null;
  /** Counter wraparounds resolved during the window. */
  wraps: number;
  per_zone: Array<{ id: string; name: string; energy_j: number }>;
}

export interface RaplMeter {
  readonly zones: RaplZone[];
  readonly unavailableReason: string | null;
  start(): Promise<void>;
  stop(): Promise<RaplWindow>;
  close(): void;
}

export interface OpenRaplOptions {
  /** The powercap directory; default /sys/class/powercap. */
  root?: string;
  /** Reads between the edges so one wrap per interval is resolvable; default 10 s. */
  pollMs?: number;
}

const ZONE_DIR = /^(intel-rapl|amd-rapl):\d+(:\d+)?$/;

async function readNumber(path: string): Promise<number> {
  const text = (await readFile(path, 'utf8')).trim();
  const n = Number(text);
  if (!Number.isFinite(n)) throw new Error(`${path}: not a number ("${text.slice(0, 40)}")`);
  return n;
}

/** Lists the readable zones under root, or says why there are none. */
export async function discoverRaplZones(root = '/sys/class/powercap'): Promise<{ zones: RaplZone[]; reason: string | null }> {
  let entries: string[];
  try {
    entries = (await readdir(root)).filter((e) => ZONE_DIR.test(e)).sort();
  } catch (err) {
    return { zones: [], reason: `no powercap interface (${root}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  if (entries.length === 0) return { zones: [], reason: `no RAPL zones under ${root} (not an Intel/AMD CPU, or the intel_rapl module is not loaded)` };
  const zones: RaplZone[] = [];
  const unreadable: string[] = [];
  for (const id of entries) {
    const dir = join(root, id);
    try {
      const name = (await readFile(join(dir, 'name'), 'utf8')).trim();
      const maxEnergyRangeUj = await readNumber(join(dir, 'max_energy_range_uj'));
      await readNumber(join(dir, 'energy_uj'));
      const kind = name.startsWith('package') ? 'package' : name === 'dram' ? 'dram' : 'other';
      zones.push({ id, name, kind, maxEnergyRangeUj });
    } catch (err) {
      unreadable.push(`${join(dir, 'energy_uj')}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  if (!zones.some((z) => z.kind === 'package')) {
    const hint = unreadable.some((u) => u.includes('EACCES'))
      ? ' (energy_uj is root-only since Linux 5.10; a root can grant read access with `chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj`)'
      : '';
    return { zones: [], reason: `no readable RAPL package zone: ${unreadable.join('; ') || 'none found'}${hint}` };
  }
  return { zones, reason: null };
}

/** Counter increase from a to b given the wrap range (one wrap at most between reads). */
export function raplDeltaUj(a: number, b: number, maxEnergyRangeUj: number): { deltaUj: number; wrapped: boolean } {
  if (b >= a) return { deltaUj: b - a, wrapped: false };
  return { deltaUj: maxEnergyRangeUj - a + b, wrapped: true };
}

class PowercapMeter implements RaplMeter {
  readonly unavailableReason = null;
  private last = new Map<string, number>();
  private accUj = new Map<string, number>();
  private wraps = 0;
  private startedMs: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> = Promise.resolve();

  constructor(
    private readonly root: string,
    readonly zones: RaplZone[],
    private readonly pollMs: number,
  ) {}

  private async readAll(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const z of this.zones) out.set(z.id, await readNumber(join(this.root, z.id, 'energy_uj')));
    return out;
  }

  private async accumulate(): Promise<void> {
    const now = await this.readAll();
    for (const z of this.zones) {
      const { deltaUj, wrapped } = raplDeltaUj(this.last.get(z.id)!, now.get(z.id)!, z.maxEnergyRangeUj);
      if (wrapped) this.wraps++;
      this.accUj.set(z.id, (this.accUj.get(z.id) ?? 0) + deltaUj);
    }
    this.last = now;
  }

  async start(): Promise<void> {
    this.last = await this.readAll();
    this.accUj = new Map(this.zones.map((z) => [z.id, 0]));
    this.wraps = 0;
    this.startedMs = performance.now();
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => {
      this.polling = this.polling.then(() => this.accumulate()).catch(() => {});
    }, this.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<RaplWindow> {
    if (this.startedMs === null) throw new Error('RAPL meter: stop() without start()');
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.polling;
    const windowS = (performance.now() - this.startedMs) / 1000;
    this.startedMs = null;
    try {
      await this.accumulate();
    } catch (err) {
      return { window_s: windowS, cpu_energy_j: null, dram_energy_j: null, unavailable_reason: `RAPL read failed: ${(err as Error).message}`, wraps: this.wraps, per_zone: [] };
    }
    const perZone = this.zones.map((z) => ({ id: z.id, name: z.name, energy_j: (this.accUj.get(z.id) ?? 0) / 1e6 }));
    const sum = (kind: RaplZone['kind']) => {
      const zs = this.zones.filter((z) => z.kind === kind);
      return zs.length ? zs.reduce((s, z) => s + (this.accUj.get(z.id) ?? 0), 0) / 1e6 : null;
    };
    return { window_s: windowS, cpu_energy_j: sum('package'), dram_energy_j: sum('dram'), unavailable_reason: null, wraps: this.wraps, per_zone: perZone };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

function unavailableRapl(reason: string): RaplMeter {
  let startedMs: number | null = null;
  return {
    zones: [],
    unavailableReason: reason,
    async start() {
      startedMs = performance.now();
    },
    async stop() {
      const windowS = startedMs === null ? 0 : (performance.now() - startedMs) / 1000;
      return { window_s: windowS, cpu_energy_j: null, dram_energy_j: null, unavailable_reason: reason, wraps: 0, per_zone: [] };
    },
    close() {},
  };
}

/** A CPU energy meter; never rejects: without readable RAPL it reports null and the reason. */
export async function openRaplMeter(opts: OpenRaplOptions = {}): Promise<RaplMeter> {
  const root = opts.root ?? '/sys/class/powercap';
  const { zones, reason } = await discoverRaplZones(root);
  if (reason !== null) return unavailableRapl(reason);
  // Nested zones (core, uncore, dram under a package) are parts of the package: only top-level
  // packages are summed for cpu_energy_j, dram separately.
  return new PowercapMeter(root, zones, opts.pollMs ?? 10_000);
}
