// What a run records of its GPU settings (src/gpu-settings/record.ts runGpuSettingsRecord), pure:
// the parent's verified record wins, drift covers the time from the apply to the window end, a GPU
// idle below its clock lock at the window end is not drift, and what could not be checked says so.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLOCK_EVENT_GPU_IDLE, gpuSettingsKey, gpuSettingsLine, runGpuSettingsRecord, type GpuDeviceSettings, type GpuSettingsSnapshot } from '../../src/gpu-settings/record.ts';

const uuid = 'GPU-00000000-1111-2222-3333-000000000000';
const applied: GpuDeviceSettings = {
  uuid,
  index: 0,
  name: 'Fake H100 0',
  requested: { power_limit_w: 300, sm_clock_mhz: [1410, 1410], memory_clock_mhz: null },
  enforced: { power_limit_w: 300, sm_clock_mhz: 1410, memory_clock_mhz: 2619 },
  original_power_limit_w: 700,
  notes: [],
};
const snap = (over: Partial<GpuSettingsSnapshot> = {}): GpuSettingsSnapshot => ({
  uuid,
  index: 0,
  name: 'Fake H100 0',
  powerLimitMw: 300_000,
  enforcedPowerLimitMw: 300_000,
  smClockMhz: 1410,
  memClockMhz: 2619,
  clockEventReasons: 0,
  ...over,
});
const requested = { power_limit_w: 300, sm_clock_mhz: [1410, 1410] as [number, number] };

test('steady settings: the applied record, no drift', () => {
  const r = runGpuSettingsRecord({ applied: [applied], start: [snap()], stop: [snap()], requested, unreadable: null })!;
  assert.deepEqual(r, { devices: [applied], gpu_setting_drift: false, drift_reasons: [] });
});

test('a cap changed between the apply and the window start is drift too', () => {
  const r = runGpuSettingsRecord({ applied: [applied], start: [snap({ powerLimitMw: 250_000, enforcedPowerLimitMw: 250_000 })], stop: [snap({ powerLimitMw: 250_000, enforcedPowerLimitMw: 250_000 })], requested, unreadable: null })!;
  assert.equal(r.gpu_setting_drift, true);
  assert.match(r.drift_reasons[0]!, /enforced power limit 250 W at the window start, not the 300 W verified before the run/);
});

test('a clock below its lock at the window end: drift, unless the GPU is already idle', () => {
  const busy = runGpuSettingsRecord({ applied: [applied], start: [snap()], stop: [snap({ smClockMhz: 900 })], requested, unreadable: null })!;
  assert.match(busy.drift_reasons.join(), /SM clock 900 MHz at the end of the window is outside the lock \[1410, 1410\] MHz/);
  const idle = runGpuSettingsRecord({ applied: [applied], start: [snap()], stop: [snap({ smClockMhz: 900, clockEventReasons: CLOCK_EVENT_GPU_IDLE })], requested, unreadable: null })!;
  assert.equal(idle.gpu_setting_drift, false);
});

test('no applied record (the study sets no gpu.*): the values in force, every request default; nothing readable: not recorded', () => {
  const r = runGpuSettingsRecord({ applied: null, start: [snap({ powerLimitMw: 700_000, enforcedPowerLimitMw: 700_000 })], stop: [snap({ powerLimitMw: 700_000, enforcedPowerLimitMw: 700_000 })], requested: undefined, unreadable: null })!;
  assert.deepEqual(r.devices[0]!.requested, { power_limit_w: null, sm_clock_mhz: null, memory_clock_mhz: null });
  assert.equal(r.devices[0]!.enforced.power_limit_w, 700);
  assert.equal(r.devices[0]!.original_power_limit_w, 700);
  assert.equal(runGpuSettingsRecord({ applied: null, start: null, stop: null, requested: undefined, unreadable: 'no NVML' }), null);
  const unchecked = runGpuSettingsRecord({ applied: [applied], start: null, stop: null, requested, unreadable: 'no NVML' })!;
  assert.equal(unchecked.gpu_setting_drift, false);
  assert.deepEqual(unchecked.devices[0]!.notes, ['drift not checked: no NVML']);
  assert.deepEqual(applied.notes, [], 'the parent record is not changed in place');
});

test('the live panel line', () => {
  assert.equal(gpuSettingsLine([applied]), 'GPU 0 cap 300 W (requested 300 W) · SM 1410 MHz (locked 1410–1410) · mem 2619 MHz');
  assert.equal(gpuSettingsLine([{ ...applied, requested: { power_limit_w: null, sm_clock_mhz: null, memory_clock_mhz: null }, enforced: { ...applied.enforced, power_limit_w: 700 } }]), 'GPU 0 cap 700 W (default) · SM 1410 MHz · mem 2619 MHz');
});

test('the settings key of stored baselines: empty when every setting is default', () => {
  assert.equal(gpuSettingsKey(null), '');
  assert.equal(gpuSettingsKey([{ ...applied, requested: { power_limit_w: null, sm_clock_mhz: null, memory_clock_mhz: null } }]), '');
  assert.equal(gpuSettingsKey([applied]), '-gpu-pl300-sm1410-1410');
});

test('a memory lock between two supported clocks: the clock the parent verified is no drift; another one is', () => {
  // the driver rounds a 2000 MHz lock to its 2619 MHz clock; the parent verified 2619
  const memApplied: GpuDeviceSettings = { ...applied, requested: { ...applied.requested, memory_clock_mhz: [2000, 2000] }, enforced: { ...applied.enforced, memory_clock_mhz: 2619 } };
  const memRequested = { ...requested, memory_clock_mhz: [2000, 2000] as [number, number] };
  const held = runGpuSettingsRecord({ applied: [memApplied], start: [snap()], stop: [snap()], requested: memRequested, unreadable: null })!;
  assert.equal(held.gpu_setting_drift, false, held.drift_reasons.join());
  const moved = runGpuSettingsRecord({ applied: [memApplied], start: [snap()], stop: [snap({ memClockMhz: 1593 })], requested: memRequested, unreadable: null })!;
  assert.match(moved.drift_reasons.join(), /memory clock 1593 MHz at the end of the window is outside the lock \[2000, 2000\] MHz/);
});
