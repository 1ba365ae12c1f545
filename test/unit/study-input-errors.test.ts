import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planStudy } from '../../src/study/plan.ts';
import { withStudy, inputError } from './study-helpers.ts';

const TINY = 'model: builtin:tiny-random\n';
const fixtures = fileURLToPath(new URL('../fixtures/study/', import.meta.url));

function planFiles(files: Record<string, string | Buffer>, name = 'study.yaml') {
  return withStudy(files, (dir) => planStudy(join(dir, name), { gpuFreeMemoryBytes: null }));
}

describe('bad input names file:line:col, the field and what was expected', () => {
  const table: Array<{ name: string; yaml: string; expect: RegExp }> = [
    { name: 'YAML syntax error', yaml: `backend: llamacpp\n${TINY}sweep:\n  batch_size: [1, 2\nn: 3\n`, expect: /study\.yaml:\d+:\d+: YAML syntax error/ },
    { name: 'wrong type', yaml: `backend: llamacpp\n${TINY}n: ten\n`, expect: /study\.yaml:3:4: n: expected number, got "ten"/ },
    { name: 'negative count', yaml: `backend: llamacpp\n${TINY}batch_size: 0\n`, expect: /study\.yaml:3:13: batch_size: expected a number >= 1, got 0/ },
    { name: 'unknown key with did-you-mean', yaml: `backend: llamacpp\n${TINY}batch_sise: 2\n`, expect: /study\.yaml:3:1: batch_sise: unknown field "batch_sise" \(did you mean "batch_size"\?\)/ },
    { name: 'unknown key in a backend section', yaml: `backend: llamacpp\n${TINY}llamacpp:\n  thread: 2\n`, expect: /study\.yaml:4:3: llamacpp\.thread: unknown field "thread" \(did you mean "threads"\?\)/ },
    { name: 'unknown nested key', yaml: `backend: llamacpp\n${TINY}warmup:\n  max_prompt: 3\n`, expect: /warmup\.max_prompt: unknown field "max_prompt" \(did you mean "max_prompts"\?\)/ },
    { name: 'unknown backend', yaml: `backend: vlm\n${TINY}`, expect: /study\.yaml:1:10: backend: expected one of .*got "vlm" \(did you mean "vllm"\?\)/ },
    { name: 'unknown sweep key', yaml: `backend: llamacpp\n${TINY}sweep:\n  batchsize: [1]\n`, expect: /study\.yaml:4:3: sweep\.batchsize: unknown sweep key "batchsize" \(did you mean "batch_size"\?\)/ },
    { name: 'bad enum with did-you-mean', yaml: `backend: llamacpp\n${TINY}execution:\n  cycle_order: shufled\n`, expect: /execution\.cycle_order: expected one of sequential, interleaved, shuffled, got "shufled" \(did you mean "shuffled"\?\)/ },
    { name: 'missing backend', yaml: TINY, expect: /study\.yaml:\d+:\d+: backend: required field is missing/ },
    { name: 'missing required backend field', yaml: `backend: openai\nmodel: gpt\n`, expect: /openai\.base_url: required field is missing/ },
    { name: 'unknown scoped sweep param', yaml: `backend: llamacpp\n${TINY}sweep:\n  llamacpp.thread: [1, 2]\n`, expect: /^[^\n]*study\.yaml:4:3: sweep\.llamacpp\.thread: llamacpp\.thread: unknown field "thread" \(did you mean "threads"\?\)[^\n]*$/ },
    { name: 'bad URL', yaml: `backend: openai\nmodel: m\nopenai:\n  base_url: localhost\n`, expect: /study\.yaml:4:13: openai\.base_url: expected a URL/ },
    { name: 'top level is not a mapping', yaml: '- a\n- b\n', expect: /study\.yaml:1:1: expected a mapping/ },
    { name: 'duplicate key', yaml: `backend: llamacpp\n${TINY}n: 1\nn: 2\n`, expect: /study\.yaml:4:1: YAML syntax error: Map keys must be unique/ },
  ];
  for (const row of table) {
    it(row.name, async () => {
      const err = await inputError(planFiles({ 'study.yaml': row.yaml }));
      assert.match(err.message, row.expect);
      assert.ok(err.issues.length >= 1);
    });
  }

  it('reports every problem of a file, not the first', async () => {
    const err = await inputError(planFiles({ 'study.yaml': `backend: llamacpp\n${TINY}n: x\nseed: -1\nwarmpu: {}\n` }));
    assert.equal(err.issues.length, 3);
  });

  it('an alias bomb is rejected quickly', async () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const cur = String.fromCharCode(97 + i);
      levels.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const started = Date.now();
    const err = await inputError(planFiles({ 'study.yaml': levels.join('\n') + '\n' }));
    assert.match(err.message, /aliases expand too much/);
    assert.ok(Date.now() - started < 20_000, 'rejected without expanding 9^9 nodes');
  });

  it('a base cycle is an error naming the chain', async () => {
    const err = await inputError(planStudy(join(fixtures, 'base-cycle-a.yaml')));
    assert.match(err.message, /base-cycle-b\.yaml:1:7: base: base chain has a cycle: .*base-cycle-a\.yaml → .*base-cycle-b\.yaml → .*base-cycle-a\.yaml/);
  });

  it('a study naming itself as base is a cycle', async () => {
    const err = await inputError(planFiles({ 'study.yaml': `base: ./study.yaml\nbackend: llamacpp\n${TINY}` }));
    assert.match(err.message, /cycle/);
  });

  it('a missing base file is an error at the base line', async () => {
    const err = await inputError(planFiles({ 'study.yaml': `backend: llamacpp\n${TINY}base: nowhere.yaml\n` }));
    assert.match(err.message, /study\.yaml:3:7: base: base file not found: .*nowhere\.yaml/);
  });

  it('a missing study file is bad input', async () => {
    const err = await inputError(planStudy('/nonexistent/study.yaml'));
    assert.match(err.message, /\/nonexistent\/study\.yaml: file not found/);
  });

  it('a non-UTF-8 file names the line of the first bad byte', async () => {
    const bytes = Buffer.concat([Buffer.from(`backend: llamacpp\n${TINY}name: caf`), Buffer.from([0xe9]), Buffer.from('\n')]);
    const err = await inputError(planFiles({ 'study.yaml': bytes }));
    assert.match(err.message, /study\.yaml:3:10: expected a UTF-8 text file/);
  });

  it('the error class carries exit code 2 for the CLI', async () => {
    const err = await inputError(planFiles({ 'study.yaml': 'n: [' }));
    assert.equal(err.exitCode, 2);
    assert.equal(err.name, 'StudyInputError');
  });
});
