// Each managed server's argv from the universal fields and its scoped params (pure, tested).
// Flag names are the servers' real ones (vllm serve, sglang.launch_server, trtllm-serve,
// llama-server); `extra_args` are appended verbatim, never through a shell.
import type { ExperimentConfig } from '../../study/types.ts';

export type ManagedServerName = 'vllm' | 'sglang' | 'trtllm' | 'llama-server';
export const MANAGED_SERVERS: readonly ManagedServerName[] = ['vllm', 'sglang', 'trtllm', 'llama-server'];

/** The program (and subcommand) each server is started with, unless overridden (see serverPrefix). */
export const DEFAULT_PREFIX: Record<ManagedServerName, string[]> = {
  vllm: ['vllm', 'serve'],
  sglang: ['python3', '-m', 'sglang.launch_server'],
  trtllm: ['trtllm-serve'],
  'llama-server': ['llama-server'],
};

/** `LLEM_VLLM_COMMAND`, `LLEM_LLAMA_SERVER_COMMAND` …: a JSON argv array replacing the program prefix. */
export function overrideEnvName(name: ManagedServerName): string {
  return `LLEM_${name.toUpperCase().replace(/-/g, '_')}_COMMAND`;
}

export function serverPrefix(name: ManagedServerName, params: Record<string, unknown>, env: NodeJS.ProcessEnv): string[] {
  const override = env[overrideEnvName(name)];
  if (override) {
    const parsed = JSON.parse(override) as unknown;
    if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((x) => typeof x === 'string')) {
      throw new Error(`${overrideEnvName(name)} must be a JSON array of strings (argv prefix)`);
    }
    return parsed as string[];
  }
  if (name === 'llama-server' && typeof params.binary === 'string') return [params.binary];
  return DEFAULT_PREFIX[name];
}

const DTYPE: Record<string, string> = { fp16: 'float16', bf16: 'bfloat16', fp32: 'float32' };

const kebab = (s: string): string => s.replace(/_/g, '-');

function push(argv: string[], flag: string, value: unknown): void {
  if (value === null || value === undefined) return;
  argv.push(flag, String(value));
}

/** Flags after the prefix; the model, host and port included. */
export function serverArgs(name: ManagedServerName, config: ExperimentConfig, port: number): string[] {
  const p = config.params as Record<string, unknown>;
  const a: string[] = [];
  const dtype = DTYPE[config.precision];
  switch (name) {
    case 'vllm': {
      a.push(config.model, '--host', '127.0.0.1', '--port', String(port), '--seed', String(config.seed));
      if (dtype) a.push('--dtype', dtype);
      if (config.precision === 'fp8' && p.quantization == null) a.push('--quantization', 'fp8');
      for (const k of ['tensor_parallel_size', 'pipeline_parallel_size', 'gpu_memory_utilization', 'max_num_seqs', 'max_model_len', 'max_num_batched_tokens', 'kv_cache_dtype', 'quantization', 'block_size', 'swap_space']) {
        push(a, `--${kebab(k)}`, p[k]);
      }
      if (p.enforce_eager === true) a.push('--enforce-eager');
      if (p.trust_remote_code === true) a.push('--trust-remote-code');
      for (const k of ['enable_prefix_caching', 'enable_chunked_prefill']) {
        if (p[k] === true) a.push(`--${kebab(k)}`);
        if (p[k] === false) a.push(`--no-${kebab(k)}`);
      }
      break;
    }
    case 'sglang': {
      a.push('--model-path', config.model, '--host', '127.0.0.1', '--port', String(port), '--random-seed', String(config.seed));
      if (dtype) a.push('--dtype', dtype);
      if (config.precision === 'fp8' && p.quantization == null) a.push('--quantization', 'fp8');
      for (const k of ['tp_size', 'dp_size', 'mem_fraction_static', 'max_running_requests', 'context_length', 'chunked_prefill_size', 'quantization', 'kv_cache_dtype', 'attention_backend']) {
        push(a, `--${kebab(k)}`, p[k]);
      }
      if (p.disable_radix_cache === true) a.push('--disable-radix-cache');
      if (p.disable_cuda_graph === true) a.push('--disable-cuda-graph');
      if (p.trust_remote_code === true) a.push('--trust-remote-code');
      break;
    }
    case 'trtllm': {
      a.push(config.model, '--host', '127.0.0.1', '--port', String(port));
      // trtllm-serve spells its flags in snake case.
      for (const k of ['backend', 'tp_size', 'pp_size', 'max_batch_size', 'max_num_tokens', 'max_seq_len', 'kv_cache_free_gpu_memory_fraction']) {
        push(a, `--${k}`, p[k]);
      }
      if (p.trust_remote_code === true) a.push('--trust_remote_code');
      break;
    }
    case 'llama-server': {
      a.push('-m', config.model, '--host', '127.0.0.1', '--port', String(port), '--seed', String(config.seed));
      push(a, '-ngl', p.n_gpu_layers);
      push(a, '-c', p.ctx_size);
      push(a, '-np', p.parallel ?? config.batch_size);
      push(a, '-t', p.threads);
      push(a, '-b', p.batch_size);
      push(a, '-ub', p.ubatch_size);
      push(a, '-fa', p.flash_attn);
      if (p.cont_batching === true) a.push('--cont-batching');
      if (p.cont_batching === false) a.push('--no-cont-batching');
      push(a, '-ctk', p.cache_type_k);
      push(a, '-ctv', p.cache_type_v);
      if (p.mlock === true) a.push('--mlock');
      if (p.mmap === false) a.push('--no-mmap');
      break;
    }
  }
  const extra = p.extra_args;
  if (Array.isArray(extra)) a.push(...extra.map(String));
  return a;
}
