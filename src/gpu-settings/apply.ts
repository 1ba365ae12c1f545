// Apply → verify, and restore, of a run's GPU settings. The parent calls these between runs only
// (never during a window), with NVML through a GpuControl. Synchronous on purpose: every call is a
// few NVML calls and one small atomic write, so restore can run on any exit path (q, Ctrl+C,
// SIGTERM/SIGHUP) without waiting on the event loop.
//
// Per GPU and per setting (power limit, SM clock lock, memory clock lock):
//  - the config sets it      → set it (skipped when already so), then verify what the driver enforces;
//  - the config says default → if llem changed it earlier in the study, put the original back;
//                              otherwise leave it alone (it already is the original).
// gpu-state.json gets the originals BEFORE the first change, and lists what llem changed and has
// not restored; a record with changes keeps its originals however often the study is resumed.
import type { AddonGpuSettings, GpuDeviceRef } from '../native/index.ts';
import { describeGpu, gpuSettingReasons, gpuSettingsSchema, type GpuSettings } from '../study/gpu-settings.ts';
import { GpuSettingsError, settingsErrorFrom, type GpuControl } from './control.ts';
import { limitsOf } from './limits.ts';
import { CLOCK_EVENT_GPU_IDLE, DEFAULT_SM_CLOCK_STEP_MHZ, POWER_TOLERANCE_W, type GpuDeviceSettings } from './record.ts';
import {
  GPU_STATE_FILE,
  isChanged,
  readGpuState,
  thisHost,
  updateGpuState,
  type AppliedSettings,
  type GpuStateDevice,
  type GpuStateNode,
} from './state-file.ts';

export interface GpuSettingsContext {
  /** The study directory that holds gpu-state.json. */
  studyDir: string;
  control: GpuControl;
  /** This node's key in gpu-state.json; default os.hostname(). */
  host?: string;
}

type Step =
  | { kind: 'power'; mw: number; restore: boolean }
  | { kind: 'sm'; range: [number, number] }
  | { kind: 'sm_reset' }
  | { kind: 'mem'; range: [number, number] }
  | { kind: 'mem_reset' };

interface DevicePlan {
  ref: GpuDeviceRef;
  info: AddonGpuSettings;
  /** The record of earlier changes not yet restored, if any. */
  changed: GpuStateDevice | undefined;
  steps: Step[];
}

const sameRange = (a: [number, number] | undefined, b: [number, number] | undefined) => !!a && !!b && a[0] === b[0] && a[1] === b[1];

/** The GPUs of a run, or a GpuSettingsError saying why they cannot be found. */
export function resolveRunGpus(control: GpuControl, cudaVisibleDevices: string | null): GpuDeviceRef[] {
  const resolved = control.resolve(cudaVisibleDevices);
  if (resolved.status === 'unavailable') throw new GpuSettingsError('no_device', `GPU settings: ${resolved.reason}`);
  return resolved.devices;
}

function stepsFor(want: GpuSettings, changed: GpuStateDevice | undefined, info: AddonGpuSettings): Step[] {
  const steps: Step[] = [];
  const applied: AppliedSettings = changed?.applied ?? {};
  if (want.power_limit_w !== undefined) {
    const mw = Math.round(want.power_limit_w * 1000);
    if (info.powerLimitMw !== mw) steps.push({ kind: 'power', mw, restore: false });
  } else if (applied.power_limit_mw !== undefined) {
    const original = changed!.original.power_limit_mw ?? changed!.original.power_limit_default_mw;
    if (original !== null) steps.push({ kind: 'power', mw: original, restore: true });
  }
  if (want.sm_clock_mhz) {
    if (!sameRange(want.sm_clock_mhz, applied.sm_clock_mhz)) steps.push({ kind: 'sm', range: want.sm_clock_mhz });
  } else if (applied.sm_clock_mhz) steps.push({ kind: 'sm_reset' });
  if (want.memory_clock_mhz) {
    if (!sameRange(want.memory_clock_mhz, applied.memory_clock_mhz)) steps.push({ kind: 'mem', range: want.memory_clock_mhz });
  } else if (applied.memory_clock_mhz) steps.push({ kind: 'mem_reset' });
  return steps;
}

