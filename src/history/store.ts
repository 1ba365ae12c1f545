// The run history on disk: append-only JSONL under <state dir>/history/, never required.
//  - Writers append one line (< 4 KiB, one write(2) with O_APPEND) to runs-<host>.jsonl: lines of
//    concurrent writers on one host (per_gpu slots, two studies) never interleave. Slurm tasks on
//    other nodes of a shared home write their own host's file, because O_APPEND is not atomic
//    across NFS clients.
//  - Bounded: a file above SEGMENT_BYTES is renamed to a closed segment (rename is atomic; a writer
//    that still holds the old file appends into the segment, which is read like any other); only
//    the newest CLOSED_SEGMENTS_PER_HOST segments of a host and MAX_FILES files in all are kept.
//  - Readers skip what they cannot use (torn last line, other version, unreadable file) and say why;
//    a missing directory is an empty history. Nothing here throws to the caller.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { historyDir } from './paths.ts';
import { historyRecordSchema, type HistoryRecord } from './schema.ts';

export const SEGMENT_BYTES = 128 * 1024;
export const CLOSED_SEGMENTS_PER_HOST = 2;
export const MAX_FILES = 48;
/** One write(2) of at most this many bytes; below PIPE_BUF (4096) so an append is one piece. */
export const MAX_LINE_BYTES = 4000;
/** A history file above this is not read (something else wrote it). */
export const MAX_READ_BYTES = 4 * SEGMENT_BYTES;

export interface LoadedHistory {
  records: HistoryRecord[];
  /** Why some or all of the history was not used (file and reason); empty when all was read. */
  problems: string[];
  dir: string;
}

export type AppendOutcome = { recorded: true; file: string } | { recorded: false; reason: string };

function hostFileStem(): string {
  return `runs-${hostname().replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64) || 'host'}`;
}

// Created one component at a time: Node's recursive mkdir can spin under /proc (see cli/run.ts).
function ensureDir(dir: string): void {
  const missing: string[] = [];
  let probe = dir;
  for (;;) {
    try {
      if (statSync(probe).isDirectory()) break;
      throw Object.assign(new Error(`${probe} is not a directory`), { code: 'ENOTDIR' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    missing.push(probe);
    const parent = path.dirname(probe);
    if (parent === probe) break;
    probe = parent;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

function errText(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

/** Appends one record. Returns why not instead of throwing: the history is never required. */
export function appendHistoryRecord(record: HistoryRecord, dir = historyDir()): AppendOutcome {
  const line = JSON.stringify(record) + '\n';
  const bytes = Buffer.from(line, 'utf8');
  if (bytes.length > MAX_LINE_BYTES) return { recorded: false, reason: `record of ${bytes.length} bytes exceeds ${MAX_LINE_BYTES} (not appended: it could interleave with another writer)` };
  const file = path.join(dir, `${hostFileStem()}.jsonl`);
  try {
    ensureDir(dir);
    const fd = openSync(file, 'a', 0o600);
    try {
      const written = writeSync(fd, bytes, 0, bytes.length);
      if (written !== bytes.length) return { recorded: false, reason: `${file}: short write (${written} of ${bytes.length} bytes)` };
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    return { recorded: false, reason: `${file}: ${errText(err)}` };
  }
  try {
    rotateAndPrune(dir, file);
  } catch {
    // bounding is best effort: the record is written; the next append tries again
  }
  return { recorded: true, file };
}

function rotateAndPrune(dir: string, file: string): void {
  if (statSync(file).size <= SEGMENT_BYTES) return;
  const stem = path.basename(file, '.jsonl');
  try {
    renameSync(file, path.join(dir, `${stem}.${Date.now()}-${process.pid}.jsonl`));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // another writer rotated it first
  }
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => {
      try {
        return { name: f, mtimeMs: statSync(path.join(dir, f)).mtimeMs };
      } catch {
        return null;
      }
    })
    .filter((f): f is { name: string; mtimeMs: number } => f !== null)
    .sort((a, b) => b.mtimeMs - a.mtimeMs);
  const closedOfHost = files.filter((f) => f.name.startsWith(`${stem}.`) && f.name !== `${stem}.jsonl`);
  const drop = new Set(closedOfHost.slice(CLOSED_SEGMENTS_PER_HOST).map((f) => f.name));
  for (const f of files.filter((f) => !drop.has(f.name)).slice(MAX_FILES)) drop.add(f.name);
  for (const name of drop) {
    try {
      unlinkSync(path.join(dir, name));
    } catch {
      // already pruned by another writer
    }
  }
}

function parseLine(line: string): HistoryRecord | null {
  const parse = (text: string): HistoryRecord | null => {
    try {
      const parsed = historyRecordSchema.safeParse(JSON.parse(text));
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  };
  const whole = parse(line);
  if (whole) return whole;
  // A writer that died mid-line (disk full, SIGKILL between write calls of a huge line) leaves a
  // fragment without a newline; the next append then shares its line. Keep that next record.
  const start = line.lastIndexOf(RECORD_START);
  return start > 0 ? parse(line.slice(start)) : null;
}

const RECORD_START = '{"v":';

/** Every readable record, oldest file first. Never throws; `problems` says what was skipped. */
export function readHistory(dir = historyDir()): LoadedHistory {
  const out: LoadedHistory = { records: [], problems: [], dir };
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') out.problems.push(`${dir}: cannot read (${errText(err)}); history ignored`);
    return out;
  }
  const files = names
    .map((name) => {
      const file = path.join(dir, name);
      try {
        const st = statSync(file);
        return { file, size: st.size, mtimeMs: st.mtimeMs };
      } catch (err) {
        out.problems.push(`${file}: cannot read (${errText(err)}); ignored`);
        return null;
      }
    })
    .filter((f): f is { file: string; size: number; mtimeMs: number } => f !== null)
    .sort((a, b) => a.mtimeMs - b.mtimeMs);
  for (const f of files) {
    if (f.size > MAX_READ_BYTES) {
      out.problems.push(`${f.file}: ${f.size} bytes, larger than a history segment can be; ignored`);
      continue;
    }
    let text: string;
    try {
      text = readFileSync(f.file, 'utf8');
    } catch (err) {
      out.problems.push(`${f.file}: cannot read (${errText(err)}); ignored`);
      continue;
    }
    let bad = 0;
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const record = parseLine(line);
      if (record) out.records.push(record);
      else bad++;
    }
    if (bad) out.problems.push(`${f.file}: ${bad} line(s) unreadable or of another version; skipped`);
  }
  return out;
}
