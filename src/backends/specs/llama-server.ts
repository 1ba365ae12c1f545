// llama-server: llama.cpp's HTTP server managed per run. Params map to its flags:
// binary (the executable), n_gpu_layers → -ngl, ctx_size → -c, parallel → -np, threads → -t,
// batch_size → -b, ubatch_size → -ub, flash_attn → -fa on|off|auto, cont_batching →
// --cont-batching/--no-cont-batching, cache_type_k/v → -ctk/-ctv, mlock → --mlock, mmap: false → --no-mmap.
import { z } from 'zod';
import type { BackendSpec } from '../types.ts';
import { GGUF_PRECISIONS, extraArgsSchema, isGgufModel, serverLoadSeconds, startupTimeoutSchema } from './common.ts';

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
};