function freshRecord(ref: GpuDeviceRef, info: AddonGpuSettings, previous: GpuStateDevice | undefined): GpuStateDevice {
  return {
    uuid: ref.uuid,
    index: ref.index,
    name: ref.name,
    original: {
      power_limit_mw: info.powerLimitMw,
      power_limit_default_mw: info.powerLimitDefaultMw,
      sm_clock_mhz: info.smClockMhz,
      memory_clock_mhz: info.memClockMhz,
      recorded_at: new Date().toISOString(),
    },
    applied: {},
    changed_at: null,
    restored_at: previous?.restored_at ?? null,
  };
}

const isSet = (s: Step) => (s.kind === 'power' ? !s.restore : s.kind === 'sm' || s.kind === 'mem');

/** The record once `steps` have succeeded: sets listed in `applied`, restores removed from it. */
function afterSteps(rec: GpuStateDevice, steps: readonly Step[]): GpuStateDevice {
  const applied: AppliedSettings = { ...rec.applied };
  for (const s of steps) {
    if (s.kind === 'power') {
      if (s.restore) delete applied.power_limit_mw;
      else applied.power_limit_mw = s.mw;
    } else if (s.kind === 'sm') applied.sm_clock_mhz = s.range;
    else if (s.kind === 'sm_reset') delete applied.sm_clock_mhz;
    else if (s.kind === 'mem') applied.memory_clock_mhz = s.range;
    else delete applied.memory_clock_mhz;
  }
  const now = new Date().toISOString();
  const restoredAll = Object.keys(applied).length === 0 && Object.keys(rec.applied).length > 0;
  return { ...rec, applied, changed_at: steps.some(isSet) ? now : rec.changed_at, restored_at: restoredAll ? now : rec.restored_at };
}

function runStep(control: GpuControl, ref: GpuDeviceRef, s: Step): void {
  const gpu = describeGpu(ref);
  try {
    if (s.kind === 'power') control.setPowerLimitMw(ref.index, s.mw);
    else if (s.kind === 'sm') control.setGpuLockedClocks(ref.index, s.range[0], s.range[1]);
    else if (s.kind === 'sm_reset') control.resetGpuLockedClocks(ref.index);
    else if (s.kind === 'mem') control.setMemoryLockedClocks(ref.index, s.range[0], s.range[1]);
    else control.resetMemoryLockedClocks(ref.index);
  } catch (err) {
    const what =
      s.kind === 'power'
        ? `${s.restore ? 'restoring' : 'setting'} the power limit to ${s.mw / 1000} W`
        : s.kind === 'sm'
          ? `locking SM clocks to [${s.range[0]}, ${s.range[1]}] MHz`
          : s.kind === 'mem'
            ? `locking memory clocks to [${s.range[0]}, ${s.range[1]}] MHz`
            : `unlocking ${s.kind === 'sm_reset' ? 'SM' : 'memory'} clocks`;
    throw settingsErrorFrom(err, what, gpu);
  }
}

/**
 * Verifies what the driver now enforces against what was asked: the power limit within 1 W, a
 * locked clock within the driver's step of its range. A GPU idle below its clock lock is noted,
 * not failed (clocks rise to the lock when work arrives; the window's drift check sees the rest).
 */
