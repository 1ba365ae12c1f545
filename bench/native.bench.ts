// `npm run bench -- native`: addon call cost, the sampler thread's CPU share at 10 and 100 Hz,
// event-loop lag with the sampler running while JS is busy, and energy integration error against
// the fake NVML's trace. Runs on the fake libraries (no GPU needed).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { buildFakeLibs, ensureAddonBuilt, fakeGpuEnv, readFakeLog, traceIntegral, writeFakeScript, type Trace } from '../test/native/fake.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU ns of this process's threads named `name` (from schedstat: precise, unlike utime ticks). */
function threadCpuNs(name: string): number {
  let total = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() !== name) continue;
      total += Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited between readdir and read
    }
  }
  return total;
}

export default async function bench(): Promise<void> {
  await ensureAddonBuilt();
  const libs = await buildFakeLibs();
  const dir = mkdtempSync(join(tmpdir(), 'llem-bench-native-'));
  const power: Trace = [[0, 150_000], [1.5, 420_000], [2.5, 90_000], [3.2, 300_000]];
  const { path } = writeFakeScript(dir, { devices: [{ power, throttle: [[0, 0]] }, { power: [[0, 200_000]] }] });
  const log = join(dir, 'log.txt');
  Object.assign(process.env, fakeGpuEnv(libs, path));
  const native = await import('../src/native/index.ts');
  const measure = await import('../src/measure/index.ts');
  const opened = native.openNvml();
  if (opened.status !== 'available') throw new Error(opened.reason);
  const { session } = opened;
  try {
    // ns per call
    const timeCall = (label: string, n: number, fn: () => unknown) => {
      for (let i = 0; i < Math.min(1000, n); i++) fn();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) fn();
      const ns = Number(process.hrtime.bigint() - t0) / n;
      console.log(`${label.padEnd(46)} ${ns.toFixed(0).padStart(8)} ns/call`);
    };
    timeCall('monotonicNs (bare N-API call)', 200_000, () => session.addon.monotonicNs());
    timeCall('nvmlRead([0]) sync, 9 metrics (fake NVML)', 50_000, () => session.readSync([0]));
    timeCall('nvmlDeviceIdentity(0)', 50_000, () => session.addon.nvmlDeviceIdentity(0));
    {
      const n = 2000;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await session.read([0]);
      console.log(`${'nvmlReadAsync([0]) round trip'.padEnd(46)} ${(Number(process.hrtime.bigint() - t0) / n).toFixed(0).padStart(8)} ns/call`);
    }
    {
      const s = session.sampler([0, 1], 1);
      s.start();
      await sleep(300);
      const t0 = process.hrtime.bigint();
      const batch = s.drain();
      const ns = Number(process.hrtime.bigint() - t0);
      await s.stop();
      console.log(`${`drain() of ${batch.count} samples`.padEnd(46)} ${ns.toFixed(0).padStart(8)} ns (${(ns / Math.max(1, batch.count)).toFixed(0)} ns/sample)`);
    }

    // Sampler CPU share (2 devices, fake NVML: the driver's own cost on real GPUs comes on top).
    for (const hz of [10, 100]) {
      const s = session.sampler([0, 1], 1000 / hz);
      s.start();
      await sleep(100);
      const c0 = threadCpuNs('llem-sampler');
      const w0 = s.workNs;
      const k0 = s.ticks;
      const t0 = process.hrtime.bigint();
      await sleep(3000);
      const cpu = threadCpuNs('llem-sampler') - c0;
      const work = s.workNs - w0;
      const ticks = s.ticks - k0;
      const wall = Number(process.hrtime.bigint() - t0);
      s.drain();
      await s.stop();
      console.log(
        `sampler CPU at ${String(hz).padStart(3)} Hz (2 devices)               ${((cpu / wall) * 100).toFixed(4)} % of one core ` +
          `(${ticks} ticks, ${(cpu / ticks / 1000).toFixed(1)} µs CPU/tick, of which reads ${(work / ticks / 1000).toFixed(1)} µs)`,
      );
    }

    // Event-loop lag: JS busy in 2 ms slices for 3 s, without and with a 100 Hz sampler + drains.
    for (const withSampler of [false, true]) {
      const s = withSampler ? session.sampler([0, 1], 10) : null;
      s?.start();
      const h = monitorEventLoopDelay({ resolution: 1 });
      h.enable();
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        const sliceEnd = performance.now() + 2;
        while (performance.now() < sliceEnd) {
          // busy
        }
        s?.drain();
        await new Promise((r) => setImmediate(r));
      }
      h.disable();
      if (s) await s.stop();
      console.log(
        `event-loop delay, JS busy, ${withSampler ? 'sampler 100 Hz' : 'no sampler    '}   p50 ${(h.percentile(50) / 1e6).toFixed(2)} ms  p99 ${(h.percentile(99) / 1e6).toFixed(2)} ms  max ${(h.max / 1e6).toFixed(2)} ms`,
      );
    }
  } finally {
    session.close();
  }

  // Integration error against the trace (device 0, power steps every ~second).
  for (const intervalMs of [100, 10]) {
    rmSync(log, { force: true });
    const script = writeFakeScript(dir, { devices: [{ power }] }, `int-${intervalMs}.txt`);
    Object.assign(process.env, fakeGpuEnv(libs, script.path, log));
    const meter = await measure.openGpuMeter({ cudaVisibleDevices: null, intervalMs });
    await meter.start();
    await sleep(4000);
    const w = await meter.stop();
    meter.close();
    const reads = readFakeLog(log).filter((l) => l.fn === 'nvmlDeviceGetTotalEnergyConsumption');
    const counts = new Map<number, number>();
    for (const l of reads) counts.set(l.tid, (counts.get(l.tid) ?? 0) + 1);
    const samplerTid = [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
    const edges = reads.filter((l) => l.tid !== samplerTid);
    const trueJ = traceIntegral(power, edges[0].tS, edges[edges.length - 1].tS) / 1000;
    console.log(
      `energy vs trace, ${String(intervalMs).padStart(3)} ms polling, ${w.window_s.toFixed(2)} s, steps: counter ${(w.energy_j! - trueJ).toFixed(4)} J (${(((w.energy_j! - trueJ) / trueJ) * 100).toFixed(4)} %), polled ${(w.energy_polled_j! - trueJ).toFixed(3)} J (${(((w.energy_polled_j! - trueJ) / trueJ) * 100).toFixed(3)} %), ${w.samples} samples`,
    );
  }
  rmSync(dir, { recursive: true, force: true });
}
