// `llem compare` refuses (exit 2, naming the field) for every environment field that changes the
// meaning of the numbers (ENV_FIELDS with severity 'meaning', and the workload of configs matched
// by label); --allow-env-diff lists the difference above the table. A field recorded on one side
// only cannot be checked: it is listed, never refused. Two real study dirs per case, read back by
// the command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { compareText } from '../../src/cli/compare.ts';
import { ENV_FIELDS } from '../../src/results/environment-diff.ts';
import type { GpuSettingsRecord } from '../../src/gpu-settings/record.ts';
import type { RunResult } from '../../src/results/schema.ts';
import { makeConfig, makeGrid, makePlan, makeResult, writeStudyDir, type ConfigFixture } from './fixtures.ts';

function studyOf(configs: ConfigFixture[]) {
  const plan = makePlan(configs, 3);
  const results = plan.order.map((o) => {
    const c = configs.find((x) => x.hash === o.config_hash)!;
    return makeResult(c, o.index, o.cycle, { output_tokens_per_s: 10 * c.config.batch_size + o.cycle });
  });
  return { plan, results };
}

/** environment.gpu_settings of one H100 as the child records it: nothing requested (all default). */
function gpuSettings(): GpuSettingsRecord {
  return {
    devices: [
      {
        uuid: 'GPU-fixture',
        index: 0,
        name: 'NVIDIA H100',
        requested: { power_limit_w: null, sm_clock_mhz: null, memory_clock_mhz: null },
        enforced: { power_limit_w: 700, sm_clock_mhz: 1980, memory_clock_mhz: 2619 },
        original_power_limit_w: 700,
        notes: [],
      },
    ],
    gpu_setting_drift: false,
    drift_reasons: [],
  };
}

interface Case {
  /** The field the refusal names (ENV_FIELDS field, or 'workload'). */
  field: string;
  /** Applied to the results of both studies first (what both record). */
  both?: (r: RunResult, side: 'A' | 'B') => void;
  /** Applied to study B's results only: the one difference. */
  changeB?: (r: RunResult) => void;
  /** Study B's configs instead of A's (a workload difference). */
  configsB?: (configs: ConfigFixture[]) => ConfigFixture[];
  /** The line the refusal and the table header carry, values as the user reads them. */
  line: string;
  /** Other meaning fields the same change necessarily differs in. */
  also?: string[];
}

const labelOf = (field: string) => ENV_FIELDS.find((f) => f.field === field)!.label;
const envLine = (field: string, a: string, b: string) => `${field} (${labelOf(field)}): A ${a} · B ${b}`;

