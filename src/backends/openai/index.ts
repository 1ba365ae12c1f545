// openai: an OpenAI-compatible endpoint someone else runs. llem measures the local GPUs it is told
// to; the API key comes from the environment variable named in the YAML, never from the YAML.
import type { Backend, BackendSession } from '../types.ts';
import type { ExperimentConfig } from '../../study/types.ts';
import { preflightError } from '../errors.ts';
import { runOpenAiWorkload, type OpenAiClientOptions } from './client.ts';

interface OpenaiParams {
  base_url: string;
  api_key_env: string | null;
  endpoint: 'chat' | 'completions';
  model_name: string | null;
  request_timeout_seconds: number;
  extra_body: Record<string, unknown>;
}

export function clientSession(opts: OpenAiClientOptions, onDispose?: () => Promise<void>): BackendSession {
  return {
    run: (workload, onRequest, signal) => runOpenAiWorkload(workload, opts, onRequest, signal),
    dispose: async () => {
      await onDispose?.();
    },
  };
}

/** Polls `${baseUrl}/models` once: the endpoint must answer before the run measures anything. */
export async function probeEndpoint(baseUrl: string, apiKey: string | null, timeoutMs: number): Promise<string | null> {
  try {
    const res = await fetch(`${baseUrl.replace(/\/+$/, '')}/models`, {
      headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
      signal: AbortSignal.timeout(timeoutMs),
    });
    return res.ok ? null : `HTTP ${res.status}`;
  } catch (err) {
    return (err as Error).message;
  }
}

export const openaiBackend: Backend = {
  name: 'openai',
  async load(config: ExperimentConfig, ctx) {
    const p = config.params as unknown as OpenaiParams;
    if (typeof p.base_url !== 'string') throw preflightError('openai.base_url is required');
    let apiKey: string | null = null;
    if (p.api_key_env) {
      apiKey = process.env[p.api_key_env] ?? null;
      if (apiKey === null) ctx.log(`openai: environment variable ${p.api_key_env} is not set; sending no API key`);
    }
    const problem = await probeEndpoint(p.base_url, apiKey, 10_000);
    if (problem !== null) throw preflightError(`openai: endpoint ${p.base_url} did not answer GET /models: ${problem}`);
    const opts: OpenAiClientOptions = {
      baseUrl: p.base_url,
      endpoint: p.endpoint ?? 'chat',
      model: p.model_name ?? config.model,
      apiKey,
      requestTimeoutMs: (p.request_timeout_seconds ?? 600) * 1000,
      extraBody: p.extra_body ?? {},
    };
    return {
      session: clientSession(opts),
      info: { backend_version: null, model_path: null, model_builtin: false, extra_versions: { 'openai.base_url': p.base_url } },
    };
  },
};
