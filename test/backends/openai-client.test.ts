import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { startSseServer, type SseEvent, type SseScript } from './fixtures/sse-server.ts';
import { arrivalOffsetsMs, runOpenAiWorkload, streamRequest, type OpenAiClientOptions } from '../../src/backends/openai/client.ts';
import { promptFromText } from '../../src/worker/workload.ts';
import { latencySamples } from '../../src/worker/metrics.ts';

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function serve(
  script: SseScript,
  onRequest?: (b: unknown, h: Record<string, unknown>) => void,
  onEvent?: (e: SseEvent) => void,
): Promise<string> {
  const { server, port } = await startSseServer(script, 0, onRequest, onEvent);
  servers.push(server);
  return `http://127.0.0.1:${port}/v1`;
}

const opts = (baseUrl: string, endpoint: 'chat' | 'completions' = 'chat'): OpenAiClientOptions => ({
  baseUrl,
  endpoint,
  model: 'fixture',
  apiKey: null,
  requestTimeoutMs: 30_000,
});
const wl = { max_new_tokens: 16, greedy: true, seed: 1 };

// The server runs in this process, so its send times and the client's arrival times share one
// clock (performance.now()). A token is stamped when it arrives: never before the server sent it,
// and soon after (the bound is generous because the machine is shared). No assertion relies on a
// timer firing on time: on a loaded machine they fire late, and a millisecond early too.
const SLACK_MS = 3000;

function serverTimes(events: SseEvent[]): { received: number; sent: number[] } {
  return { received: events.find((e) => e.kind === 'request')!.atMs, sent: events.filter((e) => e.kind === 'chunk').map((e) => e.atMs) };
}

test('TTFT, ITL and TPOT follow the scripted timings (chat)', async () => {
  const events: SseEvent[] = [];
  const base = await serve({ ttftMs: 120, itlMs: 40, tokens: 6 }, undefined, (e) => events.push(e));
  const r = await streamRequest(promptFromText(0, 'hello'), wl, opts(base));
  assert.equal(r.error, null);
  assert.equal(r.output_tokens, 6);
  assert.equal(r.token_times_ms.length, 5);
  const { received, sent } = serverTimes(events);
  assert.equal(sent.length, 6);
  const arrivals = [r.first_token_ms!, ...r.token_times_ms];
  arrivals.forEach((t, i) => assert.ok(t >= sent[i]! && t < sent[i]! + SLACK_MS, `token ${i} stamped ${t - sent[i]!} ms after it was sent`));
  assert.ok(r.start_ms <= received, 'the clock starts before the request leaves');
  assert.ok(r.end_ms >= arrivals.at(-1)!);
  // The metrics are exactly those differences, so they carry the script's delays as performed.
  const s = latencySamples([r]);
  assert.equal(s.ttft_ms[0], r.first_token_ms! - r.start_ms);
  assert.ok(s.ttft_ms[0]! >= sent[0]! - received, 'TTFT covers the server’s whole first-token delay');
  assert.ok(s.ttft_ms[0]! < 120 + SLACK_MS, `ttft ${s.ttft_ms[0]}`);
  assert.deepEqual(s.itl_ms, arrivals.slice(1).map((t, i) => t - arrivals[i]!));
  for (const gap of s.itl_ms) assert.ok(gap >= 0 && gap < 40 + SLACK_MS, `itl ${gap}`);
  assert.equal(s.tpot_ms[0], (r.end_ms - r.first_token_ms!) / 5);
  assert.ok(s.tpot_ms[0]! >= (sent[5]! - arrivals[0]!) / 5, 'TPOT spans the last token’s send');
  const times = [r.start_ms, r.first_token_ms!, ...r.token_times_ms, r.end_ms];
  for (let i = 1; i < times.length; i++) assert.ok(times[i]! >= times[i - 1]!, 'timestamps are monotonic');
});