const CASES: Case[] = [
  { field: 'gpu', changeB: (r) => void (r.environment.gpus[0]!.name = 'NVIDIA A100-SXM4-80GB'), line: envLine('gpu', 'NVIDIA H100', 'NVIDIA A100-SXM4-80GB') },
  {
    field: 'gpu_count',
    changeB: (r) => void r.environment.gpus.push({ ...r.environment.gpus[0]!, index: 1, uuid: 'GPU-fixture-1' }),
    // one GPU model on both sides: only the count differs ("NVIDIA H100 + NVIDIA H100" once read as another model)
    line: envLine('gpu_count', '1', '2'),
  },
  { field: 'driver', changeB: (r) => void (r.environment.nvml.driver_version = '560.28'), line: envLine('driver', '550.54', '560.28') },
  { field: 'cuda', changeB: (r) => void (r.environment.nvml.cuda_driver_version = '12.6'), line: envLine('cuda', '12.4', '12.6') },
  {
    field: 'power_limit_requested',
    both: (r) => void (r.environment.gpu_settings = gpuSettings()),
    // B asked for 700 W explicitly; A left it at default (700 W too): same enforced limit, another request
    changeB: (r) => void (r.environment.gpu_settings!.devices[0]!.requested.power_limit_w = 700),
    line: envLine('power_limit_requested', 'default', '700'),
  },
  { field: 'power_limit_w', changeB: (r) => void (r.environment.gpus[0]!.power_limit_w = 500), line: envLine('power_limit_w', '700', '500') },
  {
    field: 'clock_locks_requested',
    both: (r) => void (r.environment.gpu_settings = gpuSettings()),
    changeB: (r) => void (r.environment.gpu_settings!.devices[0]!.requested.sm_clock_mhz = [1410, 1410]),
    line: envLine('clock_locks_requested', 'default', 'SM 1410–1410, memory default'),
  },
  { field: 'persistence_mode', changeB: (r) => void (r.environment.gpus[0]!.persistence_mode = false), line: envLine('persistence_mode', 'true', 'false') },
  { field: 'mig_mode', changeB: (r) => void (r.environment.gpus[0]!.mig_mode = true), line: envLine('mig_mode', 'false', 'true') },
  { field: 'engine', changeB: (r) => void (r.backend.version = '3.22.0'), line: envLine('engine', 'llamacpp 3.21.1', 'llamacpp 3.22.0') },
  {
    field: 'engine_extra',
    // the pid and log path of a server differ every run by design: never a difference
    both: (r, side) => void (r.environment.extra = { 'llama.cpp': 'b5000', 'vllm.pid': `${side}${r.run_id}`, 'vllm.log': `/tmp/${side}/${r.run_id}.log` }),
    changeB: (r) => void (r.environment.extra['llama.cpp'] = 'b5123'),
    line: envLine('engine_extra', 'llama.cpp=b5000', 'llama.cpp=b5123'),
  },
  { field: 'llem_version', changeB: (r) => void (r.environment.llem_version = '0.2.0'), line: envLine('llem_version', '0.1.0', '0.2.0') },
  {
    field: 'dataset_sha256',
    both: (r) => void (r.dataset = { sha256: 'aaaa', prompts: 8 }),
    changeB: (r) => void (r.dataset = { sha256: 'bbbb', prompts: 8 }),
    line: envLine('dataset_sha256', 'aaaa', 'bbbb'),
  },
  {
    field: 'workload',
    // B's configs carry A's labels but another max_new_tokens (and so another hash): matched by label
    configsB: (configs) => configs.map((c) => ({ hash: c.hash.replace(/^llam/, 'b0b0'), label: c.label, config: makeConfig({ ...c.config, max_new_tokens: 64 }) })),
    line: 'workload llamacpp bs=1: max_new_tokens: A 32 · B 64',
  },
];

async function withStudies(c: Pick<Case, 'both' | 'changeB' | 'configsB'>, fn: (dirA: string, dirB: string) => Promise<void>): Promise<void> {
  const dirA = await mkdtemp(path.join(os.tmpdir(), 'llem-cmpenvA-'));
  const dirB = await mkdtemp(path.join(os.tmpdir(), 'llem-cmpenvB-'));
  try {
    const configs = makeGrid([1, 4]);
    const A = studyOf(configs);
    const B = studyOf(c.configsB ? c.configsB(configs) : configs);
    for (const r of A.results) c.both?.(r, 'A');
    for (const r of B.results) {
      c.both?.(r, 'B');
      c.changeB?.(r);
    }
    await writeStudyDir(dirA, A.plan, A.results);
    await writeStudyDir(dirB, B.plan, B.results);
    await fn(dirA, dirB);
  } finally {
    await rm(dirA, { recursive: true, force: true });
    await rm(dirB, { recursive: true, force: true });
  }
}

test('the table below covers every meaning-level environment field, and the workload', () => {
  const meaning = ENV_FIELDS.filter((f) => f.severity === 'meaning').map((f) => f.field);
  assert.deepEqual(
    CASES.map((c) => c.field).sort(),
    [...meaning, 'workload'].sort(),
    'a new meaning field needs a case here',
  );
});

