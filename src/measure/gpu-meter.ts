// The GPU energy meter: NVML through src/native. Counter read at the window edges (off the JS
// thread), everything else polled by the addon's sampler thread and drained here on demand.
import { writeFile } from 'node:fs/promises';
import {
  openNvmlAsync,
  resolveVisibleDevices,
  type AddonReading,
  type AddonSampleBatch,
  type AddonSampler,
  type GpuDeviceRef,
  type MetricName,
  type NvmlSession,
} from '../native/index.ts';
import type { EnergyWindowRecord, ForeignProcessCheck } from '../results/schema.ts';
import type { GpuSnapshot, GpuEnvironment, EnergyMeter, EnergyWindow, LivePowerSample, OpenMeterOptions } from './types.ts';
import { computeWindow, counterDeltaMj, type DevicePoint, type DeviceSeries } from './window.ts';
import { findOwnDescendants } from '../runner/process-tree.ts';
import { NvmlGpuControl } from '../gpu-settings/control.ts';
import { snapshotGpuSettings, type GpuSettingsSnapshot } from '../gpu-settings/record.ts';

const LIVE_KEEP = 2000;
/** Sampler errors kept word for word in a result (all are counted). */
export const SAMPLER_ERRORS_KEPT = 50;
const ENERGY_FN = 'nvmlDeviceGetTotalEnergyConsumption';

export function unavailableWindow(reason: string, windowS: number): EnergyWindow {
  return {
    window_s: windowS,
    energy_j: null,
    energy_method: null,
    energy_method_reason: null,
    energy_polled_j: null,
    energy_divergence: null,
    unavailable_reason: reason,
    power_mean_w: null,
    power_peak_w: null,
    temperature_start_c: null,
    temperature_end_c: null,
    temperature_max_c: null,
    memory_peak_bytes: null,
    throttle_s: { thermal: null, power_cap: null, power_brake: null },
    throttle_fraction: { thermal: null, power_cap: null, power_brake: null },
    samples: 0,
    counter_reset: false,
    flags: [{ code: 'energy_unavailable', message: reason }],
    per_device: [],
    edges: null,
  };
}

/** A meter that measures nothing and says why (no NVML, no GPU, addon not built …). */
export function unavailableMeter(reason: string): EnergyMeter {
  let startedAtMs: number | null = null;
  return {
    devices: [],
    unavailableReason: reason,
    notes: [],
    async start() {
      startedAtMs = performance.now();
    },
    drainLive: () => [],
    energySoFarJ: () => null,
    async stop() {
      const windowS = startedAtMs === null ? 0 : (performance.now() - startedAtMs) / 1000;
      startedAtMs = null;
      return unavailableWindow(reason, windowS);
    },
    async environment() {
      return { driver_version: null, cuda_driver_version: null, gpus: [] };
    },
    close() {},
  };
}

const pointOf = (r: AddonReading): DevicePoint => ({
  tNs: r.t_ns,
  energyMj: r.energy_mj,
  powerMw: r.power_mw,
  tempC: r.temp_c,
  memUsedBytes: r.mem_used_bytes,
  throttleReasons: r.throttle_reasons,
  // A reading carries its first failure; NOT_SUPPORTED is not a failure (the value is just null).
  energyError: r.energy_mj === null && r.error?.fn === ENERGY_FN ? `${r.error.fn}: ${r.error.message}` : null,
});

const nanToNull = (x: number) => (Number.isNaN(x) ? null : x);

interface Column {
  tNs: bigint[];
  energyMj: Array<number | null>;
  powerMw: Array<number | null>;
  tempC: Array<number | null>;
  smClockMhz: Array<number | null>;
  memClockMhz: Array<number | null>;
  utilGpuPct: Array<number | null>;
  utilMemPct: Array<number | null>;
  memUsedBytes: Array<number | null>;
  throttleReasons: Array<number | null>;
}
const emptyColumn = (): Column => ({
  tNs: [],
  energyMj: [],
  powerMw: [],
  tempC: [],
  smClockMhz: [],
  memClockMhz: [],
  utilGpuPct: [],
  utilMemPct: [],
  memUsedBytes: [],
  throttleReasons: [],
});

