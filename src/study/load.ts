// Study YAML → validated raw objects, keeping positions so every error names file:line:col.
// Each file of a `base:` chain is validated on its own (errors point into the file that has them),
// then the chain is deep-merged (base first, the study file last).
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { StudyInputError, formatPath, type StudyIssue } from './errors.ts';
import { studyFileSchema, zodIssuesToMessages } from './schema.ts';

/** Study files above this size are refused: a study is a few KB; anything larger is a mistake or an attack. */
export const MAX_STUDY_FILE_BYTES = 1 << 20;
/** yaml's toJS alias budget: enough for real anchors, far below a billion-laughs expansion. */
export const MAX_ALIAS_COUNT = 100;

export interface SourceFile {
  /** Absolute path. */
  file: string;
  doc: Document.Parsed;
  lineCounter: LineCounter;
  data: Record<string, unknown>;
}

export type Path = ReadonlyArray<string | number>;

/** Position of the value (or key) at `path`; falls back to the deepest node that exists. */
export function locate(src: SourceFile, path: Path, atKey = false): { line: number; col: number } {
  let node: unknown = src.doc.contents;
  let offset = (node as Node | null)?.range?.[0] ?? 0;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      const keyNode = pair.key as Node;
      if (atKey && seg === path[path.length - 1]) {
        offset = keyNode.range?.[0] ?? offset;
        node = null;
        break;
      }
      node = pair.value;
      offset = (pair.value as Node | null)?.range?.[0] ?? keyNode.range?.[0] ?? offset;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      if (!item) break;
      node = item;
      offset = item.range?.[0] ?? offset;
    } else break;
  }
  return src.lineCounter.linePos(offset);
}

/** Whether `path` exists in this file's document. */
export function hasPath(src: SourceFile, path: Path): boolean {
  let v: unknown = src.data;
  for (const seg of path) {
    if (!v || typeof v !== 'object' || !(seg in (v as object))) return false;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return true;
}

export function issueAt(src: SourceFile, path: Path, message: string, atKey = false): StudyIssue {
  const pos = locate(src, path, atKey);
  return { file: src.file, line: pos.line, col: pos.col, path: formatPath(path), message };
}

function decodeUtf8(file: string, bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // Find the first bad byte to name its line and column.
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0x0a) {
        const chunk = bytes.subarray(lineStart, i);
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(chunk);
        } catch {
          break;
        }
        line++;
        lineStart = i + 1;
      }
    }
    let col = 1;
    const rest = bytes.subarray(lineStart, bytes.indexOf(0x0a, lineStart) === -1 ? bytes.length : bytes.indexOf(0x0a, lineStart));
    for (let j = 1; j <= rest.length; j++) {
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(rest.subarray(0, j));
        col = j + 1;
      } catch {
        // A multi-byte sequence may still be incomplete at j; keep going until it cannot be valid.
        if (j - col >= 3) break;
      }
    }
    throw new StudyInputError({ file, line, col, path: '', message: 'expected a UTF-8 text file, found bytes that are not valid UTF-8' });
  }
}

