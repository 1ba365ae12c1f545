// Child-side backend lookup by name. Dynamic imports, so a child loads only the engine it runs
// (node-llama-cpp's native binding is never pulled into a `command` or `vllm` run).
import type { Backend } from './types.ts';
import { preflightError } from './errors.ts';

const loaders: Record<string, () => Promise<Backend>> = {
  llamacpp: async () => (await import('./llamacpp/index.ts')).llamacppBackend,
  openai: async () => (await import('./openai/index.ts')).openaiBackend,
  vllm: async () => (await import('./managed/index.ts')).managedBackend('vllm'),
  sglang: async () => (await import('./managed/index.ts')).managedBackend('sglang'),
  trtllm: async () => (await import('./managed/index.ts')).managedBackend('trtllm'),
  'llama-server': async () => (await import('./managed/index.ts')).managedBackend('llama-server'),
  command: async () => (await import('./command/index.ts')).commandBackend,
  pytorch: async () => {
    // Through a variable: the pytorch backend is another engineer's module and may not exist yet.
    const path = './pytorch/index.ts';
    const mod = (await import(path)) as Record<string, unknown>;
    const backend = (mod.pytorchBackend ?? mod.backend ?? mod.default) as Backend | undefined;
    if (!backend || typeof backend.load !== 'function') throw preflightError('src/backends/pytorch/index.ts exports no Backend');
    return backend;
  },
};

export const CHILD_BACKEND_NAMES = Object.keys(loaders);

export async function loadBackend(name: string): Promise<Backend> {
  const loader = loaders[name];
  if (!loader) throw preflightError(`unknown backend "${name}" (known: ${CHILD_BACKEND_NAMES.join(', ')})`);
  return loader();
}