class GpuMeter implements EnergyMeter {
  readonly devices: string[];
  readonly unavailableReason = null;
  private sampler: AddonSampler | null = null;
  private startReadings: AddonReading[] | null = null;
  private windowT0Ns = 0n;
  private columns: Column[] = [];
  private ticks = 0;
  private sampleErrors: string[] = [];
  private sampleErrorsTotal = 0;
  private samplesDropped = 0;
  /** The last window's edges, for power.csv. */
  private lastEdges: { start: AddonReading[]; stop: AddonReading[] | null } | null = null;
  /** Live points pulled (by drainLive or energySoFarJ) but not yet handed out by drainLive. */
  private pendingLive: LivePowerSample[] = [];
  private closed = false;

  constructor(
    private readonly session: NvmlSession,
    private readonly refs: GpuDeviceRef[],
    private readonly opts: OpenMeterOptions,
    readonly notes: string[],
  ) {
    this.devices = refs.map((d) => d.uuid);
    this.migWholeGpu = refs.filter((d) => d.viaMig).map((d) => d.uuid);
  }

  readonly migWholeGpu: string[];

  private get indices(): number[] {
    return this.refs.map((d) => d.index);
  }

  async start(): Promise<void> {
    if (this.closed) throw new Error('energy meter is closed');
    if (this.sampler) await this.stopSampler();
    this.columns = this.refs.map(() => emptyColumn());
    this.ticks = 0;
    this.sampleErrors = [];
    this.sampleErrorsTotal = 0;
    this.samplesDropped = 0;
    this.pendingLive = [];
    this.startReadings = await this.session.read(this.indices);
    this.windowT0Ns = this.startReadings[0].t_ns;
    this.sampler = this.session.sampler(this.indices, this.opts.intervalMs);
    this.sampler.start();
  }

  /** Moves what the sampler thread gathered into this window's columns and the live queue. */
  private pull(): void {
    if (!this.sampler) return;
    const batch: AddonSampleBatch = this.sampler.drain();
    const fresh: LivePowerSample[] = [];
    let tick: { tNs: bigint; power: number | null; temp: number | null; seen: number } | null = null;
    let lastDevice = Infinity;
    const flush = () => {
      if (tick && tick.seen === this.refs.length) {
        this.ticks++;
        fresh.push({ t_ms: Number(tick.tNs - this.windowT0Ns) / 1e6, power_w: tick.power === null ? null : tick.power / 1000, temp_c: tick.temp });
      }
    };
    for (let i = 0; i < batch.count; i++) {
      const dev = batch.device[i];
      // A tick is one sample per device, in device order.
      if (dev <= lastDevice) {
        flush();
        tick = { tNs: batch.t_ns[i], power: 0, temp: null, seen: 0 };
      }
      lastDevice = dev;
      const c = this.columns[dev];
      c.tNs.push(batch.t_ns[i]);
      c.energyMj.push(nanToNull(batch.energy_mj[i]));
      c.powerMw.push(nanToNull(batch.power_mw[i]));
      c.tempC.push(nanToNull(batch.temp_c[i]));
      c.smClockMhz.push(nanToNull(batch.sm_clock_mhz[i]));
      c.memClockMhz.push(nanToNull(batch.mem_clock_mhz[i]));
      c.utilGpuPct.push(nanToNull(batch.util_gpu_pct[i]));
      c.utilMemPct.push(nanToNull(batch.util_mem_pct[i]));
      c.memUsedBytes.push(nanToNull(batch.mem_used_bytes[i]));
      c.throttleReasons.push(nanToNull(batch.throttle_reasons[i]));
      if (tick) {
        tick.seen++;
        const p = nanToNull(batch.power_mw[i]);
        tick.power = tick.power === null || p === null ? null : tick.power + p;
        const t = nanToNull(batch.temp_c[i]);
        if (t !== null) tick.temp = tick.temp === null ? t : Math.max(tick.temp, t);
      }
    }
    flush();
    for (const e of batch.errors) {
      this.sampleErrorsTotal++;
      const text = `${this.refs[e.device]?.uuid ?? e.device}: ${e.message}`;
      // GPU loss is looked up by device in stop(): always kept, whatever the cap.
      if (this.sampleErrors.length < SAMPLER_ERRORS_KEPT || e.code === 'NVML_ERROR_GPU_IS_LOST') this.sampleErrors.push(text);
    }
    this.samplesDropped += batch.dropped;
    this.pendingLive.push(...fresh);
    if (this.pendingLive.length > LIVE_KEEP) this.pendingLive.splice(0, this.pendingLive.length - LIVE_KEEP);
  }

