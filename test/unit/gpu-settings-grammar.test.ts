// The `gpu:` keys of a study (issue 15): grammar, hashing, plan-time checks against GPU limits
// passed in as data, and the pure checks the GPU-settings module shares with the planner.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { planStudy, type PlanOptions, type StudyPlan } from '../../src/study/plan.ts';
import { canonicalJson, configHash } from '../../src/study/hash.ts';
import { clockStepMhz, gpuSettingReasons, gpuSettingsUsed, type GpuDeviceLimits } from '../../src/study/gpu-settings.ts';
import { settingDrift, type GpuDeviceSettings, type GpuSettingsSnapshot } from '../../src/gpu-settings/record.ts';
import type { PlannedConfig } from '../../src/study/types.ts';
import { withStudy, inputError } from './study-helpers.ts';

const HEAD = 'backend: llamacpp\nmodel: builtin:tiny-random\n';

const H100: GpuDeviceLimits = {
  index: 0,
  uuid: 'GPU-0',
  name: 'Fake H100',
  power_limit_w: { min: 200, max: 700 },
  sm_clock_mhz: { min: 345, max: 1980, step: 15 },
  memory_clock_mhz: { min: 2619, max: 2619, values: [2619] },
};

function configs(plan: StudyPlan): PlannedConfig[] {
  return Array.from({ length: plan.config_count }, (_, i) => plan.configAt(i));
}

function planOf(yaml: string, opts: PlanOptions = {}): Promise<StudyPlan> {
  return withStudy({ 'study.yaml': yaml }, (dir) => planStudy(join(dir, 'study.yaml'), { gpuFreeMemoryBytes: null, ...opts }));
}

describe('gpu: grammar', () => {
  it('sweeps gpu.power_limit_w with default, and multiplies every backend grid', async () => {
    const plan = await planOf(`backend: [llamacpp, llama-server]\nmodel: builtin:tiny-random\nsweep:\n  gpu.power_limit_w: [200, 300, 400, default]\n`, {
      gpuLimits: { status: 'known', devices: [H100] },
    });
    const cs = configs(plan);
    assert.equal(cs.length, 8);
    assert.deepEqual(cs.filter((c) => c.config.backend === 'llamacpp').map((c) => c.config.gpu?.power_limit_w ?? 'default'), [200, 300, 400, 'default']);
    assert.ok(cs.some((c) => c.label.includes('power_w=200')));
    assert.deepEqual(plan.skipped, []);
    assert.deepEqual(plan.warnings, []);
  });

  it('a different cap is a different config_hash; default hashes as a study without gpu:', async () => {
    const [a, b, d] = configs(await planOf(`${HEAD}sweep:\n  gpu.power_limit_w: [200, 300, default]\n`));
    const plain = configs(await planOf(HEAD))[0]!;
    assert.notEqual(a!.config_hash, b!.config_hash);
    assert.equal(d!.config_hash, plain.config_hash);
    // no `gpu` key at all when every setting is default: every existing hash stays what it was
    assert.equal('gpu' in plain.config, false);
    assert.equal('gpu' in d!.config, false);
    assert.equal(plain.config_hash, configHash(plain.config));
    assert.equal(a!.config_hash, configHash(a!.config), 'grammar hash = canonical hash with gpu set');
    assert.match(canonicalJson(a!.config), /"energy":\{[^}]*\},"gpu":\{"power_limit_w":200\},"max_new_tokens"/);
  });

  it('clocks: a single value locks min = max, written either way hashes the same; default drops the key', async () => {
    const single = configs(await planOf(`${HEAD}gpu:\n  sm_clock_mhz: 1410\n  memory_clock_mhz: default\n`))[0]!;
    const range = configs(await planOf(`${HEAD}gpu:\n  sm_clock_mhz: [1410, 1410]\n`))[0]!;
    assert.deepEqual(single.config.gpu, { sm_clock_mhz: [1410, 1410] });
    assert.equal(single.config_hash, range.config_hash);
    const all = configs(await planOf(`${HEAD}gpu:\n  power_limit_w: default\n  sm_clock_mhz: default\n  memory_clock_mhz: default\n`))[0]!;
    assert.equal(all.config_hash, configs(await planOf(HEAD))[0]!.config_hash);
  });

  it('a swept key keeps its gpu: siblings (deep merge)', async () => {
    const cs = configs(await planOf(`${HEAD}gpu:\n  sm_clock_mhz: [1200, 1410]\nsweep:\n  gpu.power_limit_w: [250, 350]\n`));
    assert.deepEqual(cs.map((c) => c.config.gpu), [
      { power_limit_w: 250, sm_clock_mhz: [1200, 1410] },
      { power_limit_w: 350, sm_clock_mhz: [1200, 1410] },
    ]);
  });

  const bad: Array<{ name: string; yaml: string; expect: RegExp }> = [
    { name: 'negative cap', yaml: `${HEAD}gpu:\n  power_limit_w: -5\n`, expect: /study\.yaml:4:18: gpu\.power_limit_w: expected a power limit in watts \(a number > 0\) or "default", got -5/ },
    { name: 'quoted cap', yaml: `${HEAD}gpu:\n  power_limit_w: "300"\n`, expect: /gpu\.power_limit_w: expected a power limit in watts .*got "300"/ },
    { name: 'reversed clock range', yaml: `${HEAD}gpu:\n  sm_clock_mhz: [1500, 1400]\n`, expect: /study\.yaml:4:17: gpu\.sm_clock_mhz: expected \[min, max\] with min <= max, got \[1500, 1400\]/ },
    { name: 'fractional clock', yaml: `${HEAD}gpu:\n  memory_clock_mhz: 2619.5\n`, expect: /gpu\.memory_clock_mhz: expected a clock in whole MHz, a locked range \[min, max\] in MHz, or "default", got 2619\.5/ },
    { name: 'unknown gpu key', yaml: `${HEAD}gpu:\n  power_limt_w: 300\n`, expect: /study\.yaml:4:3: gpu\.power_limt_w: unknown field "power_limt_w" \(did you mean "power_limit_w"\?\)/ },
    { name: 'bad swept value', yaml: `${HEAD}sweep:\n  gpu.power_limit_w: [300, max]\n`, expect: /study\.yaml:4:28: sweep\.gpu\.power_limit_w\[1\]: gpu\.power_limit_w: expected a power limit in watts .*got "max"/ },
    { name: 'unknown swept gpu key', yaml: `${HEAD}sweep:\n  gpu.power_cap_w: [300]\n`, expect: /sweep\.gpu\.power_cap_w: .*unknown field "power_cap_w"/ },
  ];
  for (const row of bad) {
    it(`bad input: ${row.name} names file:line:col and the field (exit 2)`, async () => {
      const err = await inputError(planOf(row.yaml));
      assert.match(err.message, row.expect);
    });
  }
});

