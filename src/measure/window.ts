// Pure computation of one measurement window from edge readings and sampler columns: counter
// delta (with reset detection), trapezoid over polled power, divergence, power/temperature/memory
// figures, throttle time by reason, and the flags the window raises on its own.
import type { EnergyWindow } from './types.ts';

export const DIVERGENCE_FLAG_THRESHOLD = 0.1;
export const SHORT_WINDOW_S = 5;
export const TEMPERATURE_DRIFT_C = 10;

// NVML clocks-event reason bits.
export const THROTTLE_BITS = {
  thermal: 0x20 | 0x40, // SW thermal slowdown | HW thermal slowdown
  power_cap: 0x4, // SW power cap
  power_brake: 0x80, // HW power brake slowdown
} as const;

/** One device's values at one instant; null = unsupported or failed. */
export interface DevicePoint {
  tNs: bigint;
  energyMj: number | null;
  powerMw: number | null;
  tempC: number | null;
  memUsedBytes: number | null;
  throttleReasons: number | null;
  /** Why energyMj is null when the counter read failed (an error, not NOT_SUPPORTED); edge reads only. */
  energyError?: string | null;
}

export interface DeviceSeries {
  uuid: string;
  start: DevicePoint;
  /** null when the stop read failed (the reason is in `error`). */
  stop: DevicePoint | null;
  /** Sampler points strictly inside the window, in time order. */
  samples: DevicePoint[];
  /** Why this device's energy is unknown (GPU lost …), if it is. */
  error: string | null;
}

export interface WindowInput {
  devices: DeviceSeries[];
  /** Ticks the sampler made during the window (one sample per device each). */
  ticks: number;
  intervalMs: number;
}

/** Sum of consecutive counter increases; a decrease is a reset (the counter restarted near 0). */
export function counterDeltaMj(values: number[]): { deltaMj: number; reset: boolean } {
  let delta = 0;
  let reset = false;
  for (let i = 1; i < values.length; i++) {
    const d = values[i] - values[i - 1];
    if (d >= 0) delta += d;
    else {
      reset = true;
      delta += values[i];
    }
  }
  return { deltaMj: delta, reset };
}

/**
 * Trapezoid of power over [t0, t1] (ns), mW → mJ. Points outside are ignored; the value nearest
 * each edge is held to the edge, so a window is covered end to end. Null with no points.
 */
export function trapezoidMj(points: Array<{ tNs: bigint; powerMw: number }>, t0: bigint, t1: bigint): number | null {
  const inside = points.filter((p) => p.tNs >= t0 && p.tNs <= t1).sort((a, b) => (a.tNs < b.tNs ? -1 : a.tNs > b.tNs ? 1 : 0));
  if (inside.length === 0) return null;
  const pts = [...inside];
  if (pts[0].tNs > t0) pts.unshift({ tNs: t0, powerMw: pts[0].powerMw });
  if (pts[pts.length - 1].tNs < t1) pts.push({ tNs: t1, powerMw: pts[pts.length - 1].powerMw });
  let mj = 0;
  for (let i = 1; i < pts.length; i++) {
    const dtS = Number(pts[i].tNs - pts[i - 1].tNs) / 1e9;
    mj += ((pts[i].powerMw + pts[i - 1].powerMw) / 2) * dtS;
  }
  return mj;
}

const nsToS = (ns: bigint) => Number(ns) / 1e9;

/** Why a device has no counter energy, and whether that is a fallback (the counter was expected). */
function counterMissingWhy(d: DeviceSeries): { text: string; fallback: boolean } {
  if (d.start.energyMj === null) {
    return d.start.energyError
      ? { text: `${d.uuid}: the energy counter failed at the window start (${d.start.energyError})`, fallback: true }
      : { text: `${d.uuid}: the energy counter is not supported`, fallback: false };
  }
  if (d.stop === null) return { text: `${d.uuid}: the stop read failed`, fallback: true };
  return {
    text: `${d.uuid}: the energy counter read at the window start failed at the stop (${d.stop.energyError ?? 'NOT_SUPPORTED: the counter stopped being supported during the window'})`,
    fallback: true,
  };
}

