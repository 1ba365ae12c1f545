// pytorch: Hugging Face checkpoints through transformers (AutoModelForCausalLM + generate), or
// builtin:tiny-torch (a random-weight decoder defined in src/backends/pytorch/worker.py), run by a
// Python process the measuring child starts. Params map onto from_pretrained(torch_dtype,
// attn_implementation, device_map, quantization_config), torch.compile and torch.set_num_threads.
//
// Pure, like every spec: nothing here imports Python or probes the machine. So the rules split in
// two. Here: combinations that can never run (int8/int4 on builtin:tiny-torch or on the CPU,
// flash_attention_2 in fp32, …). In the child's preflight (src/backends/pytorch/index.ts, from
// Python's hello, seconds after start and before any model loads): what depends on the installed
// environment — bitsandbytes for int8/int4, flash_attn for flash_attention_2, transformers for a
// Hugging Face model, torch >= 2 for torch_compile/sdpa, a visible CUDA device — each a
// PreflightError naming the Python and what it lacks.
import { z } from 'zod';
import type { BackendSpec } from '../types.ts';
import type { ExperimentConfig } from '../../study/types.ts';
import { isBuiltinModel, pythonModulesCheck } from './common.ts';

/** builtin:tiny-torch: a few random-weight layers defined in worker.py (well under a megabyte). */
const TINY_TORCH_MODEL_BYTES = 1024 * 1024;

/** `auto` = the checkpoint's own dtype (from_pretrained(torch_dtype="auto")); fp32 for builtin:tiny-torch. */
export const PYTORCH_PRECISIONS = ['auto', 'fp32', 'fp16', 'bf16', 'int8', 'int4'] as const;

const DEVICE_MAP = /^(auto|cpu|cuda|cuda:\d+|balanced|balanced_low_0|sequential)$/;

export const pytorchParamsSchema = z
  .object({
    /**
     * The Python that runs worker.py. null = `python3` on PATH, else /usr/bin/python3: the first
     * whose torch imports (a pyenv or venv shim on PATH often lacks torch while the system Python
     * has Debian's python3-torch). The one used is recorded in the result's environment.
     */
    python: z.string().min(1).nullable().default(null),
    /** Prompts generated together as one left-padded static batch. null = the experiment's batch_size. */
    batch_size: z.number().int().min(1).nullable().default(null),
    /** from_pretrained(attn_implementation); null = transformers' default. builtin:tiny-torch: eager or sdpa. */
    attn_implementation: z.enum(['eager', 'sdpa', 'flash_attention_2']).nullable().default(null),
    /** torch.compile the model's forward (torch >= 2.0). */
    torch_compile: z.boolean().default(false),
    /** torch.set_num_threads (CPU intra-op threads; also OMP/MKL_NUM_THREADS). null = torch's default. */
    num_threads: z.number().int().min(1).nullable().default(null),
    /**
     * Where the weights go: auto (CUDA when torch sees it, else CPU; accelerate's placement when
     * installed), cpu, cuda, cuda:N, or one of accelerate's balanced / balanced_low_0 / sequential.
     */
    device_map: z
      .string()
      .regex(DEVICE_MAP, 'must be auto, cpu, cuda, cuda:N, balanced, balanced_low_0 or sequential')
      .default('auto'),
  })
  .strict();

export type PytorchSpecParams = z.infer<typeof pytorchParamsSchema>;

export function isTinyTorchModel(model: string): boolean {
  return model === 'builtin:tiny-torch' || model.startsWith('builtin:tiny-torch@');
}

function effectiveBatch(config: ExperimentConfig): number {
  return (config.params as PytorchSpecParams).batch_size ?? config.batch_size;
}

