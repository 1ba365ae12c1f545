// The pytorch backend for real: worker.py on builtin:tiny-torch with the system Python's torch.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { loadPytorch, type PytorchSession } from '../../src/backends/pytorch/index.ts';
import type { Prompt, RequestRecord, Workload } from '../../src/backends/types.ts';
import { buildRunPrompts } from '../../src/worker/workload.ts';
import { isAlive, noopCtx, tempDir, tinyConfig, waitUntil } from './helpers.ts';

const PROMPTS: Prompt[] = ['Hello world', 'Tell me a long story about cats and dogs', 'x', 'Été à Paris — 東京'].map(
  (text, index) => ({ index, text, messages: [{ role: 'user', content: text }] }),
);

function workload(prompts: Prompt[], extra: Partial<Workload> = {}): Workload {
  return { prompts, max_new_tokens: 12, concurrency: 1, seed: 7, greedy: true, ...extra };
}

function checkTimeline(r: RequestRecord, before: number, after: number): void {
  assert.ok(r.start_ms >= before && r.end_ms <= after, `request ${r.prompt_index} outside the run: ${r.start_ms}..${r.end_ms} vs ${before}..${after}`);
  if (r.output_tokens === 0) {
    assert.equal(r.first_token_ms, null);
    assert.equal(r.token_times_ms.length, 0);
    return;
  }
  assert.ok(r.first_token_ms !== null && r.first_token_ms >= r.start_ms, 'first token after start');
  assert.equal(r.first_content_token_ms, r.first_token_ms);
  let previous = r.first_token_ms!;
  for (const t of r.token_times_ms) {
    assert.ok(t >= previous, `token times go backwards: ${t} after ${previous}`);
    previous = t;
  }
  assert.ok(r.end_ms >= previous, 'end after the last token');
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

describe('pytorch backend on builtin:tiny-torch', { timeout: 300_000 }, () => {
  const dir = tempDir();
  let session: PytorchSession;
  const logLines: string[] = [];
  let info: Awaited<ReturnType<typeof loadPytorch>>['info'];

  before(async () => {
    ({ session, info } = await loadPytorch(tinyConfig(), noopCtx(dir.path, logLines)));
  });
  after(async () => {
    await session?.dispose();
    dir.remove();
  });

  test('load reports the environment: Python, torch, device, builtin model', () => {
    assert.equal(info.model_builtin, true);
    assert.equal(info.backend_version, info.extra_versions?.torch);
    assert.match(info.backend_version ?? '', /^\d+\.\d+/);
    assert.equal(info.extra_versions?.['pytorch.device'], 'cpu');
    assert.equal(info.extra_versions?.['pytorch.dtype'], 'float32');
    assert.equal(info.extra_versions?.['pytorch.num_threads'], '1');
    assert.ok(logLines.some((l) => /torch \d.*CUDA not visible/.test(l)), `preflight line in the log: ${logLines.join(' | ')}`);
  });

  test('token counts: bytes + BOS in, up to max_new_tokens out, one time per token', async () => {
    const before = performance.now();
    const seen: number[] = [];
    const records = await session.run(workload(PROMPTS), (r) => seen.push(r.prompt_index));
    const after = performance.now();
    assert.deepEqual(seen, [0, 1, 2, 3], 'onRequest fires once per request, in order');
    assert.equal(records.length, PROMPTS.length);
    for (const r of records) {
      const prompt = PROMPTS[r.prompt_index]!;
      assert.equal(r.input_tokens, Buffer.byteLength(prompt.text, 'utf8') + 1);
      assert.equal(r.output_tokens, 12, 'no EOS bias: every request runs to max_new_tokens');
      assert.equal(r.token_times_ms.length, r.output_tokens - 1);
      assert.equal(r.error, null);
      checkTimeline(r, before, after);
    }
    const raw = session.lastRawRecords;
    assert.deepEqual(raw.map((r) => r.output_token_ids.length), [12, 12, 12, 12]);
  });

  test('deterministic: the same prompts give the same tokens, run after run', async () => {
    await session.run(workload(PROMPTS));
    const first = session.lastRawRecords.map((r) => r.output_token_ids);
    await session.run(workload(PROMPTS));
    const second = session.lastRawRecords.map((r) => r.output_token_ids);
    assert.deepEqual(second, first);
    assert.ok(new Set(first.map((ids) => ids.join(','))).size > 1, 'different prompts give different outputs');
  });

  test('static batches give the tokens of single requests (padding never leaks into outputs or counts)', async () => {
    const single = await session.run(workload(PROMPTS, { concurrency: 1 }));
    const singleIds = session.lastRawRecords.map((r) => r.output_token_ids);
    const batched = await session.run(workload(PROMPTS, { concurrency: 4 }));
    const batchedIds = session.lastRawRecords.map((r) => r.output_token_ids);
    assert.deepEqual(batchedIds, singleIds);
    assert.deepEqual(batched.map((r) => r.input_tokens), single.map((r) => r.input_tokens));
    // One batch: all four start together; one at a time: each starts after the previous ended.
    assert.equal(new Set(batched.map((r) => r.start_ms)).size, 1);
    for (let i = 1; i < single.length; i++) assert.ok(single[i]!.start_ms >= single[i - 1]!.end_ms);
  });

  test('the prompts run are exactly the workload builder\'s (same dataset + seed as every backend)', async () => {
    const { measured } = await buildRunPrompts({ kind: 'builtin', name: 'builtin' }, 7, 5, 0);
    const again = await buildRunPrompts({ kind: 'builtin', name: 'builtin' }, 7, 5, 0);
    assert.deepEqual(again.measured, measured, 'the builder itself is deterministic');
    const records = await session.run(workload(measured, { max_new_tokens: 2, concurrency: 2 }));
    assert.deepEqual(records.map((r) => r.prompt_index), measured.map((p) => p.index));
    assert.deepEqual(session.lastRawRecords.map((r) => r.prompt_sha256), measured.map((p) => sha256(p.text)));
    assert.deepEqual(records.map((r) => r.input_tokens), measured.map((p) => Buffer.byteLength(p.text, 'utf8') + 1));
  });

  test('window edges: sync answers, no CUDA → backend peak memory unknown (null, not 0)', async () => {
    await session.beginWindow();
    await session.run(workload(PROMPTS.slice(0, 1), { max_new_tokens: 2 }));
    assert.deepEqual(await session.endWindow(), { memory_peak_bytes: null });
  });

  test('sampling (greedy: false) is seeded: same seed same tokens, another seed other tokens', async () => {
    const tokens = async (seed: number): Promise<string> => {
      await session.run(workload(PROMPTS, { greedy: false, seed }));
      return JSON.stringify(session.lastRawRecords.map((r) => r.output_token_ids));
    };
    const a = await tokens(1);
    assert.equal(await tokens(1), a);
    assert.notEqual(await tokens(2), a);
  });

  test('dispose ends Python', async () => {
    const pid = session.worker.pid!;
    assert.ok(isAlive(pid));
    await session.dispose();
    await waitUntil('python to exit', () => !isAlive(pid));
    assert.deepEqual(session.worker.exitStatus, { code: 0, signal: null });
  });
});

describe('builtin:tiny-torch across loads', { timeout: 300_000 }, () => {
  test('same weights seed → same tokens; another weights seed → other tokens; EOS ends a request early', async () => {
    const dir = tempDir();
    const tokensOf = async (model: string, wl: Workload): Promise<{ ids: number[][]; records: RequestRecord[]; hitEos: boolean[] }> => {
      const { session } = await loadPytorch(tinyConfig({ model }), noopCtx(dir.path));
      try {
        const records = await session.run(wl);
        return { ids: session.lastRawRecords.map((r) => r.output_token_ids), records, hitEos: session.lastRawRecords.map((r) => r.hit_eos) };
      } finally {
        await session.dispose();
      }
    };
    try {
      const a = await tokensOf('builtin:tiny-torch', workload(PROMPTS));
      const b = await tokensOf('builtin:tiny-torch', workload(PROMPTS));
      const c = await tokensOf('builtin:tiny-torch@weights_seed=1', workload(PROMPTS));
      assert.deepEqual(b.ids, a.ids);
      assert.notDeepEqual(c.ids, a.ids);

      // A strong EOS bias: every request stops at EOS, which is neither counted nor timed, and a
      // static batch (rows ending at different steps) counts exactly like single requests.
      const eosModel = 'builtin:tiny-torch@eos_bias=8';
      const single = await tokensOf(eosModel, workload(PROMPTS, { max_new_tokens: 40 }));
      const batched = await tokensOf(eosModel, workload(PROMPTS, { max_new_tokens: 40, concurrency: 4 }));
      assert.ok(single.hitEos.some(Boolean), `some request hits EOS: ${JSON.stringify(single.ids)}`);
      assert.ok(new Set(single.ids.map((ids) => ids.length)).size > 1, 'rows of the batch end at different steps');
      assert.deepEqual(batched.ids, single.ids);
      for (const [i, r] of single.records.entries()) {
        assert.equal(r.output_tokens, single.ids[i]!.length);
        if (single.hitEos[i]) assert.ok(r.output_tokens < 40);
        assert.equal(r.token_times_ms.length, Math.max(0, r.output_tokens - 1));
      }
      assert.deepEqual(batched.records.map((r) => r.output_tokens), single.records.map((r) => r.output_tokens));
    } finally {
      dir.remove();
    }
  });
});
