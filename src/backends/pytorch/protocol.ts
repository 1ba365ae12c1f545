// The line protocol between the measuring child and src/backends/pytorch/worker.py: one JSON object
// per line each way, `v: 1` on every message. Python → child messages are zod-checked here; a line
// that fails is a BackendError naming the line (see process.ts).
import { z } from 'zod';

export const PYTORCH_PROTOCOL_VERSION = 1 as const;

const v = z.literal(PYTORCH_PROTOCOL_VERSION);
const version = z.string().nullable();
const cmdId = z.number().int();

export const helloSchema = z.object({
  v,
  type: z.literal('hello'),
  protocol: z.number().int(),
  pid: z.number().int(),
  python: z.string(),
  python_executable: z.string(),
  torch: version,
  torch_error: z.string().nullable(),
  transformers: version,
  transformers_error: z.string().nullable(),
  accelerate: version,
  bitsandbytes: version,
  flash_attn: version,
  cuda_available: z.boolean(),
  cuda_version: version,
  cuda_device_count: z.number().int(),
  cuda_devices: z.array(z.string()),
  /** time.monotonic_ns() when hello was written; checks that both sides share CLOCK_MONOTONIC. */
  monotonic_ns: z.number(),
});
export type PythonHello = z.infer<typeof helloSchema>;

/** One finished request, times in Python's time.monotonic_ns(). */
export const pythonRequestRecordSchema = z.object({
  prompt_index: z.number().int(),
  /** sha256 of the prompt text as received (before any chat template), to prove which prompt ran. */
  prompt_sha256: z.string(),
  input_tokens: z.number().int().min(0),
  output_tokens: z.number().int().min(0),
  output_token_ids: z.array(z.number().int()),
  start_ns: z.number(),
  /** Arrival of each output token on the host (EOS and anything after it excluded). */
  token_ns: z.array(z.number()),
  end_ns: z.number(),
  hit_eos: z.boolean(),
});
export type PythonRequestRecord = z.infer<typeof pythonRequestRecordSchema>;

export const pythonMessageSchema = z.discriminatedUnion('type', [
  helloSchema,
  z.object({
    v,
    type: z.literal('loaded'),
    id: cmdId,
    model_path: z.string().nullable(),
    builtin: z.boolean(),
    device: z.string(),
    dtype: z.string(),
    parameters: z.number().int(),
    chat_template: z.boolean(),
    load_s: z.number(),
    num_threads: z.number().int(),
  }),
  z.object({ v, type: z.literal('request'), id: cmdId, record: pythonRequestRecordSchema }),
  z.object({ v, type: z.literal('progress'), id: cmdId, tokens: z.number().int() }),
  z.object({ v, type: z.literal('generated'), id: cmdId, requests: z.number().int() }),
  z.object({
    v,
    type: z.literal('synced'),
    id: cmdId,
    edge: z.enum(['start', 'end']),
    memory_peak_bytes: z.number().nullable(),
    t_ns: z.number(),
  }),
  z.object({
    v,
    type: z.literal('error'),
    id: cmdId.nullable(),
    error_type: z.enum(['PreflightError', 'BackendError', 'OutOfMemory']),
    message: z.string(),
    traceback: z.string().optional(),
  }),
  z.object({ v, type: z.literal('bye') }),
]);
export type PythonMessage = z.infer<typeof pythonMessageSchema>;
export type LoadedMessage = Extract<PythonMessage, { type: 'loaded' }>;
export type SyncedMessage = Extract<PythonMessage, { type: 'synced' }>;
export type GeneratedMessage = Extract<PythonMessage, { type: 'generated' }>;

/** Commands child → Python (without `v` and `id`, which the sender adds). */
export type PythonCommand =
  | { type: 'load'; model: string; precision: string; seed: number; params: Record<string, unknown> }
  | {
      type: 'generate';
      prompts: Array<{ prompt_index: number; text: string; messages: Array<{ role: string; content: string }> }>;
      max_new_tokens: number;
      greedy: boolean;
      seed: number;
      batch_size: number;
    }
  | { type: 'sync'; edge: 'start' | 'end' };

/** Parses one line; returns the message or a reason (never throws). */
export function parsePythonLine(line: string): { ok: true; message: PythonMessage } | { ok: false; reason: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (err) {
    return { ok: false, reason: `not JSON (${(err as Error).message})` };
  }
  const parsed = pythonMessageSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, reason: `${issue.path.join('.') || 'message'}: ${issue.message}` };
  }
  return { ok: true, message: parsed.data };
}
