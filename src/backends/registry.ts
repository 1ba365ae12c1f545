// The registry of backend specs: everything the parent knows of a backend (src/backends/types.ts
// BackendSpec). The grammar, the planner, `llem doctor`, the managed servers and the child's backend
// lookup consult only this; a child-side implementation is imported only when a worker calls its
// spec's loadBackend().
import type { BackendSpec } from './types.ts';
import { builtinBackendSpecs } from './specs/index.ts';

const specsByName = new Map<string, BackendSpec>();
let version = 0;

/** Changes whenever the set of specs changes (schemas built from the registry are cached by it). */
export function registryVersion(): number {
  return version;
}

/** Registers a spec; a second spec under the same name replaces the first (tests use this). */
export function registerBackendSpec(spec: BackendSpec): void {
  specsByName.set(spec.name, spec);
  version++;
}

/** Removes a spec registered by a test; returns whether one was there. */
export function unregisterBackendSpec(name: string): boolean {
  version++;
  return specsByName.delete(name);
}

export function getBackendSpec(name: string): BackendSpec | undefined {
  return specsByName.get(name);
}

/** All registered specs in registration order. */
export function backendSpecs(): BackendSpec[] {
  return [...specsByName.values()];
}

export function backendNames(): string[] {
  return [...specsByName.keys()];
}

for (const spec of builtinBackendSpecs) registerBackendSpec(spec);
