// Pure pieces of the meter: counter deltas, the trapezoid, CUDA_VISIBLE_DEVICES parsing, and the
// window computation from hand-made series.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeWindow, counterDeltaMj, trapezoidMj, type DevicePoint } from '../../src/measure/window.ts';
import { parseCudaVisibleDevices } from '../../src/native/index.ts';

test('counterDeltaMj sums increases and treats a decrease as a restart from 0', () => {
  assert.deepEqual(counterDeltaMj([100, 150, 400]), { deltaMj: 300, reset: false });
  assert.deepEqual(counterDeltaMj([1000, 1500, 20, 70]), { deltaMj: 500 + 20 + 50, reset: true });
  assert.deepEqual(counterDeltaMj([5]), { deltaMj: 0, reset: false });
});

test('trapezoidMj integrates between the edges and holds edge values', () => {
  const s = (x: number) => BigInt(Math.round(x * 1e9));
  // 100 mW for 1 s then a ramp to 300 mW over 1 s: 100 + 200 = 300 mJ.
  assert.equal(trapezoidMj([{ tNs: s(0), powerMw: 100 }, { tNs: s(1), powerMw: 100 }, { tNs: s(2), powerMw: 300 }], s(0), s(2)), 300);
  // One point in the middle, held to both edges.
  assert.equal(trapezoidMj([{ tNs: s(1), powerMw: 50 }], s(0), s(4)), 200);
  assert.equal(trapezoidMj([{ tNs: s(9), powerMw: 50 }], s(0), s(4)), null);
});

test('parseCudaVisibleDevices follows the CUDA runtime grammar', () => {
  const table: Array<[string | null, unknown]> = [
    [null, { status: 'all' }],
    ['0,2', [['index', 0], ['index', 2]]],
    ['GPU-8932f937-d72c', [['uuid', 'GPU-8932f937-d72c']]],
    ['8932f937', [['uuid', 'GPU-8932f937']]],
    ['MIG-4f0ba6a5-1f8c-5b4d-9d0f-2b1a3c4d5e6f', [['mig', 'MIG-4f0ba6a5-1f8c-5b4d-9d0f-2b1a3c4d5e6f']]],
    ['MIG-GPU-8932f937-d72c-4106-c12f-20bd9faed9f6/1/0', [['uuid', 'GPU-8932f937-d72c-4106-c12f-20bd9faed9f6']]],
    ['1,x,0', [['index', 1]]],
    ['', []],
    ['-1', []],
  ];
  for (const [input, expected] of table) {
    const parsed = parseCudaVisibleDevices(input);
    if (parsed.status === 'all') {
      assert.deepEqual(parsed, expected, String(input));
      continue;
    }
    const got = parsed.tokens.map((t) => [t.kind, t.kind === 'index' ? t.index : t.uuid]);
    assert.deepEqual(got, expected, `CUDA_VISIBLE_DEVICES=${JSON.stringify(input)}`);
  }
  assert.match(parseCudaVisibleDevices('1,x,0').status === 'list' ? (parseCudaVisibleDevices('1,x,0') as { notes: string[] }).notes[0] : '', /entry 2/);
});

test('computeWindow: two devices, counter primary, flags for short window and temperature drift', () => {
  const p = (tS: number, energyMj: number | null, powerMw: number | null, tempC: number, throttle = 0): DevicePoint => ({
    tNs: BigInt(Math.round(tS * 1e9)),
    energyMj,
    powerMw,
    tempC,
    memUsedBytes: 1000,
    throttleReasons: throttle,
  });
  const w = computeWindow({
    intervalMs: 1000,
    ticks: 1,
    devices: [
      { uuid: 'A', start: p(0, 0, 100_000, 40), samples: [p(1, 100_000, 100_000, 45, 0x80)], stop: p(2, 200_000, 100_000, 52), error: null },
      { uuid: 'B', start: p(0, 10, 50_000, 30), samples: [p(1, 50_010, 50_000, 30)], stop: p(2, 100_010, 50_000, 31), error: null },
    ],
  });
  assert.equal(w.energy_j, 300);
  assert.equal(w.energy_method, 'counter');
  assert.equal(w.energy_polled_j, 300);
  assert.equal(w.energy_divergence, 0);
  assert.equal(w.power_mean_w, 150);
  assert.equal(w.temperature_start_c, 40);
  assert.equal(w.temperature_end_c, 52);
  assert.equal(w.memory_peak_bytes, 2000);
  assert.equal(w.throttle_s.power_brake, 1);
  assert.deepEqual(w.flags.map((f) => f.code).sort(), ['few_samples', 'power_brake', 'short_window', 'temperature_drift']);
});

