import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRunPrompts, readJsonlPrompts, seededShuffle, syntheticPrompts, DatasetError } from '../../src/worker/workload.ts';
import { BUILTIN_PROMPTS } from '../../src/worker/datasets/builtin.ts';
import { nodeArgsFor } from '../../src/node-entry.ts';
import { overrideEnvName } from '../../src/backends/managed/flags.ts';
import { vllmParamsSchema } from '../../src/backends/specs/vllm.ts';
import { commandParamsSchema } from '../../src/backends/specs/command.ts';
import { baseConfig, makeRun, runWorkerChild } from './helpers.ts';

test('builtin prompt set: many prompts of varied length, no duplicates', () => {
  assert.ok(BUILTIN_PROMPTS.length >= 40);
  assert.equal(new Set(BUILTIN_PROMPTS).size, BUILTIN_PROMPTS.length);
  const lengths = BUILTIN_PROMPTS.map((p) => p.length).sort((a, b) => a - b);
  assert.ok(lengths[lengths.length - 1]! > 10 * lengths[0]!, 'short and long prompts');
});

test('seeded order: same seed same order, other seed other order, n cycles the set', async () => {
  const a = await buildRunPrompts({ kind: 'builtin', name: 'builtin' }, 5, 60, 4);
  const b = await buildRunPrompts({ kind: 'builtin', name: 'builtin' }, 5, 60, 4);
  const c = await buildRunPrompts({ kind: 'builtin', name: 'builtin' }, 6, 60, 4);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.measured.map((p) => p.index), c.measured.map((p) => p.index));
  assert.equal(a.measured.length, 60);
  assert.equal(a.warmup.length, 4);
  assert.equal(a.measured[BUILTIN_PROMPTS.length]!.index, a.measured[0]!.index, 'cycles after the whole set');
  const sortedIdx = a.measured.slice(0, BUILTIN_PROMPTS.length).map((p) => p.index).sort((x, y) => x - y);
  assert.deepEqual(sortedIdx, BUILTIN_PROMPTS.map((_, i) => i), 'a permutation');
  assert.deepEqual(seededShuffle([1, 2, 3, 4, 5], 9), seededShuffle([1, 2, 3, 4, 5], 9));
});

test('synthetic prompts: seeded, about the requested length', () => {
  const a = syntheticPrompts(32, 3, 1);
  assert.deepEqual(a, syntheticPrompts(32, 3, 1));
  assert.notDeepEqual(a, syntheticPrompts(32, 3, 2));
  for (const p of a) assert.equal(p.text.split(' ').length, 32);
});

test('jsonl datasets: prompt, text and messages forms; errors name file, line and field', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llem-jsonl-'));
  try {
    const good = join(dir, 'good.jsonl');
    writeFileSync(good, ['{"prompt": "a"}', '', '{"text": "b"}', '{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}'].join('\n'));
    const ps = await readJsonlPrompts(good);
    assert.deepEqual(ps.map((p) => p.text), ['a', 'b', 's\n\nu']);
    assert.equal(ps[2]!.messages.length, 2);
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"prompt": "a"}\n{"prompt": 3}\n');
    await assert.rejects(readJsonlPrompts(bad), (e: unknown) => e instanceof DatasetError && e.message.startsWith(`${bad}:2:`) && /"prompt"/.test(e.message));
    writeFileSync(bad, '{"prompt": "a"}\n{oops\n');
    await assert.rejects(readJsonlPrompts(bad), new RegExp(`${bad}:2: not valid JSON`));
    writeFileSync(bad, '{"messages": [{"role": "robot", "content": "x"}]}\n');
    await assert.rejects(readJsonlPrompts(bad), /:1: field "messages\[0\]"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('prompts are identical across backends for the same dataset and seed (llamacpp, command, managed server)', { timeout: 600_000 }, async () => {
  const common = { n: 5, seed: 11, warmup: { cv_threshold: 0.5, window: 2, min_prompts: 0, max_prompts: 0 }, baseline: { enabled: false, duration_seconds: 0, reuse_seconds: 0 } };
  const fixtureServer = new URL('../backends/fixtures/sse-server.ts', import.meta.url).pathname;
  const fixtureCommand = new URL('../backends/fixtures/command-fixture.mjs', import.meta.url).pathname;

  const llama = makeRun(baseConfig(common));
  const cmd = makeRun(baseConfig({ ...common, backend: 'command', model: 'x', params: commandParamsSchema.parse({ argv: [process.execPath, fixtureCommand, 'good', '{records_file}'] }) }));
  const srv = makeRun(baseConfig({ ...common, backend: 'vllm', model: 'x', params: vllmParamsSchema.parse({ startup_timeout_seconds: 60 }) }));
  try {
    const requests = join(srv.root, 'server-requests.jsonl');
    const results = await Promise.all([
      runWorkerChild(llama.specPath),
      runWorkerChild(cmd.specPath),
      runWorkerChild(srv.specPath, {
        env: {
          [overrideEnvName('vllm')]: JSON.stringify([process.execPath, ...nodeArgsFor(fixtureServer)]),
          FIXTURE_SCRIPT: JSON.stringify({ ttftMs: 2, itlMs: 1, tokens: 3 }),
          FIXTURE_REQUESTS: requests,
        },
      }),
    ]);
    for (const r of results) assert.equal(r.exitCode, 0, r.stderr);
    const llamaIdx = readFileSync(join(llama.spec.run_dir, 'requests.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { prompt_index: number }).prompt_index);
    const cmdPrompts = readFileSync(join(cmd.spec.run_dir, 'prompts-1.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { index: number; text: string });
    const srvTexts = readFileSync(requests, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { messages: Array<{ content: string }> }).messages.at(-1)!.content);
    assert.equal(cmdPrompts.length, 5);
    assert.deepEqual(llamaIdx, cmdPrompts.map((p) => p.index));
    assert.deepEqual(srvTexts, cmdPrompts.map((p) => p.text));
    assert.deepEqual(cmdPrompts.map((p) => p.text), cmdPrompts.map((p) => BUILTIN_PROMPTS[p.index]), 'real prompts, not placeholders');
  } finally {
    llama.cleanup();
    cmd.cleanup();
    srv.cleanup();
  }
});