function verify(control: GpuControl, ref: GpuDeviceRef, want: GpuSettings, targetPowerMw: number | null): { info: AddonGpuSettings; notes: string[]; smStepMhz: number | null } {
  const info = control.read(ref.index);
  const gpu = describeGpu(ref);
  const notes: string[] = [];
  if (targetPowerMw !== null) {
    const set = info.powerLimitMw;
    const enforced = info.enforcedPowerLimitMw ?? set;
    const tol = POWER_TOLERANCE_W * 1000;
    if (set === null || Math.abs(set - targetPowerMw) > tol) {
      throw new GpuSettingsError('mismatch', `${gpu}: the power limit reads ${set === null ? 'nothing' : `${set / 1000} W`} after setting ${targetPowerMw / 1000} W`);
    }
    if (enforced === null || Math.abs(enforced - targetPowerMw) > tol) {
      throw new GpuSettingsError(
        'mismatch',
        `${gpu}: the driver enforces ${enforced === null ? 'an unknown limit' : `${enforced / 1000} W`}, not the ${targetPowerMw / 1000} W set: another limiter (an out-of-band or board limit) holds it; the run would measure under a setting it did not ask for`,
      );
    }
    if (info.enforcedPowerLimitMw === null) notes.push(`${gpu}: enforced power limit not readable (${info.errors.enforcedPowerLimitMw?.code ?? 'unknown'}); the set limit was verified`);
  }
  const limits = limitsOf(ref, info);
  const idle = () => ((control.clockEventReasons(ref.index) ?? 0) & CLOCK_EVENT_GPU_IDLE) !== 0;
  const checkClock = (what: 'SM' | 'memory', range: [number, number] | undefined, mhz: number | null, slack: { below: number; above: number }) => {
    if (!range) return;
    if (mhz === null) {
      notes.push(`${gpu}: ${what} clock not readable: the lock [${range[0]}, ${range[1]}] MHz is not verified`);
      return;
    }
    if (mhz >= range[0] - slack.below && mhz <= range[1] + slack.above) return;
    if (mhz < range[0] && idle()) {
      notes.push(`${gpu}: ${what} clock ${mhz} MHz is below the lock [${range[0]}, ${range[1]}] MHz while the GPU is idle`);
      return;
    }
    throw new GpuSettingsError(
      'mismatch',
      `${gpu}: the ${what} clock is ${mhz} MHz after locking it to [${range[0]}, ${range[1]}] MHz (the driver may round it to ${range[0] - slack.below}–${range[1] + slack.above} MHz)`,
    );
  };
  const smStepMhz = 'step' in limits.sm_clock_mhz ? limits.sm_clock_mhz.step : null;
  const smSlack = smStepMhz ?? DEFAULT_SM_CLOCK_STEP_MHZ;
  checkClock('SM', want.sm_clock_mhz, info.smClockMhz, { below: smSlack, above: smSlack });
  if (want.memory_clock_mhz) {
    const memValues = 'values' in limits.memory_clock_mhz ? limits.memory_clock_mhz.values : [];
    checkClock('memory', want.memory_clock_mhz, info.memClockMhz, memorySlack(want.memory_clock_mhz, memValues));
  }
  return { info, notes, smStepMhz };
}

/**
 * How far a locked memory clock may read outside its range. The driver locks to one of the few
 * memory clocks it lists, so a reading may sit at the listed clock next to either end of the range,
 * no further (the whole spread of the list would accept a lock the driver ignored); 1 MHz for rounding.
 */
function memorySlack(range: [number, number], values: readonly number[]): { below: number; above: number } {
  const under = values.filter((v) => v <= range[0]);
  const over = values.filter((v) => v >= range[1]);
  return {
    below: Math.max(1, under.length ? range[0] - Math.max(...under) : 1),
    above: Math.max(1, over.length ? Math.min(...over) - range[1] : 1),
  };
}

/**
 * Puts the run's GPUs (those CUDA_VISIBLE_DEVICES selects, by UUID) at `settings` and verifies
 * them. Call before spawning the run's child (before its baseline). Throws GpuSettingsError (kind:
 * out_of_range, unsupported, no_permission, mismatch, mig, no_device, state_file) and then the
 * run must fail with that message; what was changed is in gpu-state.json for restore.
 * Returns what each GPU runs under, for the run's record.
 */
