// Child-side backend lookup by name: each spec names its implementation (`loadBackend`, a dynamic
// import), so a child loads only the engine it runs (node-llama-cpp's native binding is never
// pulled into a `command` or `vllm` run).
import type { Backend } from './types.ts';
import { preflightError } from './errors.ts';
import { backendNames, getBackendSpec } from './registry.ts';

export async function loadBackend(name: string): Promise<Backend> {
  const spec = getBackendSpec(name);
  if (!spec) throw preflightError(`unknown backend "${name}" (known: ${backendNames().join(', ')})`);
  return spec.loadBackend();
}
