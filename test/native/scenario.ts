// Child-process entry for loader tests: the addon binds its library once per process, so each
// library situation (missing, symbol absent, addon absent) runs in its own process.
// Usage: node --import tsx test/native/scenario.ts <open|cuda|helpers|process-tree|…> ; prints one JSON line.
import { openGpuMeter, gpuFreeMemoryBytes, readGpuTemperatures } from '../../src/measure/index.ts';
import { hasChildProcesses, isChildSubreaper, openNvml, probeCuda, reapAdoptedChild, setChildSubreaper } from '../../src/native/index.ts';

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
} else if (what === 'exit-sampling') {
  // Leaves a sampler running and NVML open: the addon's cleanup hook must stop the thread at exit.
  const opened = openNvml();
  if (opened.status !== 'available') throw new Error(opened.reason);
  opened.session.sampler([0], 5).start();
  await new Promise((r) => setTimeout(r, 100));
  out.exiting = true;
} else if (what === 'worker-thread') {
  // A second addon instance in a worker thread, terminated while its sampler runs.
  const { Worker } = await import('node:worker_threads');
  const { addonPath } = await import('../../src/native/index.ts');
  // Plain JS: the worker loads the .node file itself (a second addon instance, its own state).
  const code = `const { createRequire } = require('node:module');
    const { parentPort } = require('node:worker_threads');
    const addon = createRequire(${JSON.stringify(import.meta.url)})(${JSON.stringify(addonPath())});
    addon.nvmlOpen();
    new addon.Sampler([0], 5).start();
    parentPort.postMessage(addon.nvmlRefCount());`;
  const worker = new Worker(code, { eval: true });
  out.workerRefs = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  const opened = openNvml();
  if (opened.status !== 'available') throw new Error(opened.reason);
  // The terminated worker's references were released by its cleanup hook: only ours is left.
  out.refsAfter = opened.session.addon.nvmlRefCount();
  opened.session.close();
} else if (what === 'helpers') {
  out.temps = await readGpuTemperatures(process.env.CVD ?? null);
  out.free = await gpuFreeMemoryBytes(process.env.CVD ?? null);
} else if (what === 'process-tree') {
  // The subreaper calls are plain syscalls: the test runs this with no NVML or CUDA library.
  const { execSync } = await import('node:child_process');
  const { readProcStat } = await import('../../src/runner/proc.ts');
  const before = { subreaper: isChildSubreaper(), hasChildren: hasChildProcesses() };
  const set = setChildSubreaper(true);
  // double fork: the shell starts a setsid() sleep and exits at once, orphaning it
  const pid = Number(execSync('setsid sleep 0.5 >/dev/null 2>&1 & echo $!').toString());
  const adoptedByUs = readProcStat(pid)?.ppid === process.pid;
  const whileRunning = { hasChildren: hasChildProcesses(), reap: reapAdoptedChild(pid) };
  while (readProcStat(pid)?.state !== 'Z') await new Promise((r) => setTimeout(r, 20));
  const reaped = reapAdoptedChild(pid);
  out.processTree = {
    before, set: set.status, subreaper: isChildSubreaper(), adoptedByUs, whileRunning, reaped,
    goneAfterReap: readProcStat(pid) === null, hasChildrenAfter: hasChildProcesses(), notOurs: reapAdoptedChild(1),
  };
  setChildSubreaper(false);
  out.cleared = isChildSubreaper();
} else if (what === 'process-tree-without-addon') {
  out.subreaper = setChildSubreaper(true);
  out.hasChildren = hasChildProcesses();
}
process.stdout.write(JSON.stringify(out) + '\n');
