// Prompts of a run. Pure apart from reading a .jsonl file: the same dataset and seed give the
// same prompts in the same order for every backend (the Python ancestor silently fed one backend
// placeholder prompts; tests pin that this cannot happen here).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { DatasetSpec } from '../study/types.ts';
import type { Prompt } from '../backends/types.ts';
import { BUILTIN_PROMPTS } from './datasets/builtin.ts';
import { mulberry32 } from '../prng.ts';

export class DatasetError extends Error {}

export function promptFromText(index: number, text: string): Prompt {
  return { index, text, messages: [{ role: 'user', content: text }] };
}

/** Reads a .jsonl dataset: one object per line with `prompt` or `text` (string) or `messages`. */
export async function readJsonlPrompts(path: string): Promise<Prompt[]> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (err) {
    throw new DatasetError(`${path}: cannot read dataset: ${(err as Error).message}`);
  }
  const prompts: Prompt[] = [];
  const lines = raw.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const where = `${path}:${i + 1}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new DatasetError(`${where}: not valid JSON (${(err as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new DatasetError(`${where}: each line must be a JSON object`);
    const rec = obj as Record<string, unknown>;
    const index = prompts.length;
    if (typeof rec.prompt === 'string' || typeof rec.text === 'string') {
      const text = (typeof rec.prompt === 'string' ? rec.prompt : rec.text) as string;
      if (text.length === 0) throw new DatasetError(`${where}: field "prompt" is empty`);
      prompts.push(promptFromText(index, text));
    } else if (Array.isArray(rec.messages)) {
      const messages: Prompt['messages'] = [];
      rec.messages.forEach((m, j) => {
        const msg = m as Record<string, unknown>;
        if (!msg || !['system', 'user', 'assistant'].includes(msg.role as string) || typeof msg.content !== 'string') {
          throw new DatasetError(`${where}: field "messages[${j}]" must be {role: system|user|assistant, content: string}`);
        }
        messages.push({ role: msg.role as 'system' | 'user' | 'assistant', content: msg.content });
      });
      if (messages.length === 0) throw new DatasetError(`${where}: field "messages" is empty`);
      prompts.push({ index, text: messages.map((m) => m.content).join('\n\n'), messages });
    } else {
      throw new DatasetError(`${where}: needs a string field "prompt" (or "text") or an array field "messages"`);
    }
  }
  if (prompts.length === 0) throw new DatasetError(`${path}: dataset has no prompts`);
  return prompts;
}

const SYNTHETIC_WORDS = (
  'time person year way day thing man world life hand part child eye woman place work week case point ' +
  'government company number group problem fact river energy light water city story music answer system ' +
  'question market paper table window garden letter road morning evening summer winter mountain ocean'
).split(' ');

/**
 * Synthetic prompts of about `inputTokens` tokens each (one common word ≈ one token for the
 * tokenizers we know; the exact count is recorded per request from the backend's own tokenizer).
 */
export function syntheticPrompts(inputTokens: number, count: number, seed: number): Prompt[] {
  const rand = mulberry32(seed ^ 0x5eed);
  const prompts: Prompt[] = [];
  for (let i = 0; i < count; i++) {
    const words: string[] = [];
    for (let w = 0; w < Math.max(1, inputTokens); w++) words.push(SYNTHETIC_WORDS[Math.floor(rand() * SYNTHETIC_WORDS.length)]!);
    prompts.push(promptFromText(i, words.join(' ')));
  }
  return prompts;
}

/** Fisher-Yates with a seeded PRNG. */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  const rand = mulberry32(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** The whole dataset, in file order (indexes are positions in the dataset). */
export async function datasetPrompts(dataset: DatasetSpec, seed: number, syntheticCount: number): Promise<Prompt[]> {
  switch (dataset.kind) {
    case 'builtin':
      if (dataset.name !== 'builtin' && dataset.name !== 'default') throw new DatasetError(`unknown builtin dataset "${dataset.name}"`);
      return BUILTIN_PROMPTS.map((t, i) => promptFromText(i, t));
    case 'jsonl':
      return readJsonlPrompts(dataset.path);
    case 'synthetic':
      return syntheticPrompts(dataset.input_tokens, syntheticCount, seed);
  }
}

export interface RunPrompts {
  /** The `n` measured prompts, in the seeded order (cycling through the dataset if it is shorter). */
  measured: Prompt[];
  /** Warmup prompts (a differently seeded order of the same dataset). */
  warmup: Prompt[];
  /** Identity of the whole dataset as read (every prompt's messages, in file order), so two studies
   * can be checked for the same data: `sha256:<hex>`. */
  dataset_sha256: string;
  dataset_prompts: number;
}

/** sha256 of the prompts' chat messages in order (the text is derived from them). */
export function promptSetHash(prompts: readonly Prompt[]): string {
  const h = createHash('sha256');
  for (const p of prompts) h.update(JSON.stringify(p.messages)).update('\n');
  return `sha256:${h.digest('hex')}`;
}

export async function buildRunPrompts(dataset: DatasetSpec, seed: number, n: number, warmupMax: number): Promise<RunPrompts> {
  const all = await datasetPrompts(dataset, seed, Math.max(n, 1));
  const take = (order: Prompt[], count: number): Prompt[] => Array.from({ length: count }, (_, i) => order[i % order.length]!);
  return {
    measured: take(seededShuffle(all, seed), n),
    warmup: take(seededShuffle(all, seed + 1), warmupMax),
    dataset_sha256: promptSetHash(all),
    dataset_prompts: all.length,
  };
}
