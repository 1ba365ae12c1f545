// The GPU energy meter end to end: real addon, real dlopen, fake libnvidia-ml scripted per test.
// The addon loads the fake once per process; each test writes a new script and log, which the
// fake re-reads when NVML is next initialised (every test closes all it opened).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, fakeUuid, readFakeLog, traceIntegral, writeFakeScript, type FakeScript, type FakeLibs } from './fake.ts';
import type { EnergyMeter } from '../../src/measure/types.ts';

let libs: FakeLibs;
let dir: string;
let n = 0;
let measure: typeof import('../../src/measure/index.ts');
let native: typeof import('../../src/native/index.ts');

before(async () => {
  await ensureAddonBuilt();
  libs = await buildFakeLibs();
  dir = mkdtempSync(join(tmpdir(), 'llem-meter-'));
  Object.assign(process.env, { LLEM_NVML_LIB: libs.nvml, LLEM_CUDA_LIB: libs.cuda });
  measure = await import('../../src/measure/index.ts');
  native = await import('../../src/native/index.ts');
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Points the fake at a new script and log; returns the log path and the epoch. */
function scenario(script: FakeScript): { log: string; epochMs: number } {
  n++;
  const { path, epochMs } = writeFakeScript(dir, script, `script-${n}.txt`);
  const log = join(dir, `log-${n}.txt`);
  Object.assign(process.env, fakeGpuEnv(libs, path, log));
  return { log, epochMs };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withMeter<T>(opts: { cvd?: string | null; intervalMs?: number; csv?: string }, fn: (m: EnergyMeter) => Promise<T>): Promise<T> {
  const m = await measure.openGpuMeter({ cudaVisibleDevices: opts.cvd ?? null, intervalMs: opts.intervalMs ?? 50, powerCsvPath: opts.csv });
  try {
    return await fn(m);
  } finally {
    m.close();
  }
}

test('counter energy equals the trace integral between the two counter reads (within 1 mJ per second)', async () => {
  // Power steps during the window, so a wrong window edge or unit would show.
  const power: Array<[number, number]> = [[0, 120_000], [0.8, 310_000], [1.6, 95_000], [2.2, 450_000]];
  const { log } = scenario({ devices: [{ power, energyOffsetMj: 5_000_000 }] });
  const w = await withMeter({ intervalMs: 50 }, async (m) => {
    await sleep(300);
    await m.start();
    await sleep(2500);
    return m.stop();
  });
  assert.equal(w.energy_method, 'counter');
  const lines = readFakeLog(log).filter((l) => l.fn === 'nvmlDeviceGetTotalEnergyConsumption' && l.device === 0);
  // The sampler thread makes most reads; the two edge reads come from libuv's pool, other threads.
  const counts = new Map<number, number>();
  for (const l of lines) counts.set(l.tid, (counts.get(l.tid) ?? 0) + 1);
  const samplerTid = [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
  assert.ok(lines.every((l) => l.tid !== process.pid), 'no counter read on the JS thread');
  const edges = lines.filter((l) => l.tid !== samplerTid);
  assert.equal(edges.length, 2, 'one counter read at each window edge');
  const [first, last] = edges;
  const expectedJ = traceIntegral(power, first.tS, last.tS) / 1000;
  const windowS = last.tS - first.tS;
  assert.ok(windowS > 2, `window ${windowS}`);
  assert.ok(Math.abs(w.energy_j! - expectedJ) <= 0.001 * windowS, `counter ${w.energy_j} J vs trace ${expectedJ} J`);
  assert.ok(Math.abs(w.window_s - windowS) < 0.05, `window_s ${w.window_s} vs ${windowS}`);
  assert.equal(w.per_device[0].uuid, fakeUuid(0));
  assert.equal(w.counter_reset, false);
});

test('polled energy at 100 ms is within 1 % over a constant-power window of 5 s', async () => {
  scenario({ devices: [{ power: [[0, 250_000]] }] });
  const w = await withMeter({ intervalMs: 100 }, async (m) => {
    await m.start();
    await sleep(5200);
    return m.stop();
  });
  const expectedJ = 250 * w.window_s;
  assert.ok(w.window_s >= 5, `window ${w.window_s}`);
  assert.ok(Math.abs(w.energy_polled_j! - expectedJ) / expectedJ < 0.01, `polled ${w.energy_polled_j} vs ${expectedJ}`);
  assert.ok(w.samples >= 10, `samples ${w.samples}`);
  assert.ok(Math.abs(w.power_mean_w! - 250) < 1e-6);
  assert.equal(w.power_peak_w, 250);
  assert.equal(w.energy_divergence !== null && w.energy_divergence < 0.01, true);
  assert.ok(!w.flags.some((f) => f.code === 'short_window'));
});

test('divergence is flagged when the counter disagrees with polled power', async () => {
  scenario({ devices: [{ power: [[0, 200_000]], energyScale: 1.3 }] });
  const w = await withMeter({}, async (m) => {
    await m.start();
    await sleep(1000);
    return m.stop();
  });
  assert.ok(w.energy_divergence! > 0.2 && w.energy_divergence! < 0.26, `divergence ${w.energy_divergence}`);
  assert.ok(w.flags.some((f) => f.code === 'energy_divergence'));
  assert.equal(w.energy_method, 'counter');
});

test('counter unsupported: energy comes from polled power and the method says so', async () => {
  scenario({ devices: [{ power: [[0, 180_000]], energyUnsupported: true }] });
  const w = await withMeter({}, async (m) => {
    await m.start();
    await sleep(800);
    assert.equal(m.energySoFarJ(), null);
    return m.stop();
  });
  assert.equal(w.energy_method, 'polled');
  assert.equal(w.energy_j, w.energy_polled_j);
  assert.ok(Math.abs(w.energy_j! - 180 * w.window_s) < 0.5, `${w.energy_j} vs ${180 * w.window_s}`);
  assert.equal(w.per_device[0].energy_j, null);
  assert.equal(w.energy_divergence, null);
});

test('CUDA_VISIBLE_DEVICES by index, UUID, UUID prefix and MIG id selects the right fake GPU', async () => {
  const migUuid = 'MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
  scenario({ devices: [{ power: [[0, 100_000]] }, { power: [[0, 200_000]], migUuid }, { power: [[0, 300_000]] }] });
  const cases: Array<[string | null, string[]]> = [
    ['1', [fakeUuid(1)]],
    [fakeUuid(2), [fakeUuid(2)]],
    [`${fakeUuid(2)},0`, [fakeUuid(2), fakeUuid(0)]],
    [fakeUuid(1).slice(0, 14), [fakeUuid(1)]],
    [migUuid, [fakeUuid(1)]],
    [null, [fakeUuid(0), fakeUuid(1), fakeUuid(2)]],
  ];
  for (const [cvd, expected] of cases) {
    await withMeter({ cvd }, async (m) => {
      assert.equal(m.unavailableReason, null, `${cvd}: ${m.unavailableReason}`);
      assert.deepEqual(m.devices, expected, `CUDA_VISIBLE_DEVICES=${cvd}`);
    });
  }
  // Energy follows the selected device's trace, not device 0's.
  const w = await withMeter({ cvd: '1' }, async (m) => {
    await m.start();
    await sleep(600);
    return m.stop();
  });
  // Loose: the window's clock and the fake's clock are read a preemption apart on a loaded machine.
  assert.ok(Math.abs(w.energy_j! / w.window_s - 200) < 20, `${w.energy_j! / w.window_s} W`);
  for (const cvd of ['5', 'GPU-ffffffff', '', '-1']) {
    await withMeter({ cvd }, async (m) => {
      assert.deepEqual(m.devices, []);
      assert.match(m.unavailableReason ?? '', /CUDA_VISIBLE_DEVICES/);
      await m.start();
      const w2 = await m.stop();
      assert.equal(w2.energy_j, null);
      assert.ok(w2.flags.some((f) => f.code === 'energy_unavailable'));
    });
  }
});

/** Sleeps until `s` seconds after the script epoch (scripted events are placed on that clock). */
const untilEpochPlus = (epochMs: number, s: number) => sleep(Math.max(0, epochMs + s * 1000 - Date.now()));

test('a counter reset during the window is detected and flagged', async () => {
  // Events at 2.5 s after the epoch, the window ends at 3.5 s: the window surely spans the event,
  // even when opening the meter is slow on a loaded machine.
  const { epochMs } = scenario({ devices: [{ power: [[0, 100_000]], energyOffsetMj: 9_000_000, counterResetAtS: 2.5 }] });
  const w = await withMeter({ intervalMs: 50 }, async (m) => {
    await m.start();
    await untilEpochPlus(epochMs, 3.5);
    return m.stop();
  });
  assert.equal(w.counter_reset, true);
  assert.ok(w.flags.some((f) => f.code === 'counter_reset'));
  // Increases summed across the reset: still close to 100 W × window, not negative, not 9 kJ off.
  assert.ok(Math.abs(w.energy_j! - 100 * w.window_s) < 20, `${w.energy_j} vs ${100 * w.window_s}`);
});

test('a GPU lost mid-window gives energy null with the reason, never 0', async () => {
  const { epochMs } = scenario({ devices: [{ power: [[0, 100_000]], lostAfterS: 2.5 }] });
  const w = await withMeter({}, async (m) => {
    await m.start();
    await untilEpochPlus(epochMs, 3.5);
    return m.stop();
  });
  assert.equal(w.energy_j, null);
  assert.match(w.unavailable_reason ?? '', /lost/i);
  assert.ok(w.flags.some((f) => f.code === 'energy_unavailable'));
});

test('throttle time by reason, temperatures, live samples and power.csv', async () => {
  const csv = join(dir, 'power.csv');
  const { epochMs } = scenario({
    devices: [{ power: [[0, 100_000]], throttle: [[0, 0], [2.5, 0x40]], temp: [[0, 40], [2.5, 55]] }, { power: [[0, 50_000]] }],
  });
  const { w, live, soFar } = await withMeter({ intervalMs: 25, csv }, async (m) => {
    await m.start();
    await untilEpochPlus(epochMs, 3.2);
    // energySoFarJ pulls samples too: they must still reach the next drainLive.
    const soFar = m.energySoFarJ();
    const live = m.drainLive();
    await sleep(200);
    return { w: await m.stop(), live, soFar };
  });
  assert.ok(live.length >= 3, `live ${live.length}`);
  assert.ok(live.every((s) => s.power_w === 150), JSON.stringify(live.slice(0, 3)));
  assert.ok(live.every((s, i) => i === 0 || s.t_ms >= live[i - 1].t_ms));
  assert.ok(soFar !== null && soFar > 50 && soFar < w.energy_j!, `so far ${soFar}`);
  assert.ok(w.throttle_s.thermal! > 0.3 && w.throttle_s.thermal! < w.window_s, `thermal ${w.throttle_s.thermal}`);
  assert.equal(w.throttle_s.power_brake, 0);
  assert.ok(w.flags.some((f) => f.code === 'thermal_throttle'));
  assert.equal(w.temperature_start_c, 40);
  assert.equal(w.temperature_end_c, 55);
  assert.equal(w.temperature_max_c, 55);
  assert.equal(w.per_device.length, 2);
  const rows = readFileSync(csv, 'utf8').trim().split('\n');
  assert.match(rows[0], /^t_s,device_index,device_uuid,power_w,energy_j,temp_c/);
  assert.ok(rows.length > 2 * live.length, `${rows.length} rows`);
  assert.ok(rows.slice(1).some((r) => r.includes(fakeUuid(1)) && r.split(',')[3] === '50.000'));
});

test('NVML is reference-counted across sessions and meters', async () => {
  scenario({ devices: [{ power: [[0, 100_000]] }] });
  const loaded = native.loadAddon();
  assert.equal(loaded.status, 'available');
  if (loaded.status !== 'available') return;
  const base = loaded.addon.nvmlRefCount();
  const a = native.openNvml();
  const b = native.openNvml();
  assert.equal(a.status, 'available');
  assert.equal(b.status, 'available');
  if (a.status !== 'available' || b.status !== 'available') return;
  assert.equal(loaded.addon.nvmlRefCount(), base + 2);
  a.session.close();
  a.session.close(); // idempotent
  assert.equal(loaded.addon.nvmlRefCount(), base + 1);
  assert.equal(b.session.readSync([0])[0].power_mw, 100_000);
  b.session.close();
  assert.equal(loaded.addon.nvmlRefCount(), base);
  assert.throws(() => loaded.addon.nvmlDeviceInfo(0), (e: Error & { code?: string }) => e.code === 'NOT_OPEN');
});

test('the sampler polls on its own thread: it keeps sampling while the JS thread is blocked', async () => {
  const { log } = scenario({ devices: [{ power: [[0, 100_000]] }] });
  const opened = native.openNvml();
  assert.equal(opened.status, 'available');
  if (opened.status !== 'available') return;
  const sampler = opened.session.sampler([0], 10);
  try {
    sampler.start();
    const t0 = process.hrtime.bigint();
    const blockUntil = Date.now() + 1000;
    while (Date.now() < blockUntil) {
      // busy JS: no event-loop turn for a second
    }
    const t1 = process.hrtime.bigint();
    const batch = sampler.drain();
    const inside = Array.from(batch.t_ns).filter((t) => t > t0 && t < t1).length;
    // 100 Hz for 1 s is ~100 samples; a loaded machine may give far fewer, a JS-thread poller none.
    assert.ok(inside >= 10, `${inside} samples while JS was blocked`);
    assert.equal(batch.errors.length, 0);
  } finally {
    await sampler.stop();
    opened.session.close();
  }
  const tids = new Set(readFakeLog(log).filter((l) => l.fn === 'nvmlDeviceGetPowerUsage').map((l) => l.tid));
  assert.ok(!tids.has(process.pid), 'no power read on the JS thread');
});

test('100 Hz sampling with slow NVML calls does not stall the event loop', async () => {
  // Every power read takes 400 ms. Were those reads on the JS thread, 2 s would allow at most ~5
  // timer turns; on the sampler thread the 10 ms timer chain keeps running (~200 turns idle,
  // still dozens on a loaded machine).
  scenario({ devices: [{ power: [[0, 100_000]] }], slowMs: { nvmlDeviceGetPowerUsage: 400 } });
  await withMeter({ intervalMs: 10 }, async (m) => {
    await m.start();
    let turns = 0;
    const until = Date.now() + 2000;
    while (Date.now() < until) {
      await sleep(10);
      turns++;
      m.drainLive();
    }
    assert.ok(turns >= 15, `${turns} timer turns in 2 s`);
    await m.stop();
  });
});

test('a slow NVML call does not block SIGINT handling', async () => {
  scenario({ devices: [{ power: [[0, 100_000]] }], slowMs: { nvmlDeviceGetTotalEnergyConsumption: 4000 } });
  const opened = native.openNvml();
  assert.equal(opened.status, 'available');
  if (opened.status !== 'available') return;
  try {
    const order: string[] = [];
    const gotSignal = new Promise<void>((resolve) => {
      process.once('SIGINT', () => {
        order.push('sigint');
        resolve();
      });
    });
    const read = opened.session.read([0]).then(() => order.push('read done'));
    await sleep(50);
    process.kill(process.pid, 'SIGINT');
    await gotSignal;
    assert.deepEqual(order, ['sigint'], 'the signal handler ran while the NVML call was still in flight');
    await read;
    assert.deepEqual(order, ['sigint', 'read done']);
  } finally {
    opened.session.close();
  }
});

test('opening the meter runs nvmlInit off the JS thread (a slow init does not block SIGINT)', async () => {
  scenario({ devices: [{ power: [[0, 100_000]] }], slowMs: { nvmlInit_v2: 3000 } });
  const order: string[] = [];
  const gotSignal = new Promise<void>((resolve) => {
    process.once('SIGINT', () => {
      order.push('sigint');
      resolve();
    });
  });
  const opening = measure.openGpuMeter({ cudaVisibleDevices: null, intervalMs: 100 }).then((m) => {
    order.push('opened');
    return m;
  });
  await sleep(50);
  process.kill(process.pid, 'SIGINT');
  await gotSignal;
  const meter = await opening;
  meter.close();
  assert.deepEqual(order, ['sigint', 'opened']);
  assert.equal(meter.unavailableReason, null);
});