export function applyGpuSettings(
  ctx: GpuSettingsContext,
  opts: { cudaVisibleDevices: string | null; settings: GpuSettings | undefined },
): GpuDeviceSettings[] {
  const host = ctx.host ?? thisHost();
  // The effective form only (clocks as [min, max]): what is set here is what gpu-state.json records.
  const want: GpuSettings = opts.settings === undefined ? {} : gpuSettingsSchema.parse(opts.settings);
  const devices = resolveRunGpus(ctx.control, opts.cudaVisibleDevices);
  const recorded = readGpuState(ctx.studyDir)?.nodes[host];

  // Decide everything, and refuse what cannot be done, before the first change.
  const plans: DevicePlan[] = devices.map((ref) => {
    const info = ctx.control.read(ref.index);
    const rec = recorded?.devices[ref.uuid];
    const changed = rec && isChanged(rec) ? rec : undefined;
    const reasons = gpuSettingReasons(want, [limitsOf(ref, info)]);
    if (reasons.length) throw new GpuSettingsError(reasons.some((r) => r.includes('cannot')) ? 'unsupported' : 'out_of_range', reasons.join('; '));
    const steps = stepsFor(want, changed, info);
    if (ref.viaMig && steps.length) {
      throw new GpuSettingsError('mig', `${describeGpu(ref)} is selected through a MIG slice: its power limit and clocks are the whole GPU's, shared with every slice; set gpu.* to default`);
    }
    return { ref, info, changed, steps };
  });

  const changing = plans.filter((p) => p.steps.length > 0);
  if (changing.length) {
    // Originals first (kept while an earlier change is unrestored), with every setting about to be
    // made already listed: a runner killed in the middle leaves what restore needs.
    updateGpuState(ctx.studyDir, host, (node): GpuStateNode => {
      const devicesRec = { ...(node?.devices ?? {}) };
      for (const p of changing) {
        const prev = devicesRec[p.ref.uuid];
        const rec = prev && isChanged(prev) ? prev : freshRecord(p.ref, p.info, prev);
        devicesRec[p.ref.uuid] = afterSteps(rec, p.steps.filter(isSet));
      }
      return { pid: process.pid, updated_at: '', devices: devicesRec };
    });
    for (const p of changing) {
      for (const s of p.steps) runStep(ctx.control, p.ref, s);
    }
    // Every step held: settings put back to their originals leave the list.
    updateGpuState(ctx.studyDir, host, (node): GpuStateNode | undefined => {
      if (!node) return undefined;
      const devicesRec = { ...node.devices };
      for (const p of changing) {
        const rec = devicesRec[p.ref.uuid];
        if (rec) devicesRec[p.ref.uuid] = afterSteps(rec, p.steps);
      }
      return { ...node, devices: devicesRec };
    });
  }

  const after = readGpuState(ctx.studyDir)?.nodes[host];
  return plans.map((p): GpuDeviceSettings => {
    const rec = after?.devices[p.ref.uuid];
    // `default` stands for the value recorded before llem's first change, or, if llem has changed
    // nothing on this GPU, for the value it has now.
    const originalMw = rec && (isChanged(rec) || p.steps.length > 0) ? rec.original.power_limit_mw : p.info.powerLimitMw;
    const powerStep = p.steps.find((s) => s.kind === 'power');
    const targetMw = want.power_limit_w !== undefined ? Math.round(want.power_limit_w * 1000) : powerStep?.kind === 'power' ? powerStep.mw : null;
    const { info, notes, smStepMhz } = verify(ctx.control, p.ref, want, targetMw);
    const enforcedMw = info.enforcedPowerLimitMw ?? info.powerLimitMw;
    return {
      uuid: p.ref.uuid,
      index: p.ref.index,
      name: p.ref.name,
      requested: {
        power_limit_w: want.power_limit_w ?? null,
        sm_clock_mhz: want.sm_clock_mhz ?? null,
        memory_clock_mhz: want.memory_clock_mhz ?? null,
      },
      enforced: { power_limit_w: enforcedMw === null ? null : enforcedMw / 1000, sm_clock_mhz: info.smClockMhz, memory_clock_mhz: info.memClockMhz },
      original_power_limit_w: originalMw === null ? null : originalMw / 1000,
      // the child checks the lock at the window end with this GPU's own step
      ...(want.sm_clock_mhz ? { sm_clock_step_mhz: smStepMhz } : {}),
      notes,
    };
  });
}

