// sglang: `python -m sglang.launch_server --model-path <model>` managed per run. Params map to the
// flags of the same name in kebab case (tp_size → --tp-size, mem_fraction_static →
// --mem-fraction-static); precision maps to --dtype, or --quantization fp8.
import { z } from 'zod';
import type { BackendSpec } from '../types.ts';
import {
  SERVER_PRECISIONS, builtinModelReason, extraArgs, extraArgsSchema, kebab, pushFlag, pythonModulesCheck, serverDtype, serverLoadSeconds,
  serverTokensPerSecond, startupTimeoutSchema,
} from './common.ts';

export const sglangParamsSchema = z
  .object({
    tp_size: z.number().int().min(1).default(1),
    dp_size: z.number().int().min(1).default(1),
    /** Fraction of GPU memory for weights + KV pool; null = SGLang's own choice. */
    mem_fraction_static: z.number().gt(0).max(1).nullable().default(null),
    max_running_requests: z.number().int().min(1).nullable().default(null),
    context_length: z.number().int().min(16).nullable().default(null),
    chunked_prefill_size: z.number().int().nullable().default(null),
    disable_radix_cache: z.boolean().default(false),
    disable_cuda_graph: z.boolean().default(false),
    quantization: z.enum(['awq', 'gptq', 'fp8', 'bitsandbytes', 'gguf', 'modelopt', 'w8a8_int8', 'w8a8_fp8']).nullable().default(null),
    kv_cache_dtype: z.enum(['auto', 'fp8_e5m2', 'fp8_e4m3']).default('auto'),
    attention_backend: z.enum(['flashinfer', 'triton', 'torch_native', 'fa3']).nullable().default(null),
    trust_remote_code: z.boolean().default(false),
    extra_args: extraArgsSchema,
    startup_timeout_seconds: startupTimeoutSchema,
  })
  .strict();

type SglangParams = z.infer<typeof sglangParamsSchema>;

export const sglangSpec: BackendSpec = {
  name: 'sglang',
  description: 'SGLang server (`python -m sglang.launch_server`), started and killed with each run',
  params: sglangParamsSchema,
  precisions: SERVER_PRECISIONS,
  acceptsRequestRate: true,
  invalidReasons(config) {
    const p = config.params as SglangParams;
    const reasons = builtinModelReason('sglang', config);
    if (p.max_running_requests !== null && config.batch_size > p.max_running_requests) {
      reasons.push(
        `batch_size ${config.batch_size} exceeds sglang.max_running_requests ${p.max_running_requests}: requests would queue`,
      );
    }
    if (p.context_length !== null && p.context_length <= config.max_new_tokens) {
      reasons.push(`sglang.context_length ${p.context_length} leaves no room for a prompt with max_new_tokens ${config.max_new_tokens}`);
    }
    if (config.precision === 'fp8' && p.quantization !== null && p.quantization !== 'fp8' && p.quantization !== 'w8a8_fp8') {
      reasons.push(`precision fp8 conflicts with sglang.quantization ${p.quantization}`);
    }
    if (p.attention_backend === 'torch_native' && !p.disable_cuda_graph) {
      // Not fatal in every version, but graph capture with the torch backend is unsupported upstream.
      reasons.push('sglang.attention_backend torch_native needs sglang.disable_cuda_graph: true');
    }
    return reasons;
  },
  estimateTokensPerSecond(config) {
    return serverTokensPerSecond(config.batch_size) * (config.params as SglangParams).tp_size ** 0.5;
  },
  estimateLoadSeconds(config, modelBytes) {
    return serverLoadSeconds(modelBytes, (config.params as SglangParams).disable_cuda_graph ? 30 : 60);
  },
  memory: () => ({ kind: 'weights', note: 'sglang preallocates a fraction of total memory for its KV cache; the need shown is the minimum' }),
  doctor: (probe) => pythonModulesCheck('sglang', ['sglang'], 'sglang', probe),
  server: {
    program: ['python3', '-m', 'sglang.launch_server'],
    args(config, port) {
      const p = config.params as Record<string, unknown>;
      const a = ['--model-path', config.model, '--host', '127.0.0.1', '--port', String(port), '--random-seed', String(config.seed)];
      const dtype = serverDtype(config.precision);
      if (dtype) a.push('--dtype', dtype);
      if (config.precision === 'fp8' && p.quantization == null) a.push('--quantization', 'fp8');
      for (const k of ['tp_size', 'dp_size', 'mem_fraction_static', 'max_running_requests', 'context_length', 'chunked_prefill_size', 'quantization', 'kv_cache_dtype', 'attention_backend']) {
        pushFlag(a, `--${kebab(k)}`, p[k]);
      }
      if (p.disable_radix_cache === true) a.push('--disable-radix-cache');
      if (p.disable_cuda_graph === true) a.push('--disable-cuda-graph');
      if (p.trust_remote_code === true) a.push('--trust-remote-code');
      return [...a, ...extraArgs(p)];
    },
  },
  loadBackend: async () => (await import('../managed/index.ts')).managedBackend('sglang'),
};
