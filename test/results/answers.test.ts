// The answer views of `llem results` (issue 16): the CI-aware frontier and goodput under an SLO,
// against values computed by hand from the fixtures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { summarizeStudy } from '../../src/results/summarize.ts';
import { computeFrontier, FRONTIER_X_AXES, FRONTIER_Y_AXES, frontierAxis } from '../../src/results/frontier.ts';
import { parseSlo, requestMeetsSlo, runGoodput, sloAnswer } from '../../src/results/slo.ts';
import { resultsText } from '../../src/cli/results.ts';
import { mulberry32 } from '../../src/prng.ts';
import type { RequestRecord } from '../../src/backends/types.ts';
import { frontierFixture, makeGrid, makePlan, makeResult, writeStudyDir } from './fixtures.ts';

const NOW = '2026-02-01T00:00:00.000Z';
const pct = (v: number) => ({ mean: v, p50: v, p90: v, p95: v, p99: v });
const X = frontierAxis(FRONTIER_X_AXES, 'ttft_p95_ms', '--x');
const Y = frontierAxis(FRONTIER_Y_AXES, 'energy_per_output_token_j', '--y');

function frontierStudy() {
  const f = frontierFixture();
  return { ...f, summary: summarizeStudy({ plan: f.plan, snapshot: null, results: f.results, now: NOW }) };
}

test('frontier: dominated only beyond the overlap of the intervals; overlapping configs stay, marked not separable', () => {
  const { configs, summary } = frontierStudy();
  const h = (bs: number) => configs[bs - 1]!.hash;
  const f = computeFrontier(summary, X, Y);
  const by = new Map(f.entries.map((e) => [e.config_hash, e]));
  assert.deepEqual(by.get(h(1))!.dominated_by.sort(), [h(2), h(3)].sort());
  assert.equal(by.get(h(1))!.status, 'dominated');
  assert.equal(by.get(h(1))!.on_frontier, false);
  assert.equal(by.get(h(2))!.status, 'frontier');
  assert.equal(by.get(h(3))!.status, 'not_separable');
  assert.deepEqual(by.get(h(3))!.not_separable_from, [h(2)]);
  assert.equal(by.get(h(3))!.on_frontier, true);
  assert.deepEqual(by.get(h(3))!.dominated_by, []);
  assert.equal(by.get(h(4))!.status, 'frontier');
  assert.equal(by.get(h(5))!.status, 'unmeasured');
  // Means as computed by hand.
  assert.equal(by.get(h(2))!.x!.mean, 52);
  assert.ok(Math.abs(by.get(h(2))!.y!.mean - 0.52) < 1e-12);
});

test('frontier: over random studies, no config is ever called dominated while an interval overlaps', () => {
  const rand = mulberry32(99);
  for (let trial = 0; trial < 20; trial++) {
    const configs = makeGrid([1, 2, 3, 4, 5, 6, 7, 8]);
    const centre = configs.map(() => ({ x: 50 + 100 * rand(), y: 0.2 + rand() }));
    const plan = makePlan(configs, 3);
    const results = plan.order.map((o) => {
      const i = configs.findIndex((x) => x.hash === o.config_hash);
      const c = centre[i]!;
      return makeResult(configs[i]!, o.index, o.cycle, { ttft_ms: pct(c.x * (1 + 0.2 * (rand() - 0.5))), energy_per_output_token_j: c.y * (1 + 0.2 * (rand() - 0.5)) });
    });
    const summary = summarizeStudy({ plan, snapshot: null, results, now: NOW });
    const f = computeFrontier(summary, X, Y);
    const byHash = new Map(f.entries.map((e) => [e.config_hash, e]));
    for (const e of f.entries) {
      for (const d of e.dominated_by) {
        const q = byHash.get(d)!;
        assert.ok(q.x!.ci![1] < e.x!.ci![0] && q.y!.ci![1] < e.y!.ci![0], `${e.label} dominated by ${q.label} with overlapping intervals`);
      }
      assert.equal(e.on_frontier, e.dominated_by.length === 0);
    }
  }
});