test('completions endpoint and server usage counts', async () => {
  let body: Record<string, unknown> | null = null;
  const base = await serve({ ttftMs: 5, itlMs: 5, tokens: 3, usage: true }, (b) => (body = b as Record<string, unknown>));
  const r = await streamRequest(promptFromText(4, 'complete me'), wl, opts(base, 'completions'));
  assert.equal(r.error, null);
  assert.equal(r.output_tokens, 3);
  assert.equal(r.input_tokens, 11);
  assert.equal(body!.prompt, 'complete me');
  assert.equal(body!.temperature, 0);
  assert.equal(body!.max_tokens, 16);
  assert.equal(body!.stream, true);
});

test('reasoning tokens count for TTFT; first content token recorded separately', async () => {
  const events: SseEvent[] = [];
  const base = await serve({ ttftMs: 20, itlMs: 60, tokens: 2, reasoningTokens: 3 }, undefined, (e) => events.push(e));
  const r = await streamRequest(promptFromText(0, 'think'), wl, opts(base));
  assert.equal(r.error, null);
  assert.equal(r.output_tokens, 5);
  const { sent } = serverTimes(events);
  // the first token is the first reasoning chunk; content starts with chunk 3, after three reasoning gaps
  assert.ok(r.first_token_ms! >= sent[0]! && r.first_token_ms! < sent[0]! + SLACK_MS);
  assert.ok(r.first_content_token_ms! >= sent[3]! && r.first_content_token_ms! < sent[3]! + SLACK_MS, 'content starts with the fourth chunk');
});

test('a server error mid-stream becomes the record error, tokens so far kept', async () => {
  const base = await serve({ ttftMs: 5, itlMs: 5, tokens: 6, errorAfter: 2 });
  const r = await streamRequest(promptFromText(0, 'x'), wl, opts(base));
  assert.match(r.error ?? '', /scripted failure/);
  assert.equal(r.output_tokens, 2);
  assert.equal(latencySamples([r]).ttft_ms.length, 0, 'failed requests are excluded from latency');
});

test('HTTP errors and unreachable servers are recorded, not thrown', async () => {
  const r = await streamRequest(promptFromText(0, 'x'), wl, opts('http://127.0.0.1:1/v1'));
  assert.notEqual(r.error, null);
});

