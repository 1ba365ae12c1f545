// request_rate and arrival in a study (issue 16): sweepable like batch_size, skipped with the
// backend named where the backend cannot honour a rate, absent from closed-loop configs (their
// hashes unchanged); `slo:` is a study field carried into plan.json.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { planStudy, type StudyPlan } from '../../src/study/plan.ts';
import { canonicalJson } from '../../src/study/hash.ts';
import type { PlannedConfig } from '../../src/study/types.ts';
import { withStudy, inputError } from './study-helpers.ts';

const OPENAI = 'backend: openai\nmodel: m\nopenai: {base_url: "http://127.0.0.1:8000/v1"}\n';

function configs(plan: StudyPlan): PlannedConfig[] {
  return Array.from({ length: plan.config_count }, (_, i) => plan.configAt(i));
}

async function planOf(yaml: string): Promise<StudyPlan> {
  return withStudy({ 'study.yaml': yaml }, (dir) => planStudy(join(dir, 'study.yaml'), { gpuFreeMemoryBytes: null }));
}

describe('request-rate workloads', () => {
  it('request_rate sweeps like batch_size; arrival defaults to poisson; labels name the rate', async () => {
    const plan = await planOf(`${OPENAI}batch_size: 8\nsweep:\n  request_rate: [1, 4, inf]\n  arrival: [constant, gamma(0.5)]\n`);
    const cs = configs(plan);
    assert.equal(cs.length, 6);
    assert.deepEqual(cs.map((c) => [c.config.request_rate, c.config.arrival]), [
      [1, 'constant'], [1, 'gamma(0.5)'], [4, 'constant'], [4, 'gamma(0.5)'], ['inf', 'constant'], ['inf', 'gamma(0.5)'],
    ]);
    assert.ok(cs.every((c) => c.config.batch_size === 8), 'batch_size stays the in-flight cap');
    assert.equal(cs[0]!.label, 'openai rate=1 arrival=constant');
    const poisson = configs(await planOf(`${OPENAI}request_rate: 2\n`));
    assert.equal(poisson[0]!.config.arrival, 'poisson');
    // The config object is canonical (sorted keys) with the new fields too: its JSON is its canonical JSON.
    for (const c of cs) assert.equal(JSON.stringify(c.config), canonicalJson(c.config));
  });

  it('closed-loop configs carry neither field, so their hashes are what they were', async () => {
    const plan = await planOf(OPENAI);
    const c = configs(plan)[0]!;
    assert.equal('request_rate' in c.config, false);
    assert.equal('arrival' in c.config, false);
  });

  it('a backend that runs its own loop is skipped with a reason naming it; the managed servers and openai are not', async () => {
    const plan = await planOf(
      `model: m\nbackend: [openai, command, vllm]\nopenai: {base_url: "http://127.0.0.1:8000/v1"}\ncommand: {argv: [run, "{records_file}"]}\nrequest_rate: 2\n`,
    );
    assert.deepEqual(configs(plan).map((c) => c.config.backend), ['openai', 'vllm']);
    assert.equal(plan.skipped.length, 1);
    assert.match(plan.skipped[0]!.reasons.join(' '), /request_rate 2 needs a backend that sends requests itself .*backend command runs its own loop/);
    const tiny = await planOf(`model: /tmp/m.gguf\nbackend: [llamacpp, openai]\nopenai: {base_url: "http://127.0.0.1:8000/v1"}\nsweep:\n  request_rate: [1, 2]\n`);
    assert.ok(tiny.skipped.some((s) => /backend llamacpp runs its own loop/.test(s.reasons.join(' '))));
  });

  it('bad rates and arrivals are positioned errors; an arrival without a rate is a skip reason', async () => {
    const e1 = await inputError(planOf(`${OPENAI}request_rate: 0\n`));
    assert.match(e1.message, /request_rate.*(> 0|inf)/);
    const e2 = await inputError(planOf(`${OPENAI}sweep:\n  arrival: [poisson, bursty]\n`));
    assert.match(e2.message, /study\.yaml:5:\d+: sweep\.arrival\[1\].*expected poisson, constant or gamma\(<burstiness>\)/s);
    const e3 = await inputError(planOf(`${OPENAI}arrival: constant\n`));
    assert.match(e3.message, /arrival constant is set without request_rate/);
  });
});

describe('slo: in a study', () => {
  it('is carried, canonical, into plan.json and is not an experiment field', async () => {
    const plan = await planOf(`${OPENAI}slo: 'ttft_p95_ms<=200, itl_p95_ms < 50'\n`);
    const file = plan.toPlanFile();
    assert.deepEqual(file.slo, ['ttft_p95_ms<=200', 'itl_p95_ms<50']);
    assert.equal('slo' in configs(plan)[0]!.config, false);
    assert.equal(((await planOf(OPENAI)).toPlanFile() as { slo?: unknown }).slo, undefined);
  });

  it('a bad condition names the file, line and field', async () => {
    const e = await inputError(planOf(`${OPENAI}slo:\n  - ttft_p95_ms<=200\n  - latency<=3\n`));
    assert.match(e.message, /study\.yaml:\d+.*slo.*condition "latency<=3": expected <quantity>_<stat>_ms/s);
  });
});