  drainLive(): LivePowerSample[] {
    this.pull();
    const out = this.pendingLive;
    this.pendingLive = [];
    return out;
  }

  energySoFarJ(): number | null {
    if (!this.startReadings) return null;
    this.pull();
    let total = 0;
    for (let d = 0; d < this.refs.length; d++) {
      const start = this.startReadings[d].energy_mj;
      const values = this.columns[d].energyMj;
      if (start === null || values.length === 0 || values.some((v) => v === null)) return null;
      total += counterDeltaMj([start, ...(values as number[])]).deltaMj;
    }
    return total / 1000;
  }

  private async stopSampler(): Promise<void> {
    const s = this.sampler;
    if (!s) return;
    await s.stop();
    this.pull();
    this.sampler = null;
  }

  async stop(): Promise<EnergyWindow> {
    if (!this.startReadings || !this.sampler) throw new Error('energy meter: stop() without start()');
    let stopReadings: AddonReading[] | null = null;
    let stopError: string | null = null;
    try {
      stopReadings = await this.session.read(this.indices);
    } catch (err) {
      stopError = (err as Error).message;
    }
    await this.stopSampler();
    const startReadings = this.startReadings;
    this.startReadings = null;

    const series: DeviceSeries[] = this.refs.map((ref, d) => {
      const c = this.columns[d];
      const stop = stopReadings?.[d] ?? null;
      const t1 = stop?.t_ns ?? null;
      const samples: DevicePoint[] = [];
      for (let k = 0; k < c.tNs.length; k++) {
        if (c.tNs[k] <= startReadings[d].t_ns || (t1 !== null && c.tNs[k] >= t1)) continue;
        samples.push({ tNs: c.tNs[k], energyMj: c.energyMj[k], powerMw: c.powerMw[k], tempC: c.tempC[k], memUsedBytes: c.memUsedBytes[k], throttleReasons: c.throttleReasons[k] });
      }
      const errors = [startReadings[d].error, stop?.error].filter((e) => e && e.code === 'NVML_ERROR_GPU_IS_LOST');
      const lostInSampler = this.sampleErrors.find((e) => e.startsWith(`${ref.uuid}:`) && e.includes('GPU_IS_LOST'));
      const error = errors.length > 0 ? `GPU lost during the window (${errors[0]!.message})` : lostInSampler ? `GPU lost during the window (${lostInSampler.slice(ref.uuid.length + 2)})` : stopError;
      // A stop read with a lost GPU has no values; other per-metric failures leave the rest usable.
      const stopPoint = stop && stop.error?.code !== 'NVML_ERROR_GPU_IS_LOST' ? pointOf(stop) : null;
      return { uuid: ref.uuid, start: pointOf(startReadings[d]), stop: stopPoint, samples, error };
    });
    const window = computeWindow({ devices: series, ticks: this.ticks, intervalMs: this.opts.intervalMs });
    this.lastEdges = { start: startReadings, stop: stopReadings };
    const edges = this.edgesRecord(startReadings, stopReadings, series);
    if (this.opts.powerCsvPath) await this.writePowerCsv(this.opts.powerCsvPath);
    return { ...window, edges };
  }

