// llamacpp: node-llama-cpp in process. One context with `batch_size` sequences; each sequence
// serves one request at a time (history cleared between requests so no prompt reuses another's
// KV cache). Token timestamps come from the streaming onToken callback.
import { stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Backend, BackendSession, LoadInfo, RequestRecord, Workload } from '../types.ts';
import type { ExperimentConfig } from '../../study/types.ts';
import { backendError, preflightError } from '../errors.ts';
import { TINY_RANDOM_ID, ensureTinyRandomModel } from './tiny-random.ts';

export interface LlamacppParams {
  gpu: 'auto' | 'cuda' | 'vulkan' | 'metal' | false;
  gpu_layers: 'auto' | 'max' | number;
  threads: number;
  context_size: 'auto' | number;
  eval_batch_size: number;
  flash_attention: boolean;
  use_mmap: boolean;
}

const DEFAULT_PARAMS: LlamacppParams = {
  gpu: 'auto',
  gpu_layers: 'auto',
  threads: 2,
  context_size: 'auto',
  eval_batch_size: 512,
  flash_attention: false,
  use_mmap: true,
};

/** GGUF general.file_type → the precision names of the llamacpp spec. */
export const GGUF_FILE_TYPE_PRECISION: Record<number, string> = {
  0: 'f32', 1: 'f16', 2: 'q4_0', 7: 'q8_0', 8: 'q5_0', 10: 'q2_k', 12: 'q3_k_m', 14: 'q4_k_s', 15: 'q4_k_m',
  16: 'q5_k_s', 17: 'q5_k_m', 18: 'q6_k', 19: 'iq2_xxs', 23: 'iq3_xxs', 30: 'iq4_xs', 32: 'bf16',
};

export function resolveModelPath(model: string, env: NodeJS.ProcessEnv = process.env): { path: string; builtin: boolean } {
  if (model === TINY_RANDOM_ID) return { path: ensureTinyRandomModel(env), builtin: true };
  if (model.startsWith('builtin:')) throw preflightError(`unknown builtin model "${model}" (known: ${TINY_RANDOM_ID})`);
  return { path: model, builtin: false };
}

export function nodeLlamaCppVersion(): string | null {
  try {
    // The package's exports map hides package.json: find it next to the resolved entry.
    const entry = fileURLToPath(import.meta.resolve('node-llama-cpp'));
    const pkg = JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return null;
  }
}

// node-llama-cpp's module graph takes seconds to import on a busy machine: start importing as soon
// as the child picks this backend (preflight), so it overlaps the baseline instead of the load.
const nodeLlamaCppModule = import('node-llama-cpp');
nodeLlamaCppModule.catch(() => {}); // reported when load() awaits it

