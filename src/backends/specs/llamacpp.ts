// llamacpp: node-llama-cpp in process (GGUF). Options map onto getLlama({gpu}), llama.loadModel
// ({gpuLayers, useMmap}) and model.createContext({contextSize, batchSize, threads, flashAttention,
// sequences}); the worker sets `sequences` to the experiment's batch_size (one sequence per request
// in flight).
import { z } from 'zod';
import type { BackendSpec } from '../types.ts';
import { GGUF_PRECISIONS, TINY_RANDOM_MODEL_BYTES, isGgufModel } from './common.ts';

export const llamacppParamsSchema = z
  .object({
    /** getLlama({gpu}): 'auto' picks CUDA/Vulkan/Metal when present, false forces CPU. */
    gpu: z.union([z.enum(['auto', 'cuda', 'vulkan', 'metal']), z.literal(false)]).default('auto'),
    /** loadModel({gpuLayers}): 'auto' fits as many layers as free VRAM allows (0 on a CPU-only machine). */
    gpu_layers: z.union([z.enum(['auto', 'max']), z.number().int().min(0)]).default('auto'),
    /**
     * createContext({threads}): CPU threads for evaluation. Default 2 so the quickstart behaves on
     * small shared machines; raise it on a workstation (node-llama-cpp's own default is all cores).
     */
    threads: z.number().int().min(1).default(2),
    /** createContext({contextSize}): 'auto' = what fits, capped by the model's training context. */
    context_size: z.union([z.literal('auto'), z.number().int().min(16)]).default('auto'),
    /** createContext({batchSize}): prompt-processing batch in tokens (llama.cpp n_batch). */
    eval_batch_size: z.number().int().min(1).default(512),
    /** createContext({flashAttention}). */
    flash_attention: z.boolean().default(false),
    /** loadModel({useMmap}). */
    use_mmap: z.boolean().default(true),
  })
  .strict();

export const llamacppSpec: BackendSpec = {
  name: 'llamacpp',
  description: 'llama.cpp in process through node-llama-cpp (GGUF models; builtin:tiny-random for smoke tests)',
  params: llamacppParamsSchema,
  precisions: GGUF_PRECISIONS,
  invalidReasons(config) {
    const reasons: string[] = [];
    const p = config.params as z.infer<typeof llamacppParamsSchema>;
    if (!isGgufModel(config.model)) {
      reasons.push(`llamacpp loads GGUF files: model "${config.model}" is neither a .gguf path nor builtin:*`);
    }
    if (typeof p.context_size === 'number') {
      // Each of batch_size sequences gets context_size / batch_size tokens in node-llama-cpp.
      const perSequence = Math.floor(p.context_size / config.batch_size);
      if (perSequence < config.max_new_tokens + 16) {
        reasons.push(
          `llamacpp.context_size ${p.context_size} split over batch_size ${config.batch_size} sequences leaves ${perSequence} tokens each, fewer than max_new_tokens ${config.max_new_tokens} plus a prompt`,
        );
      }
    }
    if (p.gpu === false && p.gpu_layers !== 'auto' && p.gpu_layers !== 0) {
      reasons.push(`llamacpp.gpu is false (CPU only) but llamacpp.gpu_layers is ${String(p.gpu_layers)}`);
    }
    if (p.gpu === false && p.flash_attention) {
      reasons.push('llamacpp.flash_attention needs a GPU build but llamacpp.gpu is false');
    }
    return reasons;
  },
  estimateTokensPerSecond(config) {
    const p = config.params as z.infer<typeof llamacppParamsSchema>;
    // Conservative: CPU-only assumption unless the GPU is asked for explicitly.
    const gpu = p.gpu !== false && p.gpu_layers !== 0 && p.gpu !== 'auto';
    // builtin:tiny-random: ~900-1200 tok/s measured on one thread of a loaded 2-core box (the
    // quickstart); 200 made its estimate five times too long.
    const perStream = config.model.startsWith('builtin:') ? 800 : gpu ? 40 : 5;
    return perStream * Math.pow(config.batch_size, 0.7);
  },
  estimateLoadSeconds(_config, modelBytes) {
    return 1 + (modelBytes ?? 4e9) / 0.5e9;
  },
  builtinModelBytes: { 'builtin:tiny-random': TINY_RANDOM_MODEL_BYTES },
  memory(config) {
    const p = config.params as z.infer<typeof llamacppParamsSchema>;
    return p.gpu === false || p.gpu_layers === 0 ? { kind: 'unplanned', reason: 'CPU only (no GPU layers)' } : { kind: 'weights' };
  },
  async doctor(probe) {
    return probe.nodePackage('node-llama-cpp')
      ? { name: 'llamacpp', status: 'ok', detail: 'node-llama-cpp is installed (in process)' }
      : { name: 'llamacpp', status: 'missing', detail: 'node-llama-cpp is not installed: npm install' };
  },
  loadBackend: async () => (await import('../llamacpp/index.ts')).llamacppBackend,
};
