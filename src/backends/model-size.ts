// How big a config's model is, for the load-time estimate, the memory fit and the model-aware run
// timeout: one answer used by `llem plan`, the local runner and the Slurm task alike.
//   - the backend's own builtin models have a known size (spec.builtinModelBytes);
//   - a remote model (openai) has none here;
//   - a file: its size; a folder of weights: the sum of its weight files (safetensors, else
//     .bin/.pt/.pth, else .gguf — a checkpoint often ships one format twice);
//   - a Hugging Face hub id: the weights in the local hub cache when they are there, else the
//     parameter count written in its name ("Llama-3-70B", "Qwen2.5-0.5B", "Mixtral-8x7B") or
//     computed from a cached config.json, times the bytes per weight of the precision.
// Null when none of these says anything (the estimate then assumes a mid-size model).
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExperimentConfig } from '../study/types.ts';
import { getBackendSpec } from './registry.ts';
import { bytesPerWeight } from './specs/common.ts';

const WEIGHT_FORMATS: RegExp[] = [/\.safetensors$/i, /\.(bin|pt|pth)$/i, /\.gguf$/i];

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(2)) : p;
}

/** Sum of the weight files directly in `dir`, in the first format present; null when none. */
export function weightFolderBytes(dir: string): number | null {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return null;
  }
  for (const format of WEIGHT_FORMATS) {
    let sum = 0;
    let found = false;
    for (const name of names) {
      if (!format.test(name)) continue;
      try {
        const st = statSync(path.join(dir, name)); // follows the hub cache's symlinks to blobs
        if (!st.isFile()) continue;
        sum += st.size;
        found = true;
      } catch {
        // a dangling link of a half-downloaded snapshot
      }
    }
    if (found) return sum;
  }
  return null;
}

function localPathBytes(p: string): number | null {
  try {
    const st = statSync(p);
    if (st.isFile()) return st.size;
    if (st.isDirectory()) return weightFolderBytes(p);
  } catch {
    // not here (planned on another machine): unknown
  }
  return null;
}

/** The hub cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub). */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface');
  return path.join(home, 'hub');
}

/** The cached snapshot folder of a hub id: the one refs/main names, else the newest. */
function hubSnapshotDir(id: string, env: NodeJS.ProcessEnv): string | null {
  const repo = path.join(hubCacheDir(env), `models--${id.replace(/\//g, '--')}`);
  const snapshots = path.join(repo, 'snapshots');
  if (!existsSync(snapshots)) return null;
  try {
    const ref = readFileSync(path.join(repo, 'refs', 'main'), 'utf8').trim();
    if (ref && existsSync(path.join(snapshots, ref))) return path.join(snapshots, ref);
  } catch {
    // no refs/main: pick the newest snapshot
  }
  let best: { dir: string; mtimeMs: number } | null = null;
  for (const name of readdirSync(snapshots)) {
    const dir = path.join(snapshots, name);
    const mtimeMs = statSync(dir).mtimeMs;
    if (!best || mtimeMs > best.mtimeMs) best = { dir, mtimeMs };
  }
  return best?.dir ?? null;
}

/** Parameter count written in a model name: `70B`, `0.5B`, `8x7B`, `125M` (a whole token of the name). */
export function paramsFromName(id: string): number | null {
  const name = id.split('/').pop() ?? id;
  const m = /(?:^|[-_.])(?:(\d+)x)?(\d+(?:\.\d+)?)([bm])(?=$|[-_.])/i.exec(name);
  if (!m) return null;
  const experts = m[1] ? Number(m[1]) : 1;
  const n = Number(m[2]) * (m[3]!.toLowerCase() === 'b' ? 1e9 : 1e6);
  return Number.isFinite(n) && n > 0 ? experts * n : null;
}

/**
 * Parameters of a transformer from its config.json (decoder layers, embeddings, gated MLP, grouped
 * KV heads, experts); null when the fields are not there.
 */
export function paramsFromConfigJson(cfg: Record<string, unknown>): number | null {
  const num = (k: string): number | null => (typeof cfg[k] === 'number' && Number.isFinite(cfg[k]) ? (cfg[k] as number) : null);
  const h = num('hidden_size') ?? num('n_embd') ?? num('d_model');
  const layers = num('num_hidden_layers') ?? num('n_layer') ?? num('num_layers');
  const vocab = num('vocab_size');
  if (h === null || layers === null || vocab === null) return null;
  const heads = num('num_attention_heads') ?? num('n_head') ?? 1;
  const kvHeads = num('num_key_value_heads') ?? heads;
  const inter = num('intermediate_size') ?? num('n_inner') ?? 4 * h;
  const experts = num('num_local_experts') ?? num('num_experts') ?? 1;
  const attention = 2 * h * h + 2 * h * ((h * kvHeads) / heads);
  const mlp = 3 * h * inter * experts;
  const embeddings = vocab * h * (cfg.tie_word_embeddings === true ? 1 : 2);
  return layers * (attention + mlp) + embeddings;
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, float16: 2, bfloat16: 2 };

function hubIdBytes(id: string, precision: string, env: NodeJS.ProcessEnv): number | null {
  const snapshot = hubSnapshotDir(id, env);
  const cached = snapshot ? weightFolderBytes(snapshot) : null;
  if (cached !== null) return cached;
  let cfg: Record<string, unknown> | null = null;
  if (snapshot) {
    try {
      cfg = JSON.parse(readFileSync(path.join(snapshot, 'config.json'), 'utf8')) as Record<string, unknown>;
    } catch {
      cfg = null;
    }
  }
  const params = paramsFromName(id) ?? (cfg ? paramsFromConfigJson(cfg) : null);
  if (params === null) return null;
  const dtype = typeof cfg?.torch_dtype === 'string' ? DTYPE_BYTES[cfg.torch_dtype] : undefined;
  const perWeight = precision === 'auto' ? (dtype ?? 2) : bytesPerWeight(precision);
  return Math.round(params * perWeight);
}

/** The size of `config`'s model in bytes (see the header), or null when it cannot be known here. */
export function resolveModelBytes(config: Pick<ExperimentConfig, 'model' | 'backend' | 'precision'>, env: NodeJS.ProcessEnv = process.env): number | null {
  const spec = getBackendSpec(config.backend);
  if (spec?.remoteModel) return null;
  const builtin = spec?.builtinModelBytes?.[config.model];
  if (builtin !== undefined) return builtin;
  if (config.model.startsWith('builtin:')) return null;
  const local = expandHome(config.model);
  if (path.isAbsolute(local)) return localPathBytes(local);
  // `org/name` or `name`: a hub id (a relative path was made absolute against the study file)
  return hubIdBytes(config.model, config.precision, env);
}

/** resolveModelBytes with a cache per model (a plan asks once per config; many share a model). */
export function modelBytesResolver(env: NodeJS.ProcessEnv = process.env): (config: Pick<ExperimentConfig, 'model' | 'backend' | 'precision'>) => number | null {
  const cache = new Map<string, number | null>();
  return (config) => {
    const key = `${config.backend}\0${config.precision}\0${config.model}`;
    if (!cache.has(key)) cache.set(key, resolveModelBytes(config, env));
    return cache.get(key)!;
  };
}
