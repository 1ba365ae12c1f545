// Identity (ARCHITECTURE.md): config_hash = sha256 of the canonical JSON (sorted keys, defaults
// applied) of one experiment's what-to-measure fields, first 16 hex; study_hash = the same over the
// sorted list of config hashes.
import { createHash } from 'node:crypto';
import type { ExperimentConfig } from './types.ts';

/** JSON with object keys sorted at every depth; arrays keep their order; undefined keys dropped. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`cannot hash non-finite number ${value}`);
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

export function sha256Hex16(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

export function configHash(config: ExperimentConfig): string {
  return sha256Hex16(canonicalJson(config));
}

export function studyHash(configHashes: Iterable<string>): string {
  return sha256Hex16([...configHashes].sort().join('\n'));
}
