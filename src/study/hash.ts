// Identity (ARCHITECTURE.md): config_hash = sha256 of the canonical JSON (sorted keys, defaults
// applied) of one experiment's what-to-measure fields, first 16 hex; study_hash = the same over the
// sorted list of config hashes.
import * as crypto from 'node:crypto';
import type { ExperimentConfig } from './types.ts';

/** JSON with object keys sorted at every depth; arrays keep their order; undefined keys dropped. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`cannot hash non-finite number ${value}`);
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  // Most objects on the hot path are built in sorted order; sort only when they are not.
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1]! > keys[i]!) {
      keys.sort();
      break;
    }
  }
  const parts: string[] = [];
  for (const k of keys) {
    const v = obj[k];
    if (v !== undefined) parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

// crypto.hash (one-shot, Node >= 20.12) avoids a Hash object per config; createHash is the fallback.
const oneShot = (crypto as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;

export function sha256Hex16(text: string): string {
  return (oneShot ? oneShot('sha256', text, 'hex') : crypto.createHash('sha256').update(text).digest('hex')).slice(0, 16);
}

export function configHash(config: ExperimentConfig): string {
  return sha256Hex16(canonicalJson(config));
}

/** A deep copy with object keys in sorted order, so that JSON.stringify of it is canonical. */
export function sortedDeep<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(sortedDeep) as T;
  const obj = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(obj).sort()) if (obj[k] !== undefined) out[k] = sortedDeep(obj[k]);
  return out as T;
}

/**
 * Hash of a config built by the grammar, whose objects are already in sorted key order (see
 * expandConfig): JSON.stringify is then the canonical JSON, and native. Equal to configHash.
 */
export function configHashOfSorted(config: ExperimentConfig): string {
  return sha256Hex16(JSON.stringify(config));
}

export function studyHash(configHashes: Iterable<string>): string {
  return sha256Hex16([...configHashes].sort().join('\n'));
}
