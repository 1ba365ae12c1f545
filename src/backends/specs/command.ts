// command: any program (PyTorch, TensorRT-LLM scripts, custom engines). argv is a template, never
// run through a shell; placeholders {model} {precision} {n} {max_new_tokens} {batch_size} {seed}
// {prompts_file} {records_file} {run_dir} are substituted per run. The program writes one JSON
// RequestRecord per line to {records_file}; energy is measured around the whole process.
import { z } from 'zod';
import type { BackendSpec } from '../types.ts';
import { GGUF_PRECISIONS, SERVER_PRECISIONS } from './common.ts';

export const COMMAND_PLACEHOLDERS = [
  'model', 'precision', 'n', 'max_new_tokens', 'batch_size', 'seed', 'prompts_file', 'records_file', 'run_dir',
] as const;

export const commandParamsSchema = z
  .object({
    argv: z.array(z.string()).min(1),
    /** Working directory; null = the run directory. */
    cwd: z.string().nullable().default(null),
    env: z.record(z.string()).default({}),
    /** Seconds the program may spend before it starts measuring (load), for the estimate. */
    expected_load_seconds: z.number().min(0).default(30),
    /** Expected output tokens per second, for the estimate only. */
    expected_tokens_per_second: z.number().positive().default(20),
  })
  .strict();

type CommandParams = z.infer<typeof commandParamsSchema>;

export const commandSpec: BackendSpec = {
  name: 'command',
  description: 'Any program given as an argv template (no shell); JSON records file contract',
  params: commandParamsSchema,
  // The program decides what a precision means; accept every name the other backends know plus int8/int4.
  precisions: [...new Set<string>([...SERVER_PRECISIONS, ...GGUF_PRECISIONS, 'int8', 'int4', 'fp4'])],
  invalidReasons(config) {
    const p = config.params as CommandParams;
    const reasons: string[] = [];
    for (const arg of p.argv) {
      for (const m of arg.matchAll(/\{([a-z_]+)\}/g)) {
        if (!(COMMAND_PLACEHOLDERS as readonly string[]).includes(m[1]!)) {
          reasons.push(`command.argv uses unknown placeholder {${m[1]}} (known: ${COMMAND_PLACEHOLDERS.join(', ')})`);
        }
      }
    }
    return reasons;
  },
  estimateTokensPerSecond(config) {
    return (config.params as CommandParams).expected_tokens_per_second;
  },
  estimateLoadSeconds(config) {
    return (config.params as CommandParams).expected_load_seconds;
  },
  memory: () => ({ kind: 'unplanned', reason: 'the command manages its own memory' }),
  doctor: async () => ({ name: 'command', status: 'ok', detail: 'runs a command given per study' }),
  loadBackend: async () => (await import('../command/index.ts')).commandBackend,
};
