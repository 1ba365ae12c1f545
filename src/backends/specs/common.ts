// Helpers shared by the backend specs. Pure: no process, no file I/O.
import { z } from 'zod';
import type { ExperimentConfig } from '../../study/types.ts';
import type { BackendCheck, DoctorProbe } from '../types.ts';

/** Precisions of HF-checkpoint servers (vLLM, SGLang, TensorRT-LLM): `auto` = the checkpoint's dtype. */
export const SERVER_PRECISIONS = ['auto', 'fp32', 'fp16', 'bf16', 'fp8'] as const;

/** GGUF file types llama.cpp loads; `auto` = whatever the file holds. The file decides, so these only label it. */
export const GGUF_PRECISIONS = [
  'auto', 'f32', 'f16', 'bf16', 'q8_0', 'q6_k', 'q5_k_m', 'q5_k_s', 'q5_0', 'q4_k_m', 'q4_k_s', 'q4_0',
  'q3_k_m', 'q2_k', 'iq4_xs', 'iq3_xxs', 'iq2_xxs',
] as const;

/** Nominal size of builtin:tiny-random (a few MB GGUF written on first use). */
export const TINY_RANDOM_MODEL_BYTES = 8 * 1024 * 1024;

/** Extra command-line arguments appended verbatim to a managed server's argv (never through a shell). */
export const extraArgsSchema = z.array(z.string()).default([]);

/** Seconds a managed server may take from spawn to a healthy `/health` or `/v1/models`. */
export const startupTimeoutSchema = z.number().positive().default(600);

export function isBuiltinModel(model: string): boolean {
  return model.startsWith('builtin:');
}

export function isGgufModel(model: string): boolean {
  return model.toLowerCase().endsWith('.gguf') || isBuiltinModel(model);
}

/** Reason list entry for backends that serve HF checkpoints and cannot load our builtin GGUF. */
export function builtinModelReason(backend: string, config: ExperimentConfig): string[] {
  return isBuiltinModel(config.model)
    ? [`model "${config.model}" is a builtin GGUF for llamacpp; backend ${backend} cannot load it`]
    : [];
}

/** Bytes per weight for a precision, for load-time and memory heuristics. */
export function bytesPerWeight(precision: string): number {
  const p = precision.toLowerCase();
  if (p === 'fp32' || p === 'f32') return 4;
  if (p === 'fp16' || p === 'f16' || p === 'bf16' || p === 'auto') return 2;
  if (p === 'fp8' || p === 'int8' || p.startsWith('q8')) return 1.06;
  if (p.startsWith('q6')) return 0.82;
  if (p.startsWith('q5')) return 0.69;
  if (p.startsWith('q4') || p.startsWith('iq4') || p === 'int4' || p === 'fp4') return 0.56;
  if (p.startsWith('q3') || p.startsWith('iq3')) return 0.43;
  if (p.startsWith('q2') || p.startsWith('iq2')) return 0.33;
  return 2;
}

/**
 * Load time of a managed server: process start + weights read at a conservative ~1 GB/s +
 * (for CUDA-graph engines) graph capture. Unknown size → assume a 7-8B fp16 checkpoint.
 */
export function serverLoadSeconds(modelBytes: number | null, fixedSeconds: number): number {
  const bytes = modelBytes ?? 16e9;
  return fixedSeconds + bytes / 1e9;
}

/** Conservative decode rate of a GPU server at a given concurrency: ~30 tok/s per stream, sublinear. */
export function serverTokensPerSecond(batchSize: number): number {
  return 30 * Math.pow(Math.max(1, batchSize), 0.8);
}

// ── managed servers' argv ───────────────────────────────────────────────────────────────────

const DTYPE: Record<string, string> = { fp16: 'float16', bf16: 'bfloat16', fp32: 'float32' };

/** `--dtype` value of a precision for HF-checkpoint servers (undefined: leave it to the server). */
export function serverDtype(precision: string): string | undefined {
  return DTYPE[precision];
}

export const kebab = (s: string): string => s.replace(/_/g, '-');

/** Appends `flag value` unless the value is null/undefined (the server's own default then). */
export function pushFlag(argv: string[], flag: string, value: unknown): void {
  if (value === null || value === undefined) return;
  argv.push(flag, String(value));
}

/** `extra_args` of a server section, appended verbatim (never through a shell). */
export function extraArgs(params: Record<string, unknown>): string[] {
  return Array.isArray(params.extra_args) ? params.extra_args.map(String) : [];
}

// ── llem doctor ─────────────────────────────────────────────────────────────────────────────

/**
 * A backend that needs Python modules: ok when one of the Pythons tried has them all (named), else
 * what the first one lacks and the pip line that installs it.
 */
export async function pythonModulesCheck(name: string, modules: string[], what: string, probe: DoctorProbe): Promise<BackendCheck> {
  const probes = await probe.pythonModules(modules);
  const py = probes.find((p) => modules.every((m) => p.found[m])) ?? probes[0];
  if (!py) return { name, status: 'missing', detail: `needs python3 with ${modules.join(', ')} (no python3 on PATH)` };
  const absent = modules.filter((m) => !py.found[m]);
  return absent.length === 0
    ? { name, status: 'ok', detail: `${what} found by ${py.python}` }
    : { name, status: 'missing', detail: `${py.python} lacks ${absent.join(', ')}: pip install ${absent.map((m) => m.replace('_', '-')).join(' ')}` };
}