test('fixed concurrency never exceeds the limit and serves every prompt once', async () => {
  let maxInFlight = 0;
  // the server counts requests from their arrival to the end of their response, and holds the
  // responses until the limit is reached once, so the count never depends on timing
  const base = await serve({ ttftMs: 30, itlMs: 10, tokens: 3, holdUntilConcurrent: 3 }, undefined, (e) => {
    maxInFlight = Math.max(maxInFlight, e.inFlight);
  });
  const prompts = Array.from({ length: 9 }, (_, i) => promptFromText(i, `p${i}`));
  const done: number[] = [];
  const recs = await runOpenAiWorkload({ prompts, max_new_tokens: 4, concurrency: 3, seed: 1, greedy: true }, opts(base), (r) => done.push(r.prompt_index));
  assert.equal(recs.length, 9);
  assert.deepEqual([...done].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(maxInFlight, 3, 'the limit is reached and never exceeded');
});

test('seeded arrivals: constant gaps exact, Poisson reproducible with the right mean', () => {
  assert.deepEqual(arrivalOffsetsMs(4, { rate_per_s: 4, process: { kind: 'constant', burstiness: 1 } }, 1), [0, 250, 500, 750]);
  const a = arrivalOffsetsMs(2000, { rate_per_s: 10, process: { kind: 'poisson', burstiness: 1 } }, 42);
  const b = arrivalOffsetsMs(2000, { rate_per_s: 10, process: { kind: 'poisson', burstiness: 1 } }, 42);
  const c = arrivalOffsetsMs(2000, { rate_per_s: 10, process: { kind: 'poisson', burstiness: 1 } }, 43);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const meanGap = a[a.length - 1]! / (a.length - 1);
  assert.ok(meanGap > 90 && meanGap < 110, `mean gap ${meanGap}`);
});

test('openai backend: probes the endpoint (PreflightError when down), sends the key from the named env var', async () => {
  const { openaiBackend } = await import('../../src/backends/openai/index.ts');
  const { ClassifiedError } = await import('../../src/backends/errors.ts');
  const { baseConfig } = await import('../worker/helpers.ts');
  const ac = new AbortController();
  const ctx = { runDir: '/tmp', signal: ac.signal, log: () => {} };
  const params = (base_url: string) => ({ base_url, api_key_env: 'LLEM_TEST_KEY', endpoint: 'chat', model_name: 'served-name', request_timeout_seconds: 30, extra_body: { top_k: 1 } });
  await assert.rejects(
    openaiBackend.load(baseConfig({ backend: 'openai', model: 'm', params: params('http://127.0.0.1:1/v1') }), ctx),
    (e: unknown) => e instanceof ClassifiedError && e.errorType === 'PreflightError' && /did not answer/.test(e.message),
  );
  const bodies: Array<Record<string, unknown>> = [];
  const auth: unknown[] = [];
  const base = await serve({ ttftMs: 1, itlMs: 1, tokens: 2 }, (b, h) => {
    bodies.push(b as Record<string, unknown>);
    auth.push(h.authorization);
  });
  process.env.LLEM_TEST_KEY = 'sk-test';
  try {
    const { session } = await openaiBackend.load(baseConfig({ backend: 'openai', model: 'm', params: params(base) }), ctx);
    const recs = await session.run({ prompts: [promptFromText(0, 'hi')], max_new_tokens: 4, concurrency: 1, seed: 1, greedy: true });
    await session.dispose();
    assert.equal(recs[0]!.error, null);
    assert.equal(bodies[0]!.model, 'served-name');
    assert.equal(bodies[0]!.top_k, 1);
    assert.deepEqual(auth, ['Bearer sk-test']);
  } finally {
    delete process.env.LLEM_TEST_KEY;
  }
});

test('open-loop arrivals: batch_size stays the in-flight cap; each record carries when it was scheduled', async () => {
  let inFlight = 0;
  let maxInFlight = 0;
  const base = await serve({ ttftMs: 60, itlMs: 10, tokens: 3 }, () => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    setTimeout(() => inFlight--, 75);
  });
  const prompts = Array.from({ length: 6 }, (_, i) => promptFromText(i, `p${i}`));
  // rate inf: all six scheduled at once, two slots → the later ones wait for a slot (queueing).
  const recs = await runOpenAiWorkload(
    { prompts, max_new_tokens: 4, concurrency: 2, seed: 1, greedy: true, arrival: { rate_per_s: 'inf', process: { kind: 'poisson', burstiness: 1 } } },
    opts(base),
  );
  assert.equal(recs.length, 6);
  assert.ok(maxInFlight <= 2, `max in flight ${maxInFlight}`);
  const scheduled = new Set(recs.map((r) => r.scheduled_ms));
  assert.equal(scheduled.size, 1, 'every request scheduled at the start');
  const queueing = recs.map((r) => r.start_ms - r.scheduled_ms!).sort((a, b) => a - b);
  assert.ok(queueing[0]! >= 0 && queueing[0]! < 50, `first sent at once (${queueing[0]} ms)`);
  assert.ok(queueing[5]! >= 2 * 60, `the last waited for two rounds of the two slots (${queueing[5]} ms)`);
  // A constant rate below what the server can take: sent on schedule, in order.
  const paced = await runOpenAiWorkload(
    { prompts: prompts.slice(0, 3), max_new_tokens: 4, concurrency: 4, seed: 1, greedy: true, arrival: { rate_per_s: 10, process: { kind: 'constant', burstiness: 1 } } },
    opts(base),
  );
  const t0 = paced[0]!.scheduled_ms!;
  assert.deepEqual(paced.map((r) => Math.round(r.scheduled_ms! - t0)), [0, 100, 200]);
  for (const r of paced) assert.ok(r.start_ms >= r.scheduled_ms! && r.start_ms - r.scheduled_ms! < SLACK_MS);
});