const pt = (tS: number, energyMj: number | null, powerMw: number | null, extra: Partial<DevicePoint> = {}): DevicePoint => ({
  tNs: BigInt(Math.round(tS * 1e9)),
  energyMj,
  powerMw,
  tempC: 40,
  memUsedBytes: 1000,
  throttleReasons: 0,
  ...extra,
});

test('computeWindow: how the counter went missing decides whether polled energy is a fallback', () => {
  const one = (start: DevicePoint, stop: DevicePoint) =>
    computeWindow({ intervalMs: 100, ticks: 20, devices: [{ uuid: 'A', start, samples: [pt(1, null, 100_000)], stop, error: null }] });
  // Never supported (a pre-Volta GPU): polled is the method, said why, not a fallback.
  const old = one(pt(0, null, 100_000), pt(2, null, 100_000));
  assert.equal(old.energy_method, 'polled');
  assert.equal(old.energy_j, 200);
  assert.match(old.energy_method_reason ?? '', /A: the energy counter is not supported/);
  assert.ok(!old.flags.some((f) => f.code === 'energy_method_fallback'));
  // Read at the start, an error at the stop.
  const err = one(pt(0, 5000, 100_000), pt(2, null, 100_000, { energyError: 'nvmlDeviceGetTotalEnergyConsumption: Unknown Error' }));
  assert.equal(err.energy_method, 'polled');
  assert.match(err.flags.find((f) => f.code === 'energy_method_fallback')?.message ?? '', /failed at the stop \(nvmlDeviceGetTotalEnergyConsumption: Unknown Error\)/);
  // Read at the start, NOT_SUPPORTED at the stop.
  const ns = one(pt(0, 5000, 100_000), pt(2, null, 100_000));
  assert.match(ns.flags.find((f) => f.code === 'energy_method_fallback')?.message ?? '', /NOT_SUPPORTED/);
  // An error already at the start: the counter was expected, so also a fallback.
  const atStart = one(pt(0, null, 100_000, { energyError: 'nvmlDeviceGetTotalEnergyConsumption: Unknown Error' }), pt(2, null, 100_000));
  assert.ok(atStart.flags.some((f) => f.code === 'energy_method_fallback'));
  // The counter at both edges: no reason, no flag.
  const ok = one(pt(0, 5000, 100_000), pt(2, 205_000, 100_000));
  assert.equal(ok.energy_method, 'counter');
  assert.equal(ok.energy_method_reason, null);
});

test('computeWindow: after a GPU loss the power mean and peak are unknown like the energy; throttle fractions', () => {
  const lost = computeWindow({
    intervalMs: 100,
    ticks: 2,
    devices: [{ uuid: 'A', start: pt(0, 0, 300_000), samples: [pt(0.1, 30_000, 300_000), pt(0.2, 60_000, 300_000)], stop: null, error: 'GPU lost during the window (GPU is lost)' }],
  });
  assert.equal(lost.energy_j, null);
  assert.equal(lost.power_mean_w, null);
  assert.equal(lost.power_peak_w, null);
  assert.match(lost.unavailable_reason ?? '', /GPU lost/);
  const throttled = computeWindow({
    intervalMs: 1000,
    ticks: 3,
    devices: [{ uuid: 'A', start: pt(0, 0, 1, { throttleReasons: 0x20 }), samples: [pt(1, 1, 1, { throttleReasons: 0x20 }), pt(3, 3, 1, { throttleReasons: 0x80 })], stop: pt(4, 4, 1), error: null }],
  });
  assert.deepEqual(throttled.throttle_s, { thermal: 3, power_cap: 0, power_brake: 1 });
  assert.deepEqual(throttled.throttle_fraction, { thermal: 0.75, power_cap: 0, power_brake: 0.25 });
});
