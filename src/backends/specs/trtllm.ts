// trtllm: `trtllm-serve <model>` (TensorRT-LLM's OpenAI-compatible server) managed per run.
// Params map to its flags: backend → --backend, tp_size → --tp_size, pp_size → --pp_size,
// max_batch_size → --max_batch_size, max_num_tokens → --max_num_tokens, max_seq_len →
// --max_seq_len, kv_cache_free_gpu_memory_fraction → --kv_cache_free_gpu_memory_fraction.
import { z } from 'zod';
import type { BackendSpec } from '../types.ts';
import {
  builtinModelReason, extraArgs, extraArgsSchema, pushFlag, pythonModulesCheck, serverLoadSeconds, serverTokensPerSecond, startupTimeoutSchema,
} from './common.ts';

export const trtllmParamsSchema = z
  .object({
    /** 'pytorch' (default in recent releases) serves HF checkpoints; 'tensorrt' builds/loads an engine. */
    backend: z.enum(['pytorch', 'tensorrt']).default('pytorch'),
    tp_size: z.number().int().min(1).default(1),
    pp_size: z.number().int().min(1).default(1),
    max_batch_size: z.number().int().min(1).default(2048),
    max_num_tokens: z.number().int().min(1).default(8192),
    max_seq_len: z.number().int().min(16).nullable().default(null),
    kv_cache_free_gpu_memory_fraction: z.number().gt(0).max(1).default(0.9),
    trust_remote_code: z.boolean().default(false),
    extra_args: extraArgsSchema,
    startup_timeout_seconds: startupTimeoutSchema,
  })
  .strict();

type TrtllmParams = z.infer<typeof trtllmParamsSchema>;

export const trtllmSpec: BackendSpec = {
  name: 'trtllm',
  description: 'TensorRT-LLM server (`trtllm-serve`), started and killed with each run',
  params: trtllmParamsSchema,
  precisions: ['auto', 'fp16', 'bf16', 'fp8', 'fp4', 'int8', 'int4'],
  acceptsRequestRate: true,
  invalidReasons(config) {
    const p = config.params as TrtllmParams;
    const reasons = builtinModelReason('trtllm', config);
    if (config.batch_size > p.max_batch_size) {
      reasons.push(`batch_size ${config.batch_size} exceeds trtllm.max_batch_size ${p.max_batch_size}: requests would queue`);
    }
    if (p.max_seq_len !== null && p.max_seq_len <= config.max_new_tokens) {
      reasons.push(`trtllm.max_seq_len ${p.max_seq_len} leaves no room for a prompt with max_new_tokens ${config.max_new_tokens}`);
    }
    if (p.backend === 'pytorch' && (config.precision === 'int8' || config.precision === 'int4')) {
      reasons.push(`precision ${config.precision} needs a pre-quantized checkpoint or trtllm.backend tensorrt; the pytorch backend cannot quantize on load`);
    }
    return reasons;
  },
  estimateTokensPerSecond(config) {
    return serverTokensPerSecond(config.batch_size) * (config.params as TrtllmParams).tp_size ** 0.5;
  },
  estimateLoadSeconds(config, modelBytes) {
    // An engine build on first use of the tensorrt backend takes minutes.
    return serverLoadSeconds(modelBytes, (config.params as TrtllmParams).backend === 'tensorrt' ? 300 : 90);
  },
  memory: () => ({ kind: 'weights', note: 'trtllm preallocates a fraction of total memory for its KV cache; the need shown is the minimum' }),
  doctor: (probe) => pythonModulesCheck('trtllm', ['tensorrt_llm'], 'tensorrt_llm', probe),
  server: {
    program: ['trtllm-serve'],
    args(config, port) {
      const p = config.params as Record<string, unknown>;
      const a = [config.model, '--host', '127.0.0.1', '--port', String(port)];
      // trtllm-serve spells its flags in snake case.
      for (const k of ['backend', 'tp_size', 'pp_size', 'max_batch_size', 'max_num_tokens', 'max_seq_len', 'kv_cache_free_gpu_memory_fraction']) {
        pushFlag(a, `--${k}`, p[k]);
      }
      if (p.trust_remote_code === true) a.push('--trust_remote_code');
      return [...a, ...extraArgs(p)];
    },
  },
  loadBackend: async () => (await import('../managed/index.ts')).managedBackend('trtllm'),
};