describe('gpu: settings checked at plan time against the GPU limits', () => {
  it('an out-of-range cap is a skipped config with the reason and the allowed range', async () => {
    const plan = await planOf(`${HEAD}sweep:\n  gpu.power_limit_w: [150, 300, 800, default]\n`, { gpuLimits: { status: 'known', devices: [H100] } });
    assert.equal(plan.config_count, 2);
    assert.deepEqual(plan.skipped.map((s) => s.label), ['llamacpp power_w=150', 'llamacpp power_w=800']);
    assert.match(plan.skipped[0]!.reasons[0]!, /gpu\.power_limit_w 150 W is outside what GPU 0 \(Fake H100, GPU-0\) allows: 200–700 W/);
    assert.match(plan.skipped[1]!.reasons[0]!, /800 W .*200–700 W/);
  });

  it('clocks outside the supported ones are skipped with the supported range', async () => {
    const plan = await planOf(`${HEAD}sweep:\n  gpu.sm_clock_mhz: [[300, 1410], 1410]\n  gpu.memory_clock_mhz: [2619, 1593]\n`, {
      gpuLimits: { status: 'known', devices: [H100] },
    });
    assert.equal(plan.config_count, 1);
    assert.deepEqual(plan.configAt(0).config.gpu, { memory_clock_mhz: [2619, 2619], sm_clock_mhz: [1410, 1410] });
    const reasons = plan.skipped.flatMap((s) => s.reasons).join('\n');
    assert.match(reasons, /gpu\.sm_clock_mhz \[300, 1410\] MHz is outside what GPU 0 .* supports: 345–1980 MHz in steps of 15 MHz/);
    assert.match(reasons, /gpu\.memory_clock_mhz 1593 MHz is outside what GPU 0 .* supports: 2619 MHz/);
  });

  it('a setting one of the GPUs cannot change makes the config invalid there (all invalid: exit 2 with every reason)', async () => {
    const noClocks: GpuDeviceLimits = { ...H100, index: 1, uuid: 'GPU-1', sm_clock_mhz: { unsupported: 'nvmlDeviceGetSupportedMemoryClocks failed: Not Supported (NVML_ERROR_NOT_SUPPORTED)' } };
    const err = await inputError(planOf(`${HEAD}gpu:\n  sm_clock_mhz: 1410\n`, { gpuLimits: { status: 'known', devices: [H100, noClocks] } }));
    assert.match(err.message, /every config is invalid/);
    assert.match(err.message, /gpu\.sm_clock_mhz: GPU 1 \(Fake H100, GPU-1\) cannot lock SM clocks \(.*NVML_ERROR_NOT_SUPPORTED\)/);
  });

  it('limits unknown (no NVML here): nothing skipped, one warning that they are checked again before each run', async () => {
    const plan = await planOf(`${HEAD}sweep:\n  gpu.power_limit_w: [150, 300, default]\n`, { gpuLimits: { status: 'unknown', reason: 'could not load the NVIDIA management library' } });
    assert.equal(plan.config_count, 3);
    assert.deepEqual(plan.skipped, []);
    assert.equal(plan.warnings.length, 1);
    assert.match(plan.warnings[0]!, /2 config\(s\) set gpu\.\* but the GPU limits could not be read \(could not load the NVIDIA management library\): they are checked again before each run/);
  });

  it('a study without gpu settings neither warns nor needs the limits', async () => {
    const plan = await planOf(HEAD, { gpuLimits: { status: 'unknown', reason: 'no NVML' } });
    assert.deepEqual(plan.warnings, []);
  });
});