  private edgesRecord(start: AddonReading[], stop: AddonReading[] | null, series: DeviceSeries[]): EnergyWindowRecord {
    const t = (ns: bigint) => Number(ns - this.windowT0Ns) / 1e9;
    const edge = (r: AddonReading) => ({ t_s: t(r.t_ns), energy_mj: r.energy_mj, power_w: r.power_mw === null ? null : r.power_mw / 1000 });
    return {
      start_monotonic_ns: this.windowT0Ns.toString(),
      devices: this.refs.map((ref, d) => ({
        index: ref.index,
        uuid: ref.uuid,
        start: edge(start[d]!),
        stop: series[d]!.stop && stop?.[d] ? edge(stop[d]!) : null,
        error: series[d]!.error,
      })),
      sampler_errors: this.sampleErrors.slice(0, SAMPLER_ERRORS_KEPT),
      sampler_errors_total: this.sampleErrorsTotal,
      samples_dropped: this.samplesDropped,
    };
  }

  /**
   * The window's timeline, one row per (read, device): the start edge read, the sampler's points
   * strictly inside the window, the stop edge read (`row` says which). `energy_counter_mj` is the
   * absolute counter; summing its increases per device (a decrease is a restart from 0) gives
   * energy_j exactly; `energy_j` is the counter since the start read.
   */
  private async writePowerCsv(path: string): Promise<void> {
    const header = 't_s,device_index,device_uuid,power_w,energy_j,temp_c,sm_clock_mhz,mem_clock_mhz,util_gpu_pct,util_mem_pct,mem_used_bytes,throttle_reasons,energy_counter_mj,row';
    const rows: string[] = [header];
    const v = (x: number | null, scale = 1, digits?: number) => (x === null ? '' : digits === undefined ? String(x * scale) : (x * scale).toFixed(digits));
    const edges = this.lastEdges;
    const lost = (r: AddonReading | undefined) => !r || r.error?.code === 'NVML_ERROR_GPU_IS_LOST';
    this.refs.forEach((ref, d) => {
      const c = this.columns[d];
      const start = edges?.start[d];
      const stop = edges?.stop?.[d];
      const e0 = start?.energy_mj ?? c.energyMj.find((x) => x !== null) ?? null;
      const row = (tNs: bigint, m: Record<MetricName, number | null>, kind: string) => {
        const e = m.energy_mj;
        rows.push(
          [
            (Number(tNs - this.windowT0Ns) / 1e9).toFixed(6),
            ref.index,
            ref.uuid,
            v(m.power_mw, 1 / 1000, 3),
            e === null || e0 === null ? '' : ((e - e0) / 1000).toFixed(3),
            v(m.temp_c),
            v(m.sm_clock_mhz),
            v(m.mem_clock_mhz),
            v(m.util_gpu_pct),
            v(m.util_mem_pct),
            v(m.mem_used_bytes),
            m.throttle_reasons === null ? '' : `0x${m.throttle_reasons.toString(16)}`,
            e === null ? '' : String(e),
            kind,
          ].join(','),
        );
      };
      if (start && !lost(start)) row(start.t_ns, start, 'start');
      const t0 = start?.t_ns ?? -1n;
      const t1 = stop && !lost(stop) ? stop.t_ns : null;
      for (let k = 0; k < c.tNs.length; k++) {
        if (c.tNs[k] <= t0 || (t1 !== null && c.tNs[k] >= t1)) continue;
        row(c.tNs[k], {
          energy_mj: c.energyMj[k], power_mw: c.powerMw[k], temp_c: c.tempC[k], sm_clock_mhz: c.smClockMhz[k], mem_clock_mhz: c.memClockMhz[k],
          util_gpu_pct: c.utilGpuPct[k], util_mem_pct: c.utilMemPct[k], mem_used_bytes: c.memUsedBytes[k], throttle_reasons: c.throttleReasons[k],
        }, 'sample');
      }
      if (stop && t1 !== null) row(stop.t_ns, stop, 'stop');
    });
    await writeFile(path, rows.join('\n') + '\n');
  }