for (const c of CASES) {
  test(`compare refuses (exit 2) when ${c.field} differs, naming it; --allow-env-diff compares and lists it`, async () => {
    await withStudies(c, async (dirA, dirB) => {
      await assert.rejects(compareText(dirA, dirB, { format: 'table', where: [] }), (err: Error & { exitCode?: number }) => {
        assert.equal(err.exitCode, 2);
        const lines = err.message.split('\n');
        assert.ok(lines.includes(`  ${c.line}`), `refusal names ${c.field}:\n${err.message}`);
        // exactly the meaning differences this change makes, nothing else
        const named = lines.filter((l) => l.startsWith('  ')).map((l) => l.trim().replace(/^workload .*/, 'workload').replace(/ \(.*$/, ''));
        assert.deepEqual([...new Set(named)].sort(), [c.field, ...(c.also ?? [])].sort(), err.message);
        assert.match(err.message, /refusing to compare; pass --allow-env-diff/);
        return true;
      });
      const out = await compareText(dirA, dirB, { format: 'table', where: [], allowEnvDiff: true }, 240);
      const [header, table] = out.stdout.split('┌');
      assert.match(header!, /ENVIRONMENTS DIFFER/);
      assert.ok(header!.split('\n').includes(`  ! ${c.line}`), `listed above the table:\n${header}`);
      assert.match(table!, /llamacpp bs=4/, 'the table is there');
      const csv = await compareText(dirA, dirB, { format: 'csv', where: [], allowEnvDiff: true });
      const rows = parse(csv.stdout, { columns: true }) as Array<Record<string, string>>;
      assert.ok(rows.length > 0);
      for (const row of rows) assert.ok(row.env_differences!.length > 0, 'every row carries the difference');
    });
  });
}

test('a field recorded on one side only (older results) is listed as not checkable, never refused', async () => {
  const oneSide: Pick<Case, 'both' | 'changeB'> = {
    both: (r) => {
      r.dataset = { sha256: 'aaaa', prompts: 8 };
      r.environment.gpu_settings = gpuSettings();
    },
    changeB: (r) => {
      delete r.dataset;
      delete r.environment.gpu_settings;
      r.environment.nvml.cuda_driver_version = null;
      r.environment.gpus[0]!.persistence_mode = null;
      r.environment.gpus[0]!.mig_mode = null;
    },
  };
  await withStudies(oneSide, async (dirA, dirB) => {
    const out = await compareText(dirA, dirB, { format: 'table', where: [] }, 240);
    const [header] = out.stdout.split('┌');
    assert.doesNotMatch(header!, /ENVIRONMENTS DIFFER/);
    for (const [field, a] of [
      ['dataset_sha256', 'aaaa'],
      ['power_limit_requested', 'default'],
      ['clock_locks_requested', 'default'],
      ['cuda', '12.4'],
      ['persistence_mode', 'true'],
      ['mig_mode', 'false'],
    ] as const) {
      const line = `  · ${field} (${labelOf(field)}; not recorded on one side, cannot be checked): A ${a} · B not recorded`;
      assert.ok(header!.split('\n').includes(line), `${field} listed:\n${header}`);
    }
    // the enforced limit falls back to the limit read at run start (700 W on both): no difference
    assert.doesNotMatch(header!, /· power_limit_w /);
    const csv = await compareText(dirA, dirB, { format: 'csv', where: [] });
    const rows = parse(csv.stdout, { columns: true }) as Array<Record<string, string>>;
    assert.ok(rows.length > 0);
    assert.ok(rows.every((r) => !r.env_differences), 'no meaning difference on any row');
  });
});

test('a field some runs of a study did not record: the values both recorded decide (same: listed; different: refused)', async () => {
  // B's cycle-1 runs are older results without a dataset hash; its cycle-2 runs recorded one
  const partly = (bHash: string): Pick<Case, 'both' | 'changeB'> => ({
    both: (r) => void (r.dataset = { sha256: 'aaaa', prompts: 8 }),
    changeB: (r) => {
      if (r.cycle === 1) delete r.dataset;
      else r.dataset = { sha256: bHash, prompts: 8 };
    },
  });
  await withStudies(partly('aaaa'), async (dirA, dirB) => {
    // the recorded hashes agree: nothing to refuse
    const out = await compareText(dirA, dirB, { format: 'table', where: [] }, 240);
    const [header] = out.stdout.split('┌');
    assert.doesNotMatch(header!, /ENVIRONMENTS DIFFER/);
    assert.match(header!, /· dataset_sha256 \(.*not recorded on one side, cannot be checked\): A aaaa · B aaaa, not recorded/);
  });
  await withStudies(partly('bbbb'), async (dirA, dirB) => {
    // a hash both sides recorded differs: refused
    await assert.rejects(compareText(dirA, dirB, { format: 'table', where: [] }), (err: Error & { exitCode?: number }) => {
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /^  dataset_sha256/m);
      return true;
    });
  });
});
