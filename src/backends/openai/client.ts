// The one streaming OpenAI-compatible client, shared by `openai` and the managed servers (vllm,
// sglang, trtllm, llama-server). Server-sent events over fetch; every chunk is timestamped on
// arrival with performance.now(). TTFT counts the first token of any kind (reasoning included);
// the first content token is recorded separately.
import { performance } from 'node:perf_hooks';
import type { RequestRecord, Workload, Prompt } from '../types.ts';
import { arrivalOffsetsMs } from '../../arrival.ts';

export { arrivalOffsetsMs };

export interface OpenAiClientOptions {
  /** e.g. http://127.0.0.1:8000/v1 (no trailing slash needed). */
  baseUrl: string;
  endpoint: 'chat' | 'completions';
  model: string;
  apiKey: string | null;
  requestTimeoutMs: number;
  extraBody?: Record<string, unknown>;
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

/** FIFO counting semaphore: the batch_size in-flight slots of an open-loop workload. */
class Slots {
  private waiting: Array<() => void> = [];
  constructor(private free: number) {}
  acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/**
 * Runs a workload. Closed loop (no `workload.arrival`): `concurrency` requests in flight, each lane
 * sending its next request when the previous one ends. Open loop: requests are scheduled by the
 * seeded arrival process at the offered rate and sent in schedule order as soon as one of the
 * `concurrency` in-flight slots is free; each record carries its `scheduled_ms`, so the queueing
 * delay (start_ms − scheduled_ms) is known.
 */
export async function runOpenAiWorkload(
  workload: Workload,
  opts: OpenAiClientOptions,
  onRequest?: (r: RequestRecord) => void,
  signal?: AbortSignal,
): Promise<RequestRecord[]> {
  const records: RequestRecord[] = [];
  const cap = Math.max(1, Math.min(workload.concurrency, workload.prompts.length));
  if (!workload.arrival) {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < workload.prompts.length && !signal?.aborted) {
        const r = await streamRequest(workload.prompts[next++]!, workload, opts, signal);
        records.push(r);
        onRequest?.(r);
      }
    };
    await Promise.all(Array.from({ length: cap }, lane));
    return records.sort((a, b) => a.start_ms - b.start_ms);
  }
  const offsets = arrivalOffsetsMs(workload.prompts.length, workload.arrival, workload.seed);
  const slots = new Slots(cap);
  const inFlight: Array<Promise<void>> = [];
  const t0 = performance.now();
  for (let i = 0; i < workload.prompts.length && !signal?.aborted; i++) {
    const scheduled = t0 + offsets[i]!;
    // Node's timers may fire up to a millisecond early: never send before the schedule.
    for (let wait = scheduled - performance.now(); wait > 0; wait = scheduled - performance.now()) {
      await new Promise((r) => setTimeout(r, Math.ceil(wait)));
    }
    await slots.acquire();
    if (signal?.aborted) break;
    inFlight.push(
      streamRequest(workload.prompts[i]!, workload, opts, signal)
        .then((r) => {
          r.scheduled_ms = scheduled;
          records.push(r);
          onRequest?.(r);
        })
        .finally(() => slots.release()),
    );
  }
  await Promise.all(inFlight);
  return records.sort((a, b) => a.start_ms - b.start_ms);
}
