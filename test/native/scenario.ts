// Child-process entry for loader tests: the addon binds its library once per process, so each
// library situation (missing, symbol absent, addon absent) runs in its own process.
// Usage: node --import tsx test/native/scenario.ts <open|cuda|helpers> ; prints one JSON line.
import { openGpuMeter, gpuFreeMemoryBytes, readGpuTemperatures } from '../../src/measure/index.ts';
import { openNvml, probeCuda } from '../../src/native/index.ts';

const what = process.argv[2];
const out: Record<string, unknown> = {};
if (what === 'open') {
  const opened = openNvml();
  if (opened.status === 'available') {
    out.nvml = { status: 'available', missing: opened.session.info.missing, bound: opened.session.info.bound, supported: opened.session.deviceInfo(0).supported };
    opened.session.close();
  } else {
    out.nvml = opened;
  }
  const meter = await openGpuMeter({ cudaVisibleDevices: process.env.CVD ?? null, intervalMs: 20 });
  await meter.start();
  await new Promise((r) => setTimeout(r, 300));
  const w = await meter.stop();
  meter.close();
  out.meter = { unavailableReason: meter.unavailableReason, devices: meter.devices, window: w };
} else if (what === 'cuda') {
  out.cuda = probeCuda();
} else if (what === 'helpers') {
  out.temps = await readGpuTemperatures(process.env.CVD ?? null);
  out.free = await gpuFreeMemoryBytes(process.env.CVD ?? null);
}
process.stdout.write(JSON.stringify(out) + '\n');
