// worker.py's transformers path, against a scripted stand-in for transformers (fixtures/
// fake_transformers, first on PYTHONPATH): this machine's Python has torch but no transformers.
// Checks what llem does around generate(): chat template, left padding, token counts without
// padding or EOS, streamer timestamps, the from_pretrained arguments, and missing models.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClassifiedError } from '../../src/backends/errors.ts';
import { loadPytorch } from '../../src/backends/pytorch/index.ts';
import type { Prompt, RequestRecord } from '../../src/backends/types.ts';
import { fixture, noopCtx, tempDir, tinyConfig } from './helpers.ts';

interface FakeLogLine {
  event: string;
  [key: string]: unknown;
}

const PROMPTS: Prompt[] = ['Hi', 'What is the capital of France?', 'Été'].map((text, index) => ({
  index,
  text,
  messages: [{ role: 'user', content: text }],
}));
const templated = (p: Prompt): string => `<|user|>${p.text}<|assistant|>`;
const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

describe('pytorch transformers path (scripted transformers)', { timeout: 300_000 }, () => {
  const dir = tempDir();
  const logPath = join(dir.path, 'fake-transformers.jsonl');
  const env = { ...process.env, PYTHONPATH: fixture('fake_transformers'), FAKE_TRANSFORMERS_LOG: logPath, HF_HOME: join(dir.path, 'hf') };
  const fakeLog = (): FakeLogLine[] => readFileSync(logPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as FakeLogLine);

  function modelDir(name: string, config: Record<string, unknown>): string {
    const path = join(dir.path, name);
    mkdirSync(path, { recursive: true });
    writeFileSync(join(path, 'config.json'), JSON.stringify(config));
    return path;
  }

  let chatModel: string;
  before(() => {
    // Prompt 0 (templated) ends with EOS after 3 tokens; the others run to max_new_tokens.
    chatModel = modelDir('chat-model', { chat_template: '{{ messages }}', eos_after: { [bytes(templated(PROMPTS[0]!))]: 3 } });
  });
  after(() => dir.remove());

  test('chat template, left padding, counts without padding or EOS, scripted tokens, from_pretrained arguments', async () => {
    const { session, info } = await loadPytorch(
      tinyConfig({ model: chatModel, precision: 'bf16' }, { attn_implementation: 'sdpa', device_map: 'cpu' }),
      noopCtx(dir.path),
      { worker: { env } },
    );
    try {
      assert.equal(info.model_builtin, false);
      assert.equal(info.model_path, chatModel);
      assert.equal(info.extra_versions?.transformers, '0.0-fake');
      assert.equal(info.extra_versions?.['pytorch.dtype'], 'bfloat16');
      const records: RequestRecord[] = await session.run({ prompts: PROMPTS, max_new_tokens: 6, concurrency: 2, seed: 1, greedy: true });
      assert.deepEqual(records.map((r) => r.input_tokens), PROMPTS.map((p) => bytes(templated(p))), 'templated, no BOS added, padding not counted');
      assert.deepEqual(records.map((r) => r.output_tokens), [3, 6, 6], 'EOS and the padding after it are not counted');
      // Batch [0, 1] then [2]: row r emits 100 + r + step.
      assert.deepEqual(session.lastRawRecords.map((r) => r.output_token_ids), [
        [100, 101, 102],
        [101, 102, 103, 104, 105, 106],
        [100, 101, 102, 103, 104, 105],
      ]);
      assert.deepEqual(session.lastRawRecords.map((r) => r.hit_eos), [true, false, false]);
      for (const r of records) {
        assert.equal(r.token_times_ms.length, r.output_tokens - 1);
        let previous = r.first_token_ms!;
        assert.ok(previous >= r.start_ms);
        for (const t of r.token_times_ms) {
          assert.ok(t >= previous);
          previous = t;
        }
        assert.ok(r.end_ms >= previous);
      }

      const log = fakeLog();
      const model = log.find((l) => l.event === 'model')!;
      assert.deepEqual(model.kwargs, { local_files_only: true, torch_dtype: 'torch.bfloat16', attn_implementation: 'sdpa' });
      const tokenize = log.filter((l) => l.event === 'tokenize');
      assert.deepEqual(tokenize.map((t) => t.padding_side), ['left', 'left']);
      assert.deepEqual(tokenize.map((t) => t.add_special_tokens), [false, false]);
      assert.deepEqual(tokenize[0]!.texts, [templated(PROMPTS[0]!), templated(PROMPTS[1]!)]);
      const generate = log.filter((l) => l.event === 'generate');
      assert.deepEqual(generate.map((g) => g.batch), [2, 1]);
      assert.deepEqual(generate[0]!.kwargs, ['do_sample', 'num_beams'], 'greedy: do_sample False, one beam');
    } finally {
      await session.dispose();
    }
  });

  test('no chat template: the prompt text with the tokenizer\'s special tokens', async () => {
    const plain = modelDir('plain-model', {});
    const { session } = await loadPytorch(tinyConfig({ model: plain, precision: 'fp32' }), noopCtx(dir.path), { worker: { env } });
    try {
      const records = await session.run({ prompts: PROMPTS, max_new_tokens: 2, concurrency: 3, seed: 1, greedy: true });
      assert.deepEqual(records.map((r) => r.input_tokens), PROMPTS.map((p) => bytes(p.text) + 1));
      assert.deepEqual(records.map((r) => r.output_tokens), [2, 2, 2]);
    } finally {
      await session.dispose();
    }
  });

  test('a Hugging Face id missing from the cache: PreflightError with the id and the cache tried', async () => {
    const err = await loadPytorch(tinyConfig({ model: 'acme/not-downloaded-7b' }), noopCtx(dir.path), { worker: { env } }).then(
      () => assert.fail('expected a PreflightError'),
      (e: unknown) => e as ClassifiedError,
    );
    assert.ok(err instanceof ClassifiedError);
    assert.equal(err.errorType, 'PreflightError');
    assert.match(err.message, /model "acme\/not-downloaded-7b" is not in the Hugging Face cache .*hf.*hub and downloads are off \(set LLEM_ALLOW_DOWNLOAD=1/);
  });

  test('a local path without config.json: PreflightError with the exact path tried', async () => {
    const empty = join(dir.path, 'empty-model');
    mkdirSync(empty, { recursive: true });
    const err = await loadPytorch(tinyConfig({ model: empty }), noopCtx(dir.path), { worker: { env } }).then(
      () => assert.fail('expected a PreflightError'),
      (e: unknown) => e as ClassifiedError,
    );
    assert.equal(err.errorType, 'PreflightError');
    assert.ok(err.message.includes(`(tried ${join(empty, 'config.json')})`), err.message);
  });
});
