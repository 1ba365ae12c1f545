// Local files a plan depends on (a .jsonl dataset, a model path), checked before anything runs.
// Without this a missing or malformed dataset surfaced only as every run failing in its
// pre-flight, after a study dir had been created (exit 1 instead of a bad-input error naming the
// YAML line). `llem run` refuses such a plan (exit 2); `llem plan` lists the problems as warnings,
// since a study may be planned on one machine for files that exist on another.
import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { isPair, isScalar, isSeq, visit, type Node } from 'yaml';
import { getBackendSpec } from '../backends/registry.ts';
import type { StudyIssue } from './errors.ts';
import { loadStudy, type SourceFile } from './load.ts';
import type { ExperimentConfig } from './types.ts';

/** Datasets above this size are only checked to exist (parsing them here would double the read). */
const MAX_DATASET_PARSE_BYTES = 256 << 20;

function expandHome(p: string): string {
  return p.startsWith('~/') ? join(homedir(), p.slice(2)) : p;
}

/** Where in the study's files a value resolving to `target` is written (for file:line:col). */
function locateValue(chain: SourceFile[], field: 'model' | 'dataset', target: string): Omit<StudyIssue, 'message'> | null {
  for (const src of chain) {
    const dir = dirname(src.file);
    let found: Omit<StudyIssue, 'message'> | null = null;
    visit(src.doc, {
      Scalar(_key, node, ancestors) {
        if (typeof node.value !== 'string') return;
        const v = node.value;
        const abs = v.startsWith('~/') ? expandHome(v) : resolve(dir, v);
        if (abs !== target) return;
        const segs: Array<string | number> = [];
        const chainNodes = [...ancestors, node] as unknown[];
        for (let i = 0; i < chainNodes.length; i++) {
          const a = chainNodes[i];
          if (isPair(a) && isScalar(a.key)) segs.push(String(a.key.value));
          else if (isSeq(a)) segs.push(a.items.indexOf(chainNodes[i + 1] as never));
        }
        if (!segs.some((s) => s === field || s === 'path')) return;
        const pos = src.lineCounter.linePos((node as Node).range?.[0] ?? 0);
        let path = '';
        for (const s of segs) path += typeof s === 'number' ? `[${s}]` : path ? `.${s}` : s;
        found = { file: src.file, line: pos.line, col: pos.col, path };
        return visit.BREAK;
      },
    });
    if (found) return found;
  }
  return null;
}

function statKind(p: string): 'file' | 'dir' | 'missing' | 'other' {
  try {
    const st = statSync(p);
    return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
  } catch {
    return 'missing';
  }
}

/**
 * Problems with the local files the configs use: a .jsonl dataset that is missing, a directory,
 * or has a bad line; a local model path that does not exist. Each names the study file, line and
 * field that refers to the file. Empty when everything is readable.
 */
export async function localInputIssues(studyPath: string, configs: Iterable<Pick<ExperimentConfig, 'model' | 'backend' | 'dataset'>>): Promise<StudyIssue[]> {
  const datasets = new Set<string>();
  const models = new Set<string>();
  for (const c of configs) {
    if (c.dataset.kind === 'jsonl') datasets.add(c.dataset.path);
    // a backend whose `model` names a model on someone else's server has no local path to check
    if (!getBackendSpec(c.backend)?.remoteModel) {
      const m = expandHome(c.model);
      if (m.startsWith('/')) models.add(m);
    }
  }
  if (datasets.size === 0 && models.size === 0) return [];
  const problems: Array<{ field: 'model' | 'dataset'; target: string; message: string }> = [];
  for (const path of datasets) {
    const kind = statKind(path);
    if (kind === 'missing') problems.push({ field: 'dataset', target: path, message: `file not found: ${path} (expected a .jsonl file of prompts; a relative path is relative to the study file)` });
    else if (kind !== 'file') problems.push({ field: 'dataset', target: path, message: `expected a .jsonl file, got a ${kind === 'dir' ? 'directory' : 'special file'}: ${path}` });
    else if (statSync(path).size <= MAX_DATASET_PARSE_BYTES) {
      const { readJsonlPrompts } = await import('../worker/workload.ts');
      try {
        await readJsonlPrompts(path);
      } catch (err) {
        problems.push({ field: 'dataset', target: path, message: (err as Error).message });
      }
    }
  }
  for (const path of models) {
    const kind = statKind(path);
    if (kind === 'missing') problems.push({ field: 'model', target: path, message: `not found: ${path} (a relative path is relative to the study file)` });
    else if (kind === 'dir' && path.toLowerCase().endsWith('.gguf')) problems.push({ field: 'model', target: path, message: `expected a .gguf file, got a directory: ${path}` });
  }
  if (problems.length === 0) return [];
  let chain: SourceFile[] = [];
  try {
    chain = loadStudy(studyPath).chain;
  } catch {
    // the study was planned moments ago; if it cannot be re-read, report without positions
  }
  return problems.map((p) => {
    const at = locateValue(chain, p.field, p.target);
    return at ? { ...at, message: p.message } : { file: resolve(studyPath), line: null, col: null, path: p.field, message: p.message };
  });
}