export function computeWindow(input: WindowInput): EnergyWindow {
  const { devices } = input;
  const t0 = devices.reduce((m, d) => (d.start.tNs < m ? d.start.tNs : m), devices[0].start.tNs);
  const t1 = devices.reduce((m, d) => {
    const t = d.stop?.tNs ?? (d.samples.length ? d.samples[d.samples.length - 1].tNs : d.start.tNs);
    return t > m ? t : m;
  }, t0);
  const windowS = nsToS(t1 - t0);
  const flags: EnergyWindow['flags'] = [];

  let counterReset = false;
  const perDevice = devices.map((d) => {
    const points = [d.start, ...d.samples, ...(d.stop ? [d.stop] : [])];
    let counterJ: number | null = null;
    if (d.error === null && d.stop && d.start.energyMj !== null && d.stop.energyMj !== null) {
      const values = points.map((p) => p.energyMj).filter((v): v is number => v !== null);
      const { deltaMj, reset } = counterDeltaMj(values);
      counterReset ||= reset;
      counterJ = deltaMj / 1000;
    }
    const powerPoints = points.filter((p) => p.powerMw !== null).map((p) => ({ tNs: p.tNs, powerMw: p.powerMw as number }));
    const end = d.stop?.tNs ?? t1;
    const polledMj = d.error === null ? trapezoidMj(powerPoints, d.start.tNs, end) : null;
    return { uuid: d.uuid, energy_j: counterJ, energy_polled_j: polledMj === null ? null : polledMj / 1000 };
  });

  const sumOrNull = (xs: Array<number | null>) => (xs.every((x) => x !== null) ? (xs as number[]).reduce((a, b) => a + b, 0) : null);
  const counterTotal = sumOrNull(perDevice.map((p) => p.energy_j));
  const polledTotal = sumOrNull(perDevice.map((p) => p.energy_polled_j));
  const deviceErrors = devices.filter((d) => d.error !== null).map((d) => `${d.uuid}: ${d.error}`);

  let energyJ: number | null = null;
  let method: EnergyWindow['energy_method'] = null;
  let reason: string | null = null;
  let methodReason: string | null = null;
  let fallback: string | null = null;
  if (deviceErrors.length > 0) {
    reason = `energy unknown: ${deviceErrors.join('; ')}`;
  } else if (counterTotal !== null) {
    energyJ = counterTotal;
    method = 'counter';
  } else if (polledTotal !== null) {
    energyJ = polledTotal;
    method = 'polled';
    const why = devices.filter((_, i) => perDevice[i]!.energy_j === null).map(counterMissingWhy);
    methodReason = `energy is the integral of polled power: ${why.map((w) => w.text).join('; ')}`;
    // A counter that worked at the window start (or failed with an error rather than being
    // unsupported) was expected to give the number: the switch to polled power is a fallback.
    if (why.some((w) => w.fallback)) fallback = methodReason;
  } else {
    reason = 'neither the energy counter nor power readings are supported on these GPUs';
  }
  const divergence = counterTotal !== null && polledTotal !== null && counterTotal > 0 ? Math.abs(counterTotal - polledTotal) / counterTotal : null;

  // Per-tick figures across devices: the k-th sample of every device belongs to the same tick.
  const tickCount = Math.min(...devices.map((d) => d.samples.length));
  let powerSum = 0;
  let powerN = 0;
  let powerPeak: number | null = null;
  let memPeak: number | null = null;
  for (let k = 0; k < tickCount; k++) {
    const p = devices.map((d) => d.samples[k].powerMw);
    if (p.every((x) => x !== null)) {
      const w = (p as number[]).reduce((a, b) => a + b, 0) / 1000;
      powerSum += w;
      powerN++;
      powerPeak = powerPeak === null ? w : Math.max(powerPeak, w);
    }
    const m = devices.map((d) => d.samples[k].memUsedBytes);
    if (m.every((x) => x !== null)) {
      const total = (m as number[]).reduce((a, b) => a + b, 0);
      memPeak = memPeak === null ? total : Math.max(memPeak, total);
    }
  }
  // After a GPU loss the samples cover only the part before it: a mean or peak of that part would
  // pass for the window's, so they are unknown like the energy.
  const lost = deviceErrors.length > 0;
  const powerMean = lost ? null : powerN > 0 ? powerSum / powerN : polledTotal !== null && windowS > 0 ? polledTotal / windowS : null;
  if (lost) powerPeak = null;

  const maxOf = (xs: Array<number | null>) => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? Math.max(...v) : null;
  };
  const tempStart = maxOf(devices.map((d) => d.start.tempC));
  const tempEnd = maxOf(devices.map((d) => d.stop?.tempC ?? (d.samples.length ? d.samples[d.samples.length - 1].tempC : null)));
  const tempMax = maxOf(devices.flatMap((d) => [d.start, ...d.samples, ...(d.stop ? [d.stop] : [])].map((p) => p.tempC)));

  // Time with a reason bit set: each point's state holds until the next point; max over devices
  // (the GPUs run in parallel, summing would count the same seconds twice).
  const throttle = (bits: number): number | null => {
    let any = false;
    let worst = 0;
    for (const d of devices) {
      const pts = [d.start, ...d.samples, ...(d.stop ? [d.stop] : [])];
      let s = 0;
      for (let i = 0; i + 1 < pts.length; i++) {
        const r = pts[i].throttleReasons;
        if (r === null) continue;
        any = true;
        if ((r & bits) !== 0) s += nsToS(pts[i + 1].tNs - pts[i].tNs);
      }
      worst = Math.max(worst, s);
    }
    return any ? worst : null;
  };
  const throttleS = { thermal: throttle(THROTTLE_BITS.thermal), power_cap: throttle(THROTTLE_BITS.power_cap), power_brake: throttle(THROTTLE_BITS.power_brake) };
  const fraction = (s: number | null) => (s === null || windowS <= 0 ? null : Math.min(1, s / windowS));
  const throttleFraction = { thermal: fraction(throttleS.thermal), power_cap: fraction(throttleS.power_cap), power_brake: fraction(throttleS.power_brake) };

  if (windowS < SHORT_WINDOW_S) flags.push({ code: 'short_window', message: `window ${windowS.toFixed(2)} s < ${SHORT_WINDOW_S} s: energy readings are coarse` });
  const expected = (windowS * 1000) / input.intervalMs;
  if (input.ticks < Math.max(2, expected * 0.5)) {
    flags.push({ code: 'few_samples', message: `${input.ticks} power samples over ${windowS.toFixed(2)} s (expected about ${Math.round(expected)})` });
  }
  if (divergence !== null && divergence > DIVERGENCE_FLAG_THRESHOLD) {
    flags.push({
      code: 'energy_divergence',
      message: `counter ${counterTotal!.toFixed(1)} J vs polled ${polledTotal!.toFixed(1)} J (${(divergence * 100).toFixed(1)} % apart)`,
    });
  }
  if (throttleS.thermal) flags.push({ code: 'thermal_throttle', message: `thermal throttling for ${throttleS.thermal.toFixed(2)} s` });
  if (throttleS.power_brake) flags.push({ code: 'power_brake', message: `power brake for ${throttleS.power_brake.toFixed(2)} s` });
  if (tempStart !== null && tempEnd !== null && Math.abs(tempEnd - tempStart) > TEMPERATURE_DRIFT_C) {
    flags.push({ code: 'temperature_drift', message: `temperature went from ${tempStart} °C to ${tempEnd} °C during the window` });
  }
  if (fallback !== null) flags.push({ code: 'energy_method_fallback', message: fallback });
  if (counterReset) flags.push({ code: 'counter_reset', message: 'the energy counter went backwards (driver reload or reset) during the window; increases were summed across it' });
  if (energyJ === null) flags.push({ code: 'energy_unavailable', message: reason ?? 'energy unavailable' });

  return {
    window_s: windowS,
    energy_j: energyJ,
    energy_method: method,
    energy_method_reason: methodReason,
    energy_polled_j: polledTotal,
    energy_divergence: divergence,
    unavailable_reason: reason,
    power_mean_w: powerMean,
    power_peak_w: powerPeak,
    temperature_start_c: tempStart,
    temperature_end_c: tempEnd,
    temperature_max_c: tempMax,
    memory_peak_bytes: memPeak,
    throttle_s: throttleS,
    throttle_fraction: throttleFraction,
    samples: input.ticks,
    counter_reset: counterReset,
    flags,
    per_device: perDevice,
    edges: null,
  };
}
