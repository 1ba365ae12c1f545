// openai: an OpenAI-compatible endpoint that someone else runs. Energy is measured on this
// machine's GPUs, so it is only meaningful when the endpoint is served from them.
import { z } from 'zod';
import type { BackendSpec } from '../types.ts';
import { builtinModelReason } from './common.ts';

export const openaiParamsSchema = z
  .object({
    /** e.g. http://localhost:8000/v1 */
    base_url: z.string().url(),
    /** Environment variable holding the API key (the key itself never goes in a study file). */
    api_key_env: z.string().nullable().default('OPENAI_API_KEY'),
    /** chat → /chat/completions, completions → /completions. */
    endpoint: z.enum(['chat', 'completions']).default('chat'),
    /** Model name sent in requests; null = the experiment's `model`. */
    model_name: z.string().nullable().default(null),
    request_timeout_seconds: z.number().positive().default(600),
    /** Extra JSON fields merged into every request body (e.g. {"top_k": 1}). */
    extra_body: z.record(z.unknown()).default({}),
  })
  .strict();

export const openaiSpec: BackendSpec = {
  name: 'openai',
  description: 'An OpenAI-compatible endpoint run by someone else (base_url); streaming client',
  params: openaiParamsSchema,
  precisions: ['auto'],
  acceptsRequestRate: true,
  invalidReasons(config) {
    return builtinModelReason('openai', config);
  },
  estimateTokensPerSecond(config) {
    return 20 * Math.pow(config.batch_size, 0.8);
  },
  estimateLoadSeconds() {
    return 2; // nothing to load: the server is already up
  },
  remoteModel: true,
  memory: () => ({ kind: 'unplanned', reason: 'the endpoint runs elsewhere; its memory is not planned here' }),
  doctor: async () => ({ name: 'openai', status: 'ok', detail: 'needs an OpenAI-compatible endpoint (given per study)' }),
  loadBackend: async () => (await import('../openai/index.ts')).openaiBackend,
};