describe('pure checks', () => {
  it('gpuSettingsUsed lists what any config changes', () => {
    assert.deepEqual(gpuSettingsUsed([{}, { gpu: { power_limit_w: 300 } }, { gpu: { memory_clock_mhz: [2619, 2619] } }]), ['power_limit_w', 'memory_clock_mhz']);
    assert.deepEqual(gpuSettingsUsed([{}, {}]), []);
  });

  it('gpuSettingReasons: the edges of the range are allowed', () => {
    assert.deepEqual(gpuSettingReasons({ power_limit_w: 200, sm_clock_mhz: [345, 1980] }, [H100]), []);
    assert.equal(gpuSettingReasons({ power_limit_w: 700.5 }, [H100]).length, 1);
    assert.deepEqual(gpuSettingReasons(undefined, [H100]), []);
  });

  it('clockStepMhz is the smallest gap of the supported clocks', () => {
    assert.equal(clockStepMhz([1980, 1965, 1950, 1935]), 15);
    assert.equal(clockStepMhz([2619]), 1);
  });

  it('settingDrift: a cap or a lock that moved during the window is drift; clocks moving under no lock are not', () => {
    const snap = (over: Partial<GpuSettingsSnapshot>): GpuSettingsSnapshot => ({
      uuid: 'GPU-0', index: 0, name: 'Fake H100', powerLimitMw: 300_000, enforcedPowerLimitMw: 300_000, smClockMhz: 1410, memClockMhz: 2619, clockEventReasons: 0, ...over,
    });
    assert.deepEqual(settingDrift([snap({})], [snap({ smClockMhz: 900, powerLimitMw: 300_400 })], { power_limit_w: 300 }), []);
    const moved = settingDrift([snap({})], [snap({ powerLimitMw: 250_000, enforcedPowerLimitMw: 250_000 })], { power_limit_w: 300 });
    assert.equal(moved.length, 2);
    assert.match(moved[0]!, /power limit changed from 300 W to 250 W during the window/);
    const unlocked = settingDrift([snap({})], [snap({ smClockMhz: 1980 })], { sm_clock_mhz: [1410, 1410] });
    assert.match(unlocked[0]!, /SM clock 1980 MHz at the end of the window is outside the lock \[1410, 1410\] MHz/);
    assert.match(settingDrift([snap({})], [], undefined)[0]!, /could not be read at the end/);
  });

  it('settingDrift checks a clock lock with the step of the GPU the parent verified, 15 MHz only when it is unknown', () => {
    const snap = (over: Partial<GpuSettingsSnapshot>): GpuSettingsSnapshot => ({
      uuid: 'GPU-0', index: 0, name: 'Fake coarse-step GPU', powerLimitMw: 300_000, enforcedPowerLimitMw: 300_000, smClockMhz: 1410, memClockMhz: 2619, clockEventReasons: 0, ...over,
    });
    const verified = (step: number | null | undefined): GpuDeviceSettings => ({
      uuid: 'GPU-0', index: 0, name: 'Fake coarse-step GPU',
      requested: { power_limit_w: null, sm_clock_mhz: [1410, 1410], memory_clock_mhz: null },
      enforced: { power_limit_w: 300, sm_clock_mhz: 1440, memory_clock_mhz: 2619 },
      original_power_limit_w: 300,
      ...(step === undefined ? {} : { sm_clock_step_mhz: step }),
      notes: [],
    });
    const lock = { sm_clock_mhz: [1410, 1410] as [number, number] };
    // supported clocks 30 MHz apart: the driver runs a 1410 lock at 1440, one step above
    assert.deepEqual(settingDrift([snap({})], [snap({ smClockMhz: 1440 })], lock, [verified(30)]), []);
    // two steps above is drift, whatever the step
    assert.match(settingDrift([snap({})], [snap({ smClockMhz: 1470 })], lock, [verified(30)])[0]!, /SM clock 1470 MHz .* outside the lock/);
    // step unknown (NVML listed no clocks), or a result written before the step was recorded: 15 MHz
    for (const v of [verified(null), verified(undefined)]) {
      assert.match(settingDrift([snap({})], [snap({ smClockMhz: 1440 })], lock, [v])[0]!, /SM clock 1440 MHz .* outside the lock/);
    }
  });
});
