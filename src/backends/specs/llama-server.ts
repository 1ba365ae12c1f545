// llama-server: llama.cpp's HTTP server managed per run. Params map to its flags:
// binary (the executable), n_gpu_layers → -ngl, ctx_size → -c, parallel → -np, threads → -t,
// batch_size → -b, ubatch_size → -ub, flash_attn → -fa on|off|auto, cont_batching →
// --cont-batching/--no-cont-batching, cache_type_k/v → -ctk/-ctv, mlock → --mlock, mmap: false → --no-mmap.
import { z } from 'zod';
import type { BackendSpec } from '../types.ts';
import { GGUF_PRECISIONS, TINY_RANDOM_MODEL_BYTES, extraArgs, extraArgsSchema, isGgufModel, pushFlag, serverLoadSeconds, startupTimeoutSchema } from './common.ts';

const CACHE_TYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'iq4_nl', 'q5_0', 'q5_1'] as const;

export const llamaServerParamsSchema = z
  .object({
    binary: z.string().min(1).default('llama-server'),
    n_gpu_layers: z.union([z.enum(['auto', 'all']), z.number().int().min(0)]).default('auto'),
    /** Total context; llama-server splits it evenly over the `parallel` slots. 0 = from the model. */
    ctx_size: z.number().int().min(0).default(4096),
    /** Slots (-np); null = the experiment's batch_size. */
    parallel: z.number().int().min(1).nullable().default(null),
    /** null = llama.cpp's default (all physical cores). */
    threads: z.number().int().min(1).nullable().default(null),
    batch_size: z.number().int().min(1).default(2048),
    ubatch_size: z.number().int().min(1).default(512),
    flash_attn: z.enum(['on', 'off', 'auto']).default('auto'),
    cont_batching: z.boolean().default(true),
    cache_type_k: z.enum(CACHE_TYPES).default('f16'),
    cache_type_v: z.enum(CACHE_TYPES).default('f16'),
    mlock: z.boolean().default(false),
    mmap: z.boolean().default(true),
    extra_args: extraArgsSchema,
    startup_timeout_seconds: startupTimeoutSchema,
  })
  .strict();

type LlamaServerParams = z.infer<typeof llamaServerParamsSchema>;

export const llamaServerSpec: BackendSpec = {
  name: 'llama-server',
  description: "llama.cpp's llama-server (GGUF), started and killed with each run",
  params: llamaServerParamsSchema,
  precisions: GGUF_PRECISIONS,
  acceptsRequestRate: true,
  invalidReasons(config) {
    const p = config.params as LlamaServerParams;
    const reasons: string[] = [];
    if (!isGgufModel(config.model)) {
      reasons.push(`llama-server loads GGUF files: model "${config.model}" is neither a .gguf path nor builtin:*`);
    }
    const slots = p.parallel ?? config.batch_size;
    if (slots < config.batch_size) {
      reasons.push(`batch_size ${config.batch_size} exceeds llama-server.parallel ${slots} slots: requests would queue`);
    }
    if (p.ctx_size > 0 && Math.floor(p.ctx_size / slots) < config.max_new_tokens + 16) {
      reasons.push(
        `llama-server.ctx_size ${p.ctx_size} split over ${slots} slots leaves ${Math.floor(p.ctx_size / slots)} tokens each, fewer than max_new_tokens ${config.max_new_tokens} plus a prompt`,
      );
    }
    if (p.ubatch_size > p.batch_size) {
      reasons.push(`llama-server.ubatch_size ${p.ubatch_size} exceeds llama-server.batch_size ${p.batch_size}`);
    }
    if (p.cache_type_v !== 'f16' && p.cache_type_v !== 'f32' && p.cache_type_v !== 'bf16' && p.flash_attn === 'off') {
      reasons.push(`llama-server.cache_type_v ${p.cache_type_v} (quantized V cache) requires llama-server.flash_attn on or auto`);
    }
    return reasons;
  },
  estimateTokensPerSecond(config) {
    return 20 * Math.pow(config.batch_size, 0.7);
  },
  estimateLoadSeconds(_config, modelBytes) {
    return serverLoadSeconds(modelBytes ?? 4e9, 3);
  },
  builtinModelBytes: { 'builtin:tiny-random': TINY_RANDOM_MODEL_BYTES },
  memory: (config) =>
    (config.params as LlamaServerParams).n_gpu_layers === 0 ? { kind: 'unplanned', reason: 'CPU only (no GPU layers)' } : { kind: 'weights' },
  async doctor(probe) {
    const server = probe.onPath('llama-server');
    return server
      ? { name: 'llama-server', status: 'ok', detail: `llama-server at ${server}` }
      : { name: 'llama-server', status: 'warn', detail: 'llama-server not on PATH (set llama-server.binary in the study)' };
  },
  server: {
    program: ['llama-server'],
    programFromParams: (p) => (typeof p.binary === 'string' ? [p.binary] : null),
    args(config, port) {
      const p = config.params as Record<string, unknown>;
      const a = ['-m', config.model, '--host', '127.0.0.1', '--port', String(port), '--seed', String(config.seed)];
      pushFlag(a, '-ngl', p.n_gpu_layers);
      pushFlag(a, '-c', p.ctx_size);
      pushFlag(a, '-np', p.parallel ?? config.batch_size);
      pushFlag(a, '-t', p.threads);
      pushFlag(a, '-b', p.batch_size);
      pushFlag(a, '-ub', p.ubatch_size);
      pushFlag(a, '-fa', p.flash_attn);
      if (p.cont_batching === true) a.push('--cont-batching');
      if (p.cont_batching === false) a.push('--no-cont-batching');
      pushFlag(a, '-ctk', p.cache_type_k);
      pushFlag(a, '-ctv', p.cache_type_v);
      if (p.mlock === true) a.push('--mlock');
      if (p.mmap === false) a.push('--no-mmap');
      return [...a, ...extraArgs(p)];
    },
  },
  loadBackend: async () => (await import('../managed/index.ts')).managedBackend('llama-server'),
};
