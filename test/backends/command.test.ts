import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commandBackend, parseRecordsFile, substituteArgv } from '../../src/backends/command/index.ts';
import { ClassifiedError } from '../../src/backends/errors.ts';
import { commandParamsSchema } from '../../src/backends/specs/command.ts';
import { promptFromText } from '../../src/worker/workload.ts';
import { baseConfig, makeRun } from '../worker/helpers.ts';

const fixture = new URL('./fixtures/command-fixture.mjs', import.meta.url).pathname;

async function runCommand(mode: string, signal?: AbortSignal) {
  const config = baseConfig({ backend: 'command', model: 'my-model', params: commandParamsSchema.parse({ argv: [process.execPath, fixture, mode, '{records_file}'] }) });
  const run = makeRun(config);
  const ac = new AbortController();
  try {
    const { session } = await commandBackend.load(config, { runDir: run.spec.run_dir, signal: ac.signal, log: () => {} });
    assert.equal(session.handlesWarmup, true);
    const prompts = ['one two three', 'four five', 'six'].map((t, i) => promptFromText(i, t));
    const seen: number[] = [];
    const records = await session.run({ prompts, max_new_tokens: 5, concurrency: 1, seed: 3, greedy: true }, (r) => seen.push(r.prompt_index), signal);
    return { records, seen, runDir: run.spec.run_dir };
  } finally {
    run.cleanup();
  }
}

test('good records: parsed, counted, callbacks fired', { timeout: 60_000 }, async () => {
  const { records, seen } = await runCommand('good');
  assert.equal(records.length, 3);
  assert.deepEqual(seen, [0, 1, 2]);
  assert.deepEqual(records.map((r) => r.input_tokens), [3, 2, 1]);
  for (const r of records) {
    assert.equal(r.output_tokens, 5);
    assert.equal(r.token_times_ms.length, 4);
    assert.equal(r.first_content_token_ms, r.first_token_ms, 'defaults to the first token');
  }
});

const isType = (t: string, re: RegExp) => (err: unknown) => err instanceof ClassifiedError && err.errorType === t && re.test(err.message);

test('a malformed records file is an InvalidResult naming file and line', { timeout: 60_000 }, async () => {
  await assert.rejects(runCommand('malformed'), isType('InvalidResult', /records-1\.jsonl:2: records file line is not valid JSON/));
});

test('a record missing a field is an InvalidResult naming the field', { timeout: 60_000 }, async () => {
  await assert.rejects(runCommand('missing-field'), isType('InvalidResult', /:1: field "output_tokens"/));
});

test('no records file is an InvalidResult', { timeout: 60_000 }, async () => {
  await assert.rejects(runCommand('none'), isType('InvalidResult', /wrote no records file/));
});

test('a non-zero exit is a BackendError quoting the program output', { timeout: 60_000 }, async () => {
  await assert.rejects(runCommand('fail'), isType('BackendError', /exited with code 2[\s\S]*device-side assert/));
});

test('a hanging program is killed when the run is aborted', { timeout: 60_000 }, async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort('stall timeout (test)'), 1500);
  const t0 = Date.now();
  await assert.rejects(runCommand('hang', ac.signal), isType('BackendError', /command stopped: stall timeout/));
  assert.ok(Date.now() - t0 < 30_000);
});

test('argv placeholders are substituted as whole values, never through a shell', () => {
  const argv = substituteArgv(['python', 'gen.py', '--model={model}', '{prompts_file}', '$(rm -rf /)'], { model: 'a b; c', prompts_file: '/p' });
  assert.deepEqual(argv, ['python', 'gen.py', '--model=a b; c', '/p', '$(rm -rf /)']);
  assert.throws(() => substituteArgv(['{nope}'], {}), /unknown placeholder \{nope\}/);
});

test('records parser checks time order', () => {
  const line = JSON.stringify({ prompt_index: 0, input_tokens: 1, output_tokens: 1, start_ms: 10, first_token_ms: 5, end_ms: 20 });
  assert.throws(() => parseRecordsFile('r.jsonl', line), /r\.jsonl:1: field "first_token_ms" is outside/);
});