export const llamacppBackend: Backend = {
  name: 'llamacpp',
  async load(config: ExperimentConfig, ctx) {
    const params: LlamacppParams = { ...DEFAULT_PARAMS, ...(config.params as Partial<LlamacppParams>) };
    const { path: modelPath, builtin } = resolveModelPath(config.model);
    try {
      await stat(modelPath);
    } catch {
      throw preflightError(`llamacpp: model file ${modelPath} does not exist`);
    }
    const { getLlama, LlamaCompletion, LlamaLogLevel } = await nodeLlamaCppModule;
    // Never compile from source inside a measured run: a prebuilt binary or a clear failure.
    const llama = await getLlama({
      gpu: params.gpu === false ? false : params.gpu,
      build: 'never',
      logLevel: LlamaLogLevel.warn,
      logger: (_level, message) => ctx.log(`llama.cpp: ${message.trimEnd()}`),
      progressLogs: false,
    });
    const model = await llama.loadModel({
      modelPath,
      gpuLayers: params.gpu === false ? 0 : params.gpu_layers,
      useMmap: params.use_mmap,
    });
    const fileType = (model.fileInfo.metadata as { general?: { file_type?: number } }).general?.file_type;
    const filePrecision = fileType === undefined ? null : (GGUF_FILE_TYPE_PRECISION[fileType] ?? `file_type_${fileType}`);
    if (config.precision !== 'auto' && filePrecision !== null && filePrecision !== config.precision) {
      await model.dispose();
      throw preflightError(
        `llamacpp: precision "${config.precision}" does not match the GGUF file ${modelPath}, which holds ${filePrecision} (the file decides the precision; set precision: auto or ${filePrecision})`,
      );
    }
    // llama.cpp's CPU threads spin at a barrier each token: with more threads than idle cores a
    // token can take hundreds of times longer (measured: 1 ms → 265 ms with 2 threads on 2 busy cores).
    const cores = cpus().length;
    if (params.gpu_layers !== 'max' && params.threads > 1 && loadavg()[0]! > cores) {
      ctx.log(
        `llamacpp: warning: threads ${params.threads} on a machine whose load average ${loadavg()[0]!.toFixed(1)} exceeds its ${cores} cores; CPU decoding may be far slower than with threads: 1`,
      );
    }
    const sequences = Math.max(1, config.batch_size);
    const context = await model.createContext({
      sequences,
      contextSize: params.context_size === 'auto' ? undefined : params.context_size,
      batchSize: params.eval_batch_size,
      threads: params.threads,
      flashAttention: params.flash_attention,
    });
    const completions = Array.from({ length: sequences }, () => {
      const seq = context.getSequence();
      return { seq, completion: new LlamaCompletion({ contextSequence: seq }) };
    });

    const session: BackendSession = {
      async run(workload: Workload, onRequest, signal) {
        const records: RequestRecord[] = [];
        let next = 0;
        const workerCount = Math.min(completions.length, Math.max(1, workload.concurrency));
        const serve = async (slot: (typeof completions)[number]): Promise<void> => {
          while (next < workload.prompts.length && !signal?.aborted) {
            const prompt = workload.prompts[next++]!;
            await slot.seq.clearHistory();
            const inputTokens = model.tokenize(prompt.text, false).length + 1; // + BOS
            const record: RequestRecord = {
              prompt_index: prompt.index,
              input_tokens: inputTokens,
              output_tokens: 0,
              start_ms: performance.now(),
              first_token_ms: null,
              first_content_token_ms: null,
              token_times_ms: [],
              end_ms: 0,
              error: null,
            };
            try {
              record.output_text = await slot.completion.generateCompletion(prompt.text, {
                maxTokens: workload.max_new_tokens,
                temperature: workload.greedy ? 0 : 0.8,
                seed: workload.seed + prompt.index,
                signal,
                onToken: (tokens) => {
                  const now = performance.now();
                  for (let i = 0; i < tokens.length; i++) {
                    if (record.first_token_ms === null) {
                      record.first_token_ms = now;
                      record.first_content_token_ms = now;
                    } else record.token_times_ms.push(now);
                  }
                  record.output_tokens += tokens.length;
                },
              });
            } catch (err) {
              if (signal?.aborted) throw err;
              record.error = (err as Error).message;
            }
            record.end_ms = performance.now();
            records.push(record);
            onRequest?.(record);
          }
        };
        try {
          await Promise.all(completions.slice(0, workerCount).map(serve));
        } catch (err) {
          throw backendError(`llamacpp generation failed: ${(err as Error).message}`, err);
        }
        return records.sort((a, b) => a.start_ms - b.start_ms);
      },
      async dispose() {
        await context.dispose();
        await model.dispose();
        await llama.dispose();
      },
    };
    const info: LoadInfo = {
      backend_version: nodeLlamaCppVersion(),
      model_path: modelPath,
      model_builtin: builtin,
      extra_versions: { 'llama.cpp': llama.llamaCppRelease?.release ?? null, 'node-llama-cpp.gpu': String(llama.gpu) },
    };
    return { session, info };
  },
};