  async foreignProcesses(): Promise<ForeignProcessCheck> {
    const ours = ownProcesses();
    const processes: ForeignProcessCheck['processes'] = [];
    let util: number | null = null;
    for (const ref of this.refs) {
      const info = this.session.deviceInfo(ref.index);
      for (const p of info.processes ?? []) {
        if (!ours.has(p.pid)) processes.push({ pid: p.pid, gpu_uuid: ref.uuid, memory_bytes: p.usedMemoryBytes });
      }
      const u = info.reading.util_gpu_pct;
      if (u !== null) util = util === null ? u : Math.max(util, u);
    }
    return { processes, memory_bytes: processes.reduce((sum, p) => sum + (p.memory_bytes ?? 0), 0), gpu_util_pct: util };
  }

  async environment(): Promise<GpuEnvironment> {
    const own = ownProcesses();
    const gpus: GpuSnapshot[] = this.refs.map((ref) => {
      const info = this.session.deviceInfo(ref.index);
      return {
        index: ref.index,
        uuid: ref.uuid,
        name: ref.name,
        pci_bus_id: info.pciBusId,
        memory_total_bytes: info.memoryTotalBytes,
        memory_used_bytes: info.memoryUsedBytes,
        power_limit_w: info.powerLimitMw === null ? null : info.powerLimitMw / 1000,
        power_limit_default_w: info.powerLimitDefaultMw === null ? null : info.powerLimitDefaultMw / 1000,
        persistence_mode: info.persistenceMode,
        mig_mode: info.migMode,
        sm_clock_mhz: info.reading.sm_clock_mhz,
        mem_clock_mhz: info.reading.mem_clock_mhz,
        temperature_c: info.reading.temp_c,
        foreign_processes: (info.processes ?? []).filter((p) => !own.has(p.pid)).map((p) => ({ pid: p.pid, memory_bytes: p.usedMemoryBytes })),
      };
    });
    const cuda = this.session.info.cudaDriverVersion;
    return {
      driver_version: this.session.info.driverVersion,
      cuda_driver_version: cuda === null ? null : `${Math.floor(cuda / 1000)}.${Math.floor((cuda % 1000) / 10)}`,
      gpus,
    };
  }

  gpuSettings(): GpuSettingsSnapshot[] {
    // the session stays the meter's: this control is never closed
    return snapshotGpuSettings(new NvmlGpuControl(this.session), this.refs);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sampler) {
      this.sampler.stopSync();
      this.sampler = null;
    }
    this.session.close();
  }
}

/**
 * A meter over the GPUs that `cudaVisibleDevices` selects (null = all), mapped to NVML by UUID.
 * Never rejects for expected absences: the meter then has `unavailableReason` and its windows
 * have `energy_j: null`. stop() rejects only when called without start().
 */
export async function openGpuMeter(opts: OpenMeterOptions): Promise<EnergyMeter> {
  const opened = await openNvmlAsync();
  if (opened.status === 'unavailable') return unavailableMeter(opened.reason);
  const { session } = opened;
  try {
    const resolved = resolveVisibleDevices(session, opts.cudaVisibleDevices);
    if (resolved.status === 'unavailable') {
      session.close();
      return unavailableMeter(resolved.reason);
    }
    return new GpuMeter(session, resolved.devices, opts, resolved.notes);
  } catch (err) {
    session.close();
    return unavailableMeter(`NVML failed while listing GPUs: ${(err as Error).message}`);
  }
}

/**
 * Which GPU processes are ours: this worker and every process below it (a Python engine, a server,
 * a `command` program). NVML lists every compute process on a device; only the others are
 * "foreign". A pid we cannot place (no /proc, or a PID namespace that hides NVML's host pids) is
 * counted as foreign, which errs towards flagging.
 */
function ownProcesses(): Set<number> {
  return new Set([process.pid, ...findOwnDescendants().map((p) => p.pid)]);
}