export type RestoreStatus = 'nothing_to_do' | 'restored' | 'failed';

export interface DeviceRestore {
  uuid: string;
  name: string;
  /** What was put back, e.g. "power limit 200 W → 700 W", "SM clocks unlocked". */
  restored: string[];
  /** Why (part of) it could not be restored; the record keeps what is left, for a retry. */
  error: string | null;
}

export interface RestoreReport {
  status: RestoreStatus;
  host: string;
  devices: DeviceRestore[];
  /** Other nodes whose records still list changes (a Slurm study): restore runs on each node. */
  otherHosts: string[];
}

/** The GPUs of `host` with changes not restored, and the other nodes that have some (reads only). */
export function changedGpuSettings(studyDir: string, host: string = thisHost()): { changed: GpuStateDevice[]; otherHosts: string[] } {
  const state = readGpuState(studyDir);
  const otherHosts = Object.entries(state?.nodes ?? {})
    .filter(([h, n]) => h !== host && Object.values(n.devices).some(isChanged))
    .map(([h]) => h);
  return { changed: Object.values(state?.nodes[host]?.devices ?? {}).filter(isChanged), otherHosts };
}

/** Every node whose record lists changes llem has not restored, with those GPUs (reads only). */
export function unrestoredGpuSettings(studyDir: string): Array<{ host: string; devices: GpuStateDevice[] }> {
  return Object.entries(readGpuState(studyDir)?.nodes ?? {})
    .map(([host, n]) => ({ host, devices: Object.values(n.devices).filter(isChanged) }))
    .filter((n) => n.devices.length > 0);
}

/** "GPU 0 (H200, GPU-…): power limit 200 W, SM clocks locked to [1410, 1410] MHz": what is still set. */
export function describeApplied(d: GpuStateDevice): string {
  const parts: string[] = [];
  if (d.applied.power_limit_mw !== undefined) parts.push(`power limit ${d.applied.power_limit_mw / 1000} W (was ${(d.original.power_limit_mw ?? 0) / 1000} W)`);
  if (d.applied.sm_clock_mhz) parts.push(`SM clocks locked to [${d.applied.sm_clock_mhz.join(', ')}] MHz`);
  if (d.applied.memory_clock_mhz) parts.push(`memory clocks locked to [${d.applied.memory_clock_mhz.join(', ')}] MHz`);
  return `${describeGpu(d)}: ${parts.join(', ')}${d.restore_error ? `; the last restore failed: ${d.restore_error}` : ''}`;
}

/**
 * What `llem status` and `llem cancel` say of GPU settings still changed, one line per GPU with how
 * to restore it (empty: every GPU is as it was). An unreadable gpu-state.json is one line saying so.
 */
export function unrestoredLines(studyDir: string, here: string = thisHost()): string[] {
  let nodes: ReturnType<typeof unrestoredGpuSettings>;
  try {
    nodes = unrestoredGpuSettings(studyDir);
  } catch (err) {
    return [`GPU settings unknown: ${(err as Error).message}`];
  }
  return nodes.flatMap((n) =>
    n.devices.map((d) => `GPU settings changed on ${n.host}: ${describeApplied(d)}; restore with: llem restore-gpu ${studyDir}${n.host === here ? '' : ` on ${n.host} (or --node ${n.host})`}`),
  );
}

