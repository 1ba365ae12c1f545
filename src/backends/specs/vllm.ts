// vllm: `vllm serve <model>` managed per run. Each param maps to the flag of the same name in
// kebab case (tensor_parallel_size → --tensor-parallel-size); precision maps to --dtype
// (fp16→float16, bf16→bfloat16, fp32→float32) or, for fp8, to --quantization fp8.
import { z } from 'zod';
import type { BackendSpec } from '../types.ts';
import {
  SERVER_PRECISIONS, builtinModelReason, extraArgs, extraArgsSchema, kebab, pushFlag, pythonModulesCheck, serverDtype, serverLoadSeconds,
  serverTokensPerSecond, startupTimeoutSchema,
} from './common.ts';

export const VLLM_QUANTIZATIONS = [
  'awq', 'awq_marlin', 'gptq', 'gptq_marlin', 'fp8', 'bitsandbytes', 'compressed-tensors', 'gguf', 'marlin', 'modelopt',
] as const;

export const vllmParamsSchema = z
  .object({
    tensor_parallel_size: z.number().int().min(1).default(1),
    pipeline_parallel_size: z.number().int().min(1).default(1),
    /** Fraction of GPU memory vLLM preallocates for weights + KV cache. */
    gpu_memory_utilization: z.number().gt(0).max(1).default(0.9),
    /** Upper bound of sequences batched per iteration. */
    max_num_seqs: z.number().int().min(1).default(256),
    /** null = from the model config. */
    max_model_len: z.number().int().min(16).nullable().default(null),
    max_num_batched_tokens: z.number().int().min(1).nullable().default(null),
    /** Disables CUDA graphs (slower decode, faster start). */
    enforce_eager: z.boolean().default(false),
    /** null = vLLM's default for the version. */
    enable_prefix_caching: z.boolean().nullable().default(null),
    enable_chunked_prefill: z.boolean().nullable().default(null),
    kv_cache_dtype: z.enum(['auto', 'fp8', 'fp8_e4m3', 'fp8_e5m2']).default('auto'),
    quantization: z.enum(VLLM_QUANTIZATIONS).nullable().default(null),
    block_size: z.union([z.literal(8), z.literal(16), z.literal(32)]).nullable().default(null),
    swap_space: z.number().min(0).default(4),
    trust_remote_code: z.boolean().default(false),
    extra_args: extraArgsSchema,
    startup_timeout_seconds: startupTimeoutSchema,
  })
  .strict();

type VllmParams = z.infer<typeof vllmParamsSchema>;

export const vllmSpec: BackendSpec = {
  name: 'vllm',
  description: 'vLLM OpenAI-compatible server (`vllm serve`), started and killed with each run',
  params: vllmParamsSchema,
  precisions: SERVER_PRECISIONS,
  acceptsRequestRate: true,
  invalidReasons(config) {
    const p = config.params as VllmParams;
    const reasons = builtinModelReason('vllm', config);
    if (config.model.toLowerCase().endsWith('.gguf') && p.quantization !== 'gguf') {
      reasons.push(`vllm serves HF checkpoints: the GGUF file "${config.model}" needs vllm.quantization: gguf (experimental upstream); use llamacpp or llama-server for GGUF`);
    }
    if (config.batch_size > p.max_num_seqs) {
      reasons.push(
        `batch_size ${config.batch_size} exceeds vllm.max_num_seqs ${p.max_num_seqs}: requests would queue and the measured concurrency would be ${p.max_num_seqs}`,
      );
    }
    if (p.max_model_len !== null && p.max_model_len <= config.max_new_tokens) {
      reasons.push(`vllm.max_model_len ${p.max_model_len} leaves no room for a prompt with max_new_tokens ${config.max_new_tokens}`);
    }
    if (config.precision === 'fp8' && p.quantization !== null && p.quantization !== 'fp8') {
      reasons.push(`precision fp8 conflicts with vllm.quantization ${p.quantization} (both set --quantization)`);
    }
    if (p.max_num_batched_tokens !== null && p.max_model_len !== null && p.enable_chunked_prefill !== true && p.max_num_batched_tokens < p.max_model_len) {
      reasons.push(
        `vllm.max_num_batched_tokens ${p.max_num_batched_tokens} is smaller than vllm.max_model_len ${p.max_model_len} without vllm.enable_chunked_prefill: true (vLLM refuses to start)`,
      );
    }
    return reasons;
  },
  estimateTokensPerSecond(config) {
    return serverTokensPerSecond(config.batch_size) * (config.params as VllmParams).tensor_parallel_size ** 0.5;
  },
  estimateLoadSeconds(config, modelBytes) {
    const eager = (config.params as VllmParams).enforce_eager;
    return serverLoadSeconds(modelBytes, eager ? 30 : 60);
  },
  memory: () => ({ kind: 'weights', note: 'vllm preallocates a fraction of total memory for its KV cache; the need shown is the minimum' }),
  doctor: (probe) => pythonModulesCheck('vllm', ['vllm'], 'vllm', probe),
  server: {
    program: ['vllm', 'serve'],
    args(config, port) {
      const p = config.params as Record<string, unknown>;
      const a = [config.model, '--host', '127.0.0.1', '--port', String(port), '--seed', String(config.seed)];
      const dtype = serverDtype(config.precision);
      if (dtype) a.push('--dtype', dtype);
      if (config.precision === 'fp8' && p.quantization == null) a.push('--quantization', 'fp8');
      for (const k of ['tensor_parallel_size', 'pipeline_parallel_size', 'gpu_memory_utilization', 'max_num_seqs', 'max_model_len', 'max_num_batched_tokens', 'kv_cache_dtype', 'quantization', 'block_size', 'swap_space']) {
        pushFlag(a, `--${kebab(k)}`, p[k]);
      }
      if (p.enforce_eager === true) a.push('--enforce-eager');
      if (p.trust_remote_code === true) a.push('--trust-remote-code');
      for (const k of ['enable_prefix_caching', 'enable_chunked_prefill']) {
        if (p[k] === true) a.push(`--${kebab(k)}`);
        if (p[k] === false) a.push(`--no-${kebab(k)}`);
      }
      return [...a, ...extraArgs(p)];
    },
  },
  loadBackend: async () => (await import('../managed/index.ts')).managedBackend('vllm'),
};