export const pytorchSpec: BackendSpec = {
  name: 'pytorch',
  description:
    'PyTorch + transformers in a Python process started per run (Hugging Face ids or local checkpoints; builtin:tiny-torch for smoke tests)',
  params: pytorchParamsSchema,
  precisions: PYTORCH_PRECISIONS,
  invalidReasons(config) {
    const p = config.params as PytorchSpecParams;
    const reasons: string[] = [];
    const tiny = isTinyTorchModel(config.model);
    if (isBuiltinModel(config.model) && !tiny) {
      reasons.push(`model "${config.model}" is not a pytorch builtin (the pytorch backend has builtin:tiny-torch)`);
    }
    if (config.model.toLowerCase().endsWith('.gguf')) {
      reasons.push(`model "${config.model}" is a GGUF file; the pytorch backend loads Hugging Face checkpoints (use backend llamacpp)`);
    }
    if (tiny && ['balanced', 'balanced_low_0', 'sequential'].includes(p.device_map)) {
      reasons.push(`builtin:tiny-torch runs on one device: pytorch.device_map auto, cpu, cuda or cuda:N, not ${p.device_map}`);
    }
    const quantized = config.precision === 'int8' || config.precision === 'int4';
    if (quantized && tiny) {
      reasons.push(`precision ${config.precision} goes through bitsandbytes, which quantizes transformers models only; builtin:tiny-torch runs in fp32, fp16 or bf16`);
    }
    if (quantized && p.device_map === 'cpu') {
      reasons.push(`precision ${config.precision} (bitsandbytes) needs a CUDA device, but pytorch.device_map is cpu`);
    }
    if (p.attn_implementation === 'flash_attention_2') {
      if (config.precision === 'fp32') {
        reasons.push('pytorch.attn_implementation flash_attention_2 runs in fp16 or bf16 only, not precision fp32');
      }
      if (tiny) reasons.push('builtin:tiny-torch supports pytorch.attn_implementation eager or sdpa, not flash_attention_2');
      if (p.device_map === 'cpu') reasons.push('pytorch.attn_implementation flash_attention_2 needs a CUDA device, but pytorch.device_map is cpu');
    }
    if (p.batch_size !== null && config.batch_size > 1 && p.batch_size !== config.batch_size) {
      reasons.push(
        `pytorch.batch_size ${p.batch_size} conflicts with batch_size ${config.batch_size}: set one of them (pytorch.batch_size overrides batch_size only when batch_size is 1)`,
      );
    }
    return reasons;
  },
  estimateTokensPerSecond(config) {
    const p = config.params as PytorchSpecParams;
    const batch = effectiveBatch(config);
    // Conservative: a random-weight toy on the CPU, an eager HF generate loop (~20 tok/s a stream
    // on a GPU), or a CPU-only HF model.
    if (isTinyTorchModel(config.model)) return 100 * Math.pow(batch, 0.7);
    if (p.device_map === 'cpu') return 2 * Math.pow(batch, 0.5);
    return 20 * Math.pow(batch, 0.8);
  },
  estimateLoadSeconds(config, modelBytes) {
    // Python + torch import (~5 s), checkpoint read and converted at ~0.5 GB/s, compile.
    const compileSeconds = (config.params as PytorchSpecParams).torch_compile ? 60 : 0;
    if (isTinyTorchModel(config.model)) return 6 + compileSeconds;
    const bytes = modelBytes ?? 16e9;
    return 5 + bytes / 0.5e9 + compileSeconds;
  },
  builtinModelBytes: { 'builtin:tiny-torch': TINY_TORCH_MODEL_BYTES },
  memory: (config) =>
    (config.params as PytorchSpecParams).device_map === 'cpu' ? { kind: 'unplanned', reason: 'CPU only (pytorch.device_map cpu)' } : { kind: 'weights' },
  async doctor(probe) {
    // torch alone runs builtin:tiny-torch; transformers adds Hugging Face models. Judged on the
    // Python the backend would pick: the first whose torch imports.
    const probes = await probe.pythonModules(['torch', 'transformers']);
    const withTorch = probes.find((p) => p.found.torch);
    if (!withTorch) return pythonModulesCheck('pytorch', ['torch', 'transformers'], 'torch and transformers', probe);
    if (withTorch.found.transformers) return { name: 'pytorch', status: 'ok', detail: `torch and transformers found by ${withTorch.python}` };
    return {
      name: 'pytorch',
      status: 'warn',
      detail: `torch found by ${withTorch.python} (builtin:tiny-torch runs); Hugging Face models need transformers: ${withTorch.python} -m pip install transformers`,
    };
  },
  loadBackend: async () => (await import('../pytorch/index.ts')).pytorchBackend,
};
