// The one streaming OpenAI-compatible client, shared by `openai` and the managed servers (vllm,
// sglang, trtllm, llama-server). Server-sent events over fetch; every chunk is timestamped on
// arrival with performance.now(). TTFT counts the first token of any kind (reasoning included);
// the first content token is recorded separately.
import { performance } from 'node:perf_hooks';
import type { RequestRecord, Workload, Prompt } from '../types.ts';
import { mulberry32 } from '../../prng.ts';

export type Arrival =
  | { kind: 'concurrency' }
  /** Open-loop arrivals at `rate_per_s`: constant gaps, or exponential gaps (Poisson) seeded. */
  | { kind: 'constant' | 'poisson'; rate_per_s: number };

export interface OpenAiClientOptions {
  /** e.g. http://127.0.0.1:8000/v1 (no trailing slash needed). */
  baseUrl: string;
  endpoint: 'chat' | 'completions';
  model: string;
  apiKey: string | null;
  requestTimeoutMs: number;
  extraBody?: Record<string, unknown>;
  arrival?: Arrival;
}

/** Arrival offsets (ms from the workload start) for an open-loop rate, seeded. */
export function arrivalOffsetsMs(count: number, arrival: Arrival, seed: number): number[] {
  if (arrival.kind === 'concurrency') return new Array<number>(count).fill(0);
  const gapMs = 1000 / arrival.rate_per_s;
  const rand = mulberry32(seed ^ 0xa11);
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) {
    out.push(t);
    t += arrival.kind === 'constant' ? gapMs : -Math.log(1 - rand()) * gapMs;
  }
  return out;
}

interface ChunkContent {
  /** Any generated text in this chunk (reasoning or content). */
  any: boolean;
  content: boolean;
  usage: { prompt_tokens?: number; completion_tokens?: number } | null;
  error: string | null;
}

export function parseChunk(data: string, endpoint: 'chat' | 'completions'): ChunkContent {
  const obj = JSON.parse(data) as Record<string, unknown>;
  if (obj.error) {
    const e = obj.error as { message?: string } | string;
    return { any: false, content: false, usage: null, error: typeof e === 'string' ? e : (e.message ?? JSON.stringify(e)) };
  }
  const usage = (obj.usage as ChunkContent['usage']) ?? null;
  const choice = (obj.choices as Array<Record<string, unknown>> | undefined)?.[0];
  let content = false;
  let reasoning = false;
  if (choice) {
    if (endpoint === 'chat') {
      const delta = (choice.delta ?? {}) as Record<string, unknown>;
      content = typeof delta.content === 'string' && delta.content.length > 0;
      reasoning =
        (typeof delta.reasoning_content === 'string' && delta.reasoning_content.length > 0) ||
        (typeof delta.reasoning === 'string' && delta.reasoning.length > 0);
    } else {
      content = typeof choice.text === 'string' && choice.text.length > 0;
    }
  }
  return { any: content || reasoning, content, usage, error: null };
}

export function requestBody(
  prompt: Prompt,
  workload: Pick<Workload, 'max_new_tokens' | 'greedy' | 'seed'>,
  opts: Pick<OpenAiClientOptions, 'endpoint' | 'model' | 'extraBody'>,
): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model: opts.model,
    max_tokens: workload.max_new_tokens,
    stream: true,
    stream_options: { include_usage: true },
    seed: workload.seed + prompt.index,
    ...(workload.greedy ? { temperature: 0 } : {}),
  };
  if (opts.endpoint === 'chat') body.messages = prompt.messages;
  else body.prompt = prompt.text;
  return { ...body, ...(opts.extraBody ?? {}) };
}

/** One streamed request; never throws for server trouble: the record carries the error. */
export async function streamRequest(
  prompt: Prompt,
  workload: Pick<Workload, 'max_new_tokens' | 'greedy' | 'seed'>,
  opts: OpenAiClientOptions,
  signal?: AbortSignal,
): Promise<RequestRecord> {
  const record: RequestRecord = {
    prompt_index: prompt.index,
    input_tokens: 0,
    output_tokens: 0,
    start_ms: performance.now(),
    first_token_ms: null,
    first_content_token_ms: null,
    token_times_ms: [],
    end_ms: 0,
    error: null,
  };
  const url = `${opts.baseUrl.replace(/\/+$/, '')}/${opts.endpoint === 'chat' ? 'chat/completions' : 'completions'}`;
  const timeout = AbortSignal.timeout(opts.requestTimeoutMs);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let chunks = 0;
  let usageOut: number | null = null;
  let usageIn: number | null = null;
  let done = false;
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}),
      },
      body: JSON.stringify(requestBody(prompt, workload, opts)),
      signal: combined,
    });
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      throw new Error(`HTTP ${res.status} from ${url}: ${text.slice(0, 500)}`);
    }
    const decoder = new TextDecoder();
    let buffer = '';
    const reader = res.body.getReader();
    outer: for (;;) {
      const { value, done: streamDone } = await reader.read();
      if (streamDone) break;
      const now = performance.now();
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') {
          done = true;
          break outer;
        }
        if (data === '') continue;
        const c = parseChunk(data, opts.endpoint);
        if (c.error !== null) throw new Error(`server error mid-stream: ${c.error}`);
        if (c.usage) {
          if (typeof c.usage.completion_tokens === 'number') usageOut = c.usage.completion_tokens;
          if (typeof c.usage.prompt_tokens === 'number') usageIn = c.usage.prompt_tokens;
        }
        if (c.any) {
          chunks++;
          if (record.first_token_ms === null) record.first_token_ms = now;
          else record.token_times_ms.push(now);
        }
        if (c.content && record.first_content_token_ms === null) record.first_content_token_ms = now;
      }
    }
    if (!done) throw new Error('stream ended without [DONE]');
  } catch (err) {
    if (signal?.aborted) throw err;
    record.error = timeout.aborted ? `request timed out after ${opts.requestTimeoutMs} ms` : (err as Error).message;
  }
  record.end_ms = performance.now();
  // The server's own count when it reports usage; otherwise one token per content chunk.
  record.output_tokens = usageOut ?? chunks;
  record.input_tokens = usageIn ?? 0;
  return record;
}

/** Runs a workload: `concurrency` requests in flight, or open-loop arrivals at a rate. */
export async function runOpenAiWorkload(
  workload: Workload,
  opts: OpenAiClientOptions,
  onRequest?: (r: RequestRecord) => void,
  signal?: AbortSignal,
): Promise<RequestRecord[]> {
  const records: RequestRecord[] = [];
  const arrival = opts.arrival ?? { kind: 'concurrency' };
  if (arrival.kind === 'concurrency') {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < workload.prompts.length && !signal?.aborted) {
        const r = await streamRequest(workload.prompts[next++]!, workload, opts, signal);
        records.push(r);
        onRequest?.(r);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(workload.concurrency, workload.prompts.length)) }, lane));
  } else {
    const offsets = arrivalOffsetsMs(workload.prompts.length, arrival, workload.seed);
    const t0 = performance.now();
    await Promise.all(
      workload.prompts.map(async (p, i) => {
        const wait = t0 + offsets[i]! - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (signal?.aborted) return;
        const r = await streamRequest(p, workload, opts, signal);
        records.push(r);
        onRequest?.(r);
      }),
    );
  }
  return records.sort((a, b) => a.start_ms - b.start_ms);
}
