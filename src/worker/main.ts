// Entry of the measuring child: `node --import tsx src/worker/main.ts --run-spec <run_dir>/run.json`.
// Connects to the parent, heartbeats, runs the phases (child.ts), and exits 0 only after the
// parent acknowledged result.json. Never process.exit() right after a send: exitCode + close.
import { PROTOCOL_VERSION } from '../runner/protocol.ts';
import { connectToParent, readRunSpec } from '../runner/child-side.ts';
import { openGpuMeter, openRaplMeter } from '../measure/index.ts';
import { loadBackend } from '../backends/load.ts';
import { runChild } from './child.ts';

async function main(): Promise<void> {
  const link = connectToParent();
  let spec;
  try {
    spec = await readRunSpec(process.argv);
  } catch (err) {
    await link
      .send({ v: PROTOCOL_VERSION, type: 'error', error_type: 'PreflightError', message: (err as Error).message, phase: null })
      .catch(() => {});
    process.exitCode = 1;
    link.close();
    return;
  }
  await link.send({ v: PROTOCOL_VERSION, type: 'hello', pid: process.pid, run_id: spec.run_id }).catch(() => {});
  // the parent sets the interval from the stall timeout (src/runner/timing.ts heartbeatMsFor)
  link.startHeartbeat(spec.heartbeat_ms);
  const shutdown = new AbortController();
  link.onMessage((msg) => {
    if (msg.type === 'shutdown') shutdown.abort(msg.reason);
  });
  const outcome = await runChild(spec, {
    link: { send: (m) => link.send(m), reportResult: (p) => link.reportResult(p, 30_000) },
    openMeter: openGpuMeter,
    loadBackend,
    openRapl: () => openRaplMeter(),
    signal: shutdown.signal,
  });
  process.exitCode = outcome.exitCode;
  link.close();
  // A backend may leave native handles (llama.cpp threads) that keep the loop alive: the result is
  // acknowledged and the channel closed, so end on our own after a grace period.
  setTimeout(() => process.exit(), 5000).unref();
}

main().catch((err) => {
  process.stderr.write(`llem worker: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
