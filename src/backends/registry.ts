// The registry of backend specs (pure: schemas, valid combinations, estimate heuristics). The grammar
// consults only this; the child-side implementations live elsewhere and are never imported here.
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
