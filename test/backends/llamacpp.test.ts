import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTinyRandomGguf, buildTinyVocab, ensureTinyRandomModel, tinyRandomPath } from '../../src/backends/llamacpp/tiny-random.ts';
import { llamacppBackend } from '../../src/backends/llamacpp/index.ts';
import { ClassifiedError } from '../../src/backends/errors.ts';
import { promptFromText } from '../../src/worker/workload.ts';
import { baseConfig } from '../worker/helpers.ts';
import type { RequestRecord } from '../../src/backends/types.ts';

let cache: string;
const savedCache = process.env.XDG_CACHE_HOME;
before(() => {
  cache = mkdtempSync(join(tmpdir(), 'llem-cache-test-'));
  process.env.XDG_CACHE_HOME = cache;
});
after(() => {
  if (savedCache === undefined) delete process.env.XDG_CACHE_HOME;
  else process.env.XDG_CACHE_HOME = savedCache;
  rmSync(cache, { recursive: true, force: true });
});

test('the tiny-random GGUF is byte-identical for a seed and differs for another', () => {
  const a = buildTinyRandomGguf(1);
  const b = buildTinyRandomGguf(1);
  const c = buildTinyRandomGguf(2);
  assert.equal(a.subarray(0, 4).toString('ascii'), 'GGUF');
  assert.equal(a.readUInt32LE(4), 3, 'GGUF version 3');
  assert.ok(a.equals(b));
  assert.ok(!a.equals(c));
  assert.ok(a.length > 1e6 && a.length < 16e6, `size ${a.length}`);
  const vocab = buildTinyVocab();
  assert.equal(new Set(vocab.tokens).size, vocab.tokens.length, 'no duplicate tokens');
  assert.ok(vocab.tokens.includes('<0x0A>'), 'byte fallback for newline');
});

test('ensureTinyRandomModel writes once into $XDG_CACHE_HOME/llem and reuses the file', () => {
  const path = ensureTinyRandomModel();
  assert.equal(path, tinyRandomPath());
  assert.ok(path.startsWith(join(cache, 'llem')));
  const first = statSync(path);
  assert.equal(ensureTinyRandomModel(), path);
  assert.equal(statSync(path).mtimeMs, first.mtimeMs, 'not rewritten');
});

async function generate(prompts: string[], concurrency: number): Promise<RequestRecord[]> {
  const ac = new AbortController();
  const config = baseConfig({ batch_size: concurrency, max_new_tokens: 12 });
  const { session, info } = await llamacppBackend.load(config, { runDir: cache, signal: ac.signal, log: () => {} });
  try {
    assert.equal(info.model_builtin, true);
    assert.match(info.backend_version ?? '', /^3\.21\./);
    return await session.run(
      { prompts: prompts.map((t, i) => promptFromText(i, t)), max_new_tokens: 12, concurrency, seed: 7, greedy: true },
    );
  } finally {
    await session.dispose();
  }
}

test('llamacpp on tiny-random: deterministic output, exact token counts, monotonic timestamps', { timeout: 300_000 }, async () => {
  const prompts = ['What is the capital of France?', 'Explain the energy of a large language model in simple words, then list the reasons why measuring it matters for people who study the power of each model.', 'x'];
  const a = await generate(prompts, 1);
  const b = await generate(prompts, 2);
  assert.equal(a.length, 3);
  for (const r of a) {
    assert.equal(r.error, null);
    assert.equal(r.output_tokens, 12, 'random weights never emit end-of-sequence: always max_new_tokens');
    assert.equal(r.token_times_ms.length, 11);
    assert.ok(r.input_tokens > 1);
    const times = [r.start_ms, r.first_token_ms!, ...r.token_times_ms, r.end_ms];
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! >= times[i - 1]!, `timestamps monotonic in request ${r.prompt_index}`);
    assert.ok((r.output_text ?? '').length > 0);
  }
  const byIndex = (rs: RequestRecord[]) => [...rs].sort((x, y) => x.prompt_index - y.prompt_index).map((r) => r.output_text);
  assert.deepEqual(byIndex(a), byIndex(b), 'same text for the same seed, at concurrency 1 and 2');
  assert.ok(a[0]!.input_tokens < a[1]!.input_tokens, 'longer prompt, more input tokens');
});

test('a precision that does not match the GGUF file is a PreflightError', { timeout: 120_000 }, async () => {
  const ac = new AbortController();
  await assert.rejects(
    llamacppBackend.load(baseConfig({ precision: 'q4_0' }), { runDir: cache, signal: ac.signal, log: () => {} }),
    (err: unknown) => err instanceof ClassifiedError && err.errorType === 'PreflightError' && /holds f16/.test(err.message),
  );
});

test('a missing GGUF path is a PreflightError naming it', async () => {
  const ac = new AbortController();
  const missing = join(cache, 'nope.gguf');
  assert.ok(!existsSync(missing));
  await assert.rejects(
    llamacppBackend.load(baseConfig({ model: missing }), { runDir: cache, signal: ac.signal, log: () => {} }),
    (err: unknown) => err instanceof ClassifiedError && err.errorType === 'PreflightError' && err.message.includes(missing),
  );
});