/** A restore report as lines for people: what was put back, what failed, which nodes still hold changes. */
export function restoreReportLines(studyDir: string, r: RestoreReport): string[] {
  const lines: string[] = [];
  if (r.status === 'nothing_to_do') lines.push(`nothing to restore: ${studyDir} lists no GPU setting changed on ${r.host}`);
  for (const d of r.devices) {
    for (const what of d.restored) lines.push(`restored ${d.name} (${d.uuid}): ${what}`);
    if (d.error) lines.push(`FAILED ${d.name} (${d.uuid}): ${d.error}`);
  }
  if (r.status === 'failed') lines.push(`the GPU settings that failed stay listed in ${GPU_STATE_FILE}: run \`llem restore-gpu ${studyDir}\` (as root) to try again`);
  for (const h of r.otherHosts) lines.push(`note: node ${h} still lists changed GPU settings: run \`llem restore-gpu ${studyDir}\` on ${h}`);
  return lines;
}

/**
 * Puts back every setting llem changed on this node's GPUs (or only `uuids`) from gpu-state.json.
 * Idempotent: with nothing changed (or no file) it touches nothing and says so. A GPU that fails
 * does not stop the others; what it still holds stays listed for the next attempt.
 */
export function restoreGpuSettings(ctx: GpuSettingsContext, opts: { uuids?: readonly string[] } = {}): RestoreReport {
  const host = ctx.host ?? thisHost();
  const { changed, otherHosts } = changedGpuSettings(ctx.studyDir, host);
  const todo = changed.filter((d) => !opts.uuids || opts.uuids.includes(d.uuid));
  if (todo.length === 0) return { status: 'nothing_to_do', host, devices: [], otherHosts };

  const reports: DeviceRestore[] = [];
  for (const rec of todo) {
    const report: DeviceRestore = { uuid: rec.uuid, name: rec.name, restored: [], error: null };
    reports.push(report);
    const done: Step[] = [];
    try {
      const ref = ctx.control.find(rec.uuid);
      if (!ref) throw new GpuSettingsError('no_device', `GPU ${rec.uuid} (${rec.name}) is not on ${host}`);
      const gpu = describeGpu(ref);
      if (rec.applied.power_limit_mw !== undefined) {
        const original = rec.original.power_limit_mw ?? rec.original.power_limit_default_mw;
        if (original === null) throw new GpuSettingsError('state_file', `${gpu}: gpu-state.json has no original power limit to restore`);
        const step: Step = { kind: 'power', mw: original, restore: true };
        runStep(ctx.control, ref, step);
        const now = ctx.control.read(ref.index).powerLimitMw;
        if (now === null || Math.abs(now - original) > POWER_TOLERANCE_W * 1000) {
          throw new GpuSettingsError('mismatch', `${gpu}: the power limit reads ${now === null ? 'nothing' : `${now / 1000} W`} after restoring ${original / 1000} W`);
        }
        done.push(step);
        report.restored.push(`power limit ${rec.applied.power_limit_mw / 1000} W → ${original / 1000} W`);
      }
      if (rec.applied.sm_clock_mhz) {
        const step: Step = { kind: 'sm_reset' };
        runStep(ctx.control, ref, step);
        done.push(step);
        report.restored.push(`SM clocks unlocked (were locked to [${rec.applied.sm_clock_mhz.join(', ')}] MHz)`);
      }
      if (rec.applied.memory_clock_mhz) {
        const step: Step = { kind: 'mem_reset' };
        runStep(ctx.control, ref, step);
        done.push(step);
        report.restored.push(`memory clocks unlocked (were locked to [${rec.applied.memory_clock_mhz.join(', ')}] MHz)`);
      }
    } catch (err) {
      report.error = err instanceof GpuSettingsError ? err.message : settingsErrorFrom(err, 'restoring', rec.uuid).message;
    }
    if (done.length || report.error !== null || rec.restore_error) {
      // What is left stays listed, with why, for `llem status` and the next `llem restore-gpu`.
      updateGpuState(ctx.studyDir, host, (n) => {
        const current = n?.devices[rec.uuid];
        if (!n || !current) return undefined;
        return { ...n, devices: { ...n.devices, [rec.uuid]: { ...afterSteps(current, done), restore_error: report.error } } };
      });
    }
  }
  return { status: reports.some((r) => r.error !== null) ? 'failed' : 'restored', host, devices: reports, otherHosts };
}