test('llem results --frontier --format json: every config carries on_frontier and dominated_by (hashes)', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'llem-frontier-'));
  try {
    const { configs, plan, results } = frontierStudy();
    await writeStudyDir(dir, plan, results);
    const out = await resultsText(dir, { format: 'json', where: [], frontier: true });
    const rows = JSON.parse(out.stdout) as Array<{ config_hash: string; on_frontier: boolean; dominated_by: string[]; status: string }>;
    assert.equal(rows.length, 5);
    for (const r of rows) {
      assert.equal(typeof r.on_frontier, 'boolean');
      assert.ok(Array.isArray(r.dominated_by));
    }
    assert.deepEqual(rows.find((r) => r.config_hash === configs[0]!.hash)!.dominated_by.sort(), [configs[1]!.hash, configs[2]!.hash].sort());
    const table = await resultsText(dir, { format: 'table', where: [], frontier: true, x: 'tokens_per_s' }, 200);
    assert.match(table.stdout, /output tokens per second/);
    await assert.rejects(resultsText(dir, { format: 'table', where: [], frontier: true, x: 'ttft_p50' }), /--x ttft_p50: expected one of ttft_p95_ms, itl_p95_ms, e2e_p95_ms, tokens_per_s/);
    await assert.rejects(resultsText(dir, { format: 'table', where: [], x: 'tokens_per_s' }), /add --frontier/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

function rec(over: Partial<RequestRecord> & { ttft: number; gaps: number[] }): RequestRecord {
  const start = over.start_ms ?? 1000;
  const first = start + over.ttft;
  const times: number[] = [];
  let t = first;
  for (const g of over.gaps) times.push((t += g));
  return {
    prompt_index: 0,
    input_tokens: 5,
    output_tokens: over.output_tokens ?? over.gaps.length + 1,
    start_ms: start,
    first_token_ms: first,
    first_content_token_ms: first,
    token_times_ms: times,
    end_ms: times.at(-1) ?? first,
    error: over.error ?? null,
  };
}

test('SLO conditions parse, and a request is good only when every condition holds for its own values', () => {
  const slo = parseSlo(['ttft_p95_ms<=200', 'itl_p95_ms<50']);
  assert.deepEqual(slo.map((c) => [c.key, c.op, c.threshold_ms]), [['ttft_p95_ms', '<=', 200], ['itl_p95_ms', '<', 50]]);
  assert.ok(requestMeetsSlo(rec({ ttft: 200, gaps: [10, 20, 30] }), slo));
  assert.ok(!requestMeetsSlo(rec({ ttft: 201, gaps: [10] }), slo));
  // p95 of the request's own gaps [10 × 19, 100]: 10 + 0.05·19·… → (19 × 0.95 = 18.05) between 10 and 100: 14.5
  assert.ok(requestMeetsSlo(rec({ ttft: 10, gaps: [...Array(19).fill(10), 100] }), slo));
  assert.ok(!requestMeetsSlo(rec({ ttft: 10, gaps: [10, 100] }), slo), 'p95 of [10, 100] is 95.5');
  assert.ok(requestMeetsSlo(rec({ ttft: 10, gaps: [] }), slo), 'a one-token request has no gap to violate');
  assert.ok(!requestMeetsSlo(rec({ ttft: 10, gaps: [1], error: 'HTTP 500' }), slo), 'a failed request is never good');
  assert.throws(() => parseSlo('ttft<=200'), /expected <quantity>_<stat>_ms<=<milliseconds>/);
  assert.throws(() => parseSlo('ttft_p95_ms<=0'), /positive/);
  assert.throws(() => parseSlo('ttft_p95_ms<=1,ttft_p95_ms<=2'), /given twice/);
});

/** 2 configs × 3 cycles; each run 4 requests (one failing in config b), energy and window known. */
function sloStudy() {
  const configs = makeGrid([1, 2]);
  const plan = makePlan(configs, 3);
  const records = new Map<string, RequestRecord[]>();
  const results = plan.order.map((o) => {
    const c = configs.find((x) => x.hash === o.config_hash)!;
    const bs = c.config.batch_size;
    const energy = 100 + 10 * o.cycle; // 110, 120, 130 J
    const window = 10 + o.cycle; // 11, 12, 13 s
    const r = makeResult(c, o.index, o.cycle, { energy_j: energy, window_s: window, ttft_ms: pct(bs === 1 ? 150 : 300), itl_ms: pct(20) });
    // a: TTFT 100/150/190/250 → 3 good (10 + 20 + 30 tokens), the 250 ms one (40 tokens) not.
    // b: TTFT 300 for all but one fast request that failed → 0 good.
    const list =
      bs === 1
        ? [rec({ ttft: 100, gaps: Array(9).fill(20) }), rec({ ttft: 150, gaps: Array(19).fill(20) }), rec({ ttft: 190, gaps: Array(29).fill(20) }), rec({ ttft: 250, gaps: Array(39).fill(20) })]
        : [rec({ ttft: 300, gaps: [20] }), rec({ ttft: 300, gaps: [20] }), rec({ ttft: 300, gaps: [20] }), rec({ ttft: 10, gaps: [20], error: 'HTTP 500' })];
    records.set(r.run_id, list);
    return r;
  });
  return { configs, plan, results, records, summary: summarizeStudy({ plan, snapshot: null, results, now: NOW }) };
}

test('goodput and J per good token equal the values computed by hand; the recommendation meets the SLO', () => {
  const { configs, results, records, summary } = sloStudy();
  const slo = parseSlo('ttft_p95_ms<=200,itl_p95_ms<=50');
  const run1 = results.find((r) => r.config_hash === configs[0]!.hash && r.cycle === 1)!;
  const g = runGoodput(run1, records.get(run1.run_id)!, slo);
  assert.equal(g.requests, 4);
  assert.equal(g.good_requests, 3);
  assert.equal(g.good_output_tokens, 60);
  assert.equal(g.goodput_requests_per_s, 3 / 11);
  assert.equal(g.goodput_tokens_per_s, 60 / 11);
  assert.equal(g.energy_per_good_token_j, 110 / 60);
  const answer = sloAnswer(summary, results, records, slo);
  const a = answer.configs[0]!;
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(a.energy_per_good_token_j.mean! - mean([110 / 60, 120 / 60, 130 / 60])) < 1e-12);
  assert.ok(Math.abs(a.goodput_tokens_per_s.mean! - mean([60 / 11, 60 / 12, 60 / 13])) < 1e-12);
  assert.equal(a.good_fraction.mean, 0.75);
  assert.equal(a.meets_slo, true);
  const b = answer.configs[1]!;
  assert.equal(b.good_fraction.mean, 0);
  assert.equal(b.energy_per_good_token_j.mean, null, 'no good token: null, never 0 or Infinity');
  assert.equal(b.energy_per_good_token_j.n_missing, 3);
  assert.equal(b.runs[0]!.reason, 'no request met the SLO');
  assert.equal(b.meets_slo, false);
  assert.equal(answer.recommendation!.config_hash, configs[0]!.hash);
  assert.ok(answer.recommendation!.energy_per_good_token_j.ci !== null);
});

test('llem results --slo reads requests.jsonl of each run and recommends with the CI', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'llem-slo-'));
  try {
    const { configs, plan, results, records } = sloStudy();
    await writeStudyDir(dir, plan, results);
    for (const r of results) await writeFile(path.join(dir, 'runs', r.run_id, 'requests.jsonl'), records.get(r.run_id)!.map((x) => JSON.stringify(x)).join('\n') + '\n');
    const out = await resultsText(dir, { format: 'table', where: [], slo: ['ttft_p95_ms<=200', 'itl_p95_ms<=50'] }, 220);
    assert.match(out.stdout, /Recommended under ttft_p95_ms<=200,itl_p95_ms<=50: llamacpp bs=1/);
    const json = JSON.parse((await resultsText(dir, { format: 'json', where: [], slo: ['ttft_p95_ms<=200,itl_p95_ms<=50'] })).stdout);
    assert.equal(json.recommendation.config_hash, configs[0]!.hash);
    assert.equal(json.configs[0].good_fraction, 0.75);
    await assert.rejects(resultsText(dir, { format: 'table', where: [], slo: ['latency<=3'] }), (err: Error & { exitCode?: number }) => err.exitCode === 2 && /--slo "latency<=3"/.test(err.message));
    // A run without requests.jsonl: its goodput is unknown (warned), never 0.
    await rm(path.join(dir, 'runs', results[0]!.run_id, 'requests.jsonl'));
    const partial = await resultsText(dir, { format: 'csv', where: [], slo: ['ttft_p95_ms<=200'] });
    assert.match(partial.stderr, new RegExp(`${results[0]!.run_id}: no requests.jsonl; its goodput is unknown`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('frontier: an exact tie on one axis (every cycle the same value) lets the other axis decide', () => {
  const configs = makeGrid([1, 2]);
  const plan = makePlan(configs, 3);
  const results = plan.order.map((o) => {
    const c = configs.find((x) => x.hash === o.config_hash)!;
    const bs = c.config.batch_size;
    return makeResult(c, o.index, o.cycle, { ttft_ms: pct(40), energy_per_output_token_j: (bs === 1 ? 1 : 0.5) + o.cycle / 100 });
  });
  const f = computeFrontier(summarizeStudy({ plan, snapshot: null, results, now: NOW }), X, Y);
  assert.deepEqual(f.entries.map((e) => [e.status, e.dominated_by]), [['dominated', [configs[1]!.hash]], ['frontier', []]]);
});