/** Reads, decodes, parses and validates one study file (no base resolution). */
export function loadStudyFile(file: string): SourceFile {
  let bytes: Buffer;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new StudyInputError({ file, line: null, col: null, path: '', message: 'expected a study YAML file, got a directory' });
    if (st.size > MAX_STUDY_FILE_BYTES) {
      throw new StudyInputError({ file, line: null, col: null, path: '', message: `expected a study file under ${MAX_STUDY_FILE_BYTES} bytes, got ${st.size}` });
    }
    bytes = readFileSync(file);
  } catch (err) {
    if (err instanceof StudyInputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new StudyInputError({ file, line: null, col: null, path: '', message: code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(err)})` });
  }
  const text = decodeUtf8(file, bytes);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new StudyInputError(
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return { file, line: pos.line, col: pos.col, path: '', message: `YAML syntax error: ${e.message.split('\n')[0]}` };
      }),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    throw new StudyInputError({
      file, line: 1, col: 1, path: '',
      message: `YAML aliases expand too much (${(err as Error).message}); expected at most ${MAX_ALIAS_COUNT} alias expansions`,
    });
  }
  const src: SourceFile = { file, doc, lineCounter, data: {} };
  if (data === null || data === undefined) {
    // an empty file (or only comments): one clear message instead of "backend/model missing"
    throw new StudyInputError({ file, line: 1, col: 1, path: '', message: 'the file has no study fields (empty or only comments): expected at least backend: and model:' });
  }
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new StudyInputError(issueAt(src, [], 'expected a mapping of study fields at the top level'));
  }
  src.data = data as Record<string, unknown>;
  const schema = studyFileSchema();
  const parsed = schema.safeParse(src.data);
  if (!parsed.success) {
    throw new StudyInputError(zodIssuesToMessages(parsed.error, schema, src.data).map((m) => issueAt(src, m.path, m.message, m.atKey)));
  }
  resolveLocalPaths(src);
  return src;
}

/** A model string that names a local file rather than a hub id or a builtin. */
export function isLocalModelPath(model: string): boolean {
  return model.startsWith('./') || model.startsWith('../') || model.startsWith('/') || model.startsWith('~/') || model.toLowerCase().endsWith('.gguf');
}

// Relative model and dataset paths are relative to the file that names them (a base in another
// folder keeps working). Rewritten in place to absolute paths.
function resolveLocalPaths(src: SourceFile): void {
  const dir = dirname(src.file);
  const fixModel = (v: unknown) => (typeof v === 'string' && isLocalModelPath(v) && !v.startsWith('~/') && !isAbsolute(v) ? resolve(dir, v) : v);
  const fixDataset = (v: unknown) => {
    if (typeof v === 'string' && v.endsWith('.jsonl')) return { kind: 'jsonl', path: resolve(dir, v) };
    if (v && typeof v === 'object' && (v as { kind?: unknown }).kind === 'jsonl') {
      return { kind: 'jsonl', path: resolve(dir, String((v as { path: unknown }).path)) };
    }
    return v;
  };
  const fixEntry = (o: Record<string, unknown>) => {
    if ('model' in o) o.model = fixModel(o.model);
    if ('dataset' in o) o.dataset = fixDataset(o.dataset);
  };
  fixEntry(src.data);
  const sweep = src.data.sweep as Record<string, unknown> | undefined;
  if (sweep) {
    for (const [key, fix] of [['model', fixModel], ['dataset', fixDataset]] as const) {
      if (key in sweep) sweep[key] = Array.isArray(sweep[key]) ? (sweep[key] as unknown[]).map(fix) : fix(sweep[key]);
    }
  }
  for (const e of (src.data.experiments as Record<string, unknown>[] | undefined) ?? []) fixEntry(e);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Deep merge: mappings merge key by key (a nested section never wipes its siblings); anything else replaces. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (isPlainObject(base) && isPlainObject(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : v;
    return out;
  }
  return over;
}

export interface LoadedStudy {
  /** The study file first, then its base, the base's base, … */
  chain: SourceFile[];
  /** All files merged (bases first), `base` removed. */
  merged: Record<string, unknown>;
}

/** Loads a study and its `base:` chain. A cycle or a missing base is an error at the `base:` line. */
export function loadStudy(studyPath: string): LoadedStudy {
  const chain: SourceFile[] = [];
  const seen = new Map<string, string>();
  let file = resolve(studyPath);
  for (;;) {
    const src = loadStudyFile(file);
    let real = file;
    try {
      real = realpathSync(file);
    } catch {
      /* loadStudyFile already read it */
    }
    seen.set(real, file);
    chain.push(src);
    const base = src.data.base;
    if (typeof base !== 'string') break;
    const next = resolve(dirname(file), base);
    let nextReal: string;
    try {
      nextReal = realpathSync(next);
    } catch {
      throw new StudyInputError(issueAt(src, ['base'], `base file not found: ${next}`));
    }
    if (seen.has(nextReal)) {
      const names = [...chain.map((s) => s.file), next].join(' → ');
      throw new StudyInputError(issueAt(src, ['base'], `base chain has a cycle: ${names}`));
    }
    file = next;
  }
  let merged: unknown = {};
  for (let i = chain.length - 1; i >= 0; i--) merged = deepMerge(merged, chain[i]!.data);
  const out = merged as Record<string, unknown>;
  delete out.base;
  return { chain, merged: out };
}

/** The file of the chain that defines `path` (the study file wins over its bases). */
export function sourceOf(chain: SourceFile[], path: Path): SourceFile {
  return chain.find((s) => hasPath(s, path)) ?? chain[0]!;
}
