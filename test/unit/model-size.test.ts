// How big a model is (src/backends/model-size.ts), for the estimate and the run timeout: the
// parameter count in a hub id's name, and from a config.json. Folders of weights and the hub cache
// are covered through `llem plan` in test/runner/lifecycle.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { paramsFromConfigJson, paramsFromName } from '../../src/backends/model-size.ts';

describe('model size', () => {
  it('a parameter count is read from a hub id only as a whole token of its name', () => {
    const table: Array<[string, number | null]> = [
      ['meta-llama/Llama-3-70B-Instruct', 70e9],
      ['Qwen/Qwen2.5-0.5B', 0.5e9],
      ['mistralai/Mixtral-8x7B-v0.1', 56e9],
      ['facebook/opt-125m', 125e6],
      ['gpt2', null],
      ['bigscience/bloom-7b1', null],
    ];
    for (const [id, params] of table) assert.equal(paramsFromName(id), params, id);
  });

  it('a Llama-7B-shaped config.json is about 6.7 billion parameters; missing fields say nothing', () => {
    const p = paramsFromConfigJson({ hidden_size: 4096, num_hidden_layers: 32, intermediate_size: 11008, vocab_size: 32000, num_attention_heads: 32 })!;
    assert.ok(p > 6.5e9 && p < 6.9e9, String(p));
    assert.equal(paramsFromConfigJson({ hidden_size: 4096 }), null);
  });
});
