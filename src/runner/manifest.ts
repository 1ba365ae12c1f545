// manifest.json (the checkpoint) and events.jsonl (the journal) of a study directory: the writer.
//
// Every transition is first appended to the journal, then the manifest is rewritten atomically
// (temp file in the same dir → fsync → rename → fsync dir), so a runner killed at any instant
// leaves either the old or the new manifest, never a partial one, and the journal can rebuild it.
// Runs are serialised once per change and cached. Up to INLINE_RUN_LIMIT (200) runs the manifest is one
// file; above it, runs live in chunk files `manifest.d/runs-NNNNN.json` (RUNS_PER_CHUNK each) that
// manifest.json lists in `run_chunks`, so a transition rewrites one small chunk and the header
// instead of megabytes (see bench/runner.bench.ts). Each file is replaced atomically, chunk before
// header, and readers recompute counts from the runs, so a stale header is never wrong.
// An n_cycles: auto study's rounds (one stop per config: large for a large grid, and changed once a
// round) live in rounds.json, rewritten only when they change (setRounds), before the header.
// The format is src/study-dir/schema.ts; always read through src/study-dir/read.ts readManifest().
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { sweepStaleTempFiles, writeFileAtomicSync } from '../atomic-file.ts';
import { CHUNK_DIR, JOURNAL_FILE, ROUNDS_FILE, chunkFileName, manifestPath } from '../study-dir/files.ts';
import { readManifest } from '../study-dir/read.ts';
import { countStatuses, type Manifest, type Rounds, type RunRecord, type StudyStatus } from '../study-dir/schema.ts';
import type { RunnerEvent } from './events.ts';

export const INLINE_RUN_LIMIT = 200;
export const RUNS_PER_CHUNK = 100;

function writeAll(fd: number, data: string): void {
  const buf = Buffer.from(data, 'utf8');
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/**
 * The in-memory manifest plus its two files. `commit(events)` appends the events to the journal,
 * then rewrites the manifest atomically. Callers mutate runs through `updateRun` so that the
 * per-run serialisation cache stays right.
 */
export class ManifestStore {
  readonly manifestPath: string;
  readonly journalPath: string;
  private runJson: string[];
  private journalFd: number | null = null;
  private readonly fsync: boolean;
  private readonly inlineLimit: number;
  /** Chunks changed since the last commit (chunked layout only); null = all. */
  private dirtyChunks: Set<number> | null = null;
  /** The rounds changed since they were last written (or were never written to rounds.json). */
  private roundsDirty: boolean;

  constructor(
    readonly studyDir: string,
    readonly manifest: Manifest,
    options: { fsync?: boolean; inlineRunLimit?: number } = {},
  ) {
    this.manifestPath = manifestPath(studyDir);
    this.journalPath = path.join(studyDir, JOURNAL_FILE);
    this.runJson = manifest.runs.map((r) => JSON.stringify(r));
    this.fsync = options.fsync ?? true;
    this.inlineLimit = options.inlineRunLimit ?? INLINE_RUN_LIMIT;
    this.roundsDirty = manifest.rounds !== undefined && manifest.rounds_file === undefined;
  }

  static open(studyDir: string, options: { fsync?: boolean; inlineRunLimit?: number } = {}): ManifestStore {
    sweepStaleTempFiles(studyDir, [CHUNK_DIR]);
    return new ManifestStore(studyDir, readManifest(studyDir), options);
  }

  run(index: number): RunRecord {
    const r = this.manifest.runs[index];
    if (!r || r.index !== index) {
      const found = this.manifest.runs.find((x) => x.index === index);
      if (!found) throw new Error(`${this.manifestPath}: no run with index ${index}`);
      return found;
    }
    return r;
  }

  /** Apply a change to one run; the caller commits afterwards. */
  updateRun(index: number, change: (r: RunRecord) => void): RunRecord {
    const r = this.run(index);
    change(r);
    const pos = this.manifest.runs.indexOf(r);
    this.runJson[pos] = JSON.stringify(r);
    this.dirtyChunks?.add(Math.floor(pos / RUNS_PER_CHUNK));
    return r;
  }

  /** Replace the whole run list (resume top-up, repair); re-serialises everything. */
  setRuns(runs: RunRecord[]): void {
    this.manifest.runs = runs;
    this.runJson = runs.map((r) => JSON.stringify(r));
    this.dirtyChunks = null;
  }

  setStatus(status: StudyStatus): void {
    this.manifest.status = status;
  }

  /** n_cycles: auto: replace the rounds (written to rounds.json at the next commit). */
  setRounds(rounds: Rounds): void {
    this.manifest.rounds = rounds;
    this.roundsDirty = true;
  }

  /** Append events to the journal (before the manifest), then rewrite the manifest atomically. */
  commit(events: RunnerEvent[] = []): void {
    this.appendJournal(events);
    this.manifest.counts = countStatuses(this.manifest.runs);
    this.manifest.updated_at = new Date().toISOString();
    if (this.manifest.rounds && this.roundsDirty) {
      writeFileAtomicSync(path.join(this.studyDir, ROUNDS_FILE), JSON.stringify(this.manifest.rounds) + '\n', { fsync: this.fsync });
      this.manifest.rounds_file = ROUNDS_FILE;
      this.roundsDirty = false;
    }
    if (this.runJson.length > this.inlineLimit) this.writeChunked();
    else {
      delete this.manifest.run_chunks;
      writeFileAtomicSync(this.manifestPath, this.serialiseInline(), { fsync: this.fsync });
    }
  }

  appendJournal(events: RunnerEvent[]): void {
    if (events.length === 0) return;
    if (this.journalFd === null) this.journalFd = openSync(this.journalPath, 'a');
    writeAll(this.journalFd, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  }

  close(): void {
    if (this.journalFd !== null) closeSync(this.journalFd);
    this.journalFd = null;
  }

  private serialiseInline(): string {
    const { runs: _runs, run_chunks: _chunks, rounds: _rounds, ...head } = this.manifest;
    const headJson = JSON.stringify(head);
    // one run per line keeps the file greppable and diffable
    return `${headJson.slice(0, -1)},"runs":[\n${this.runJson.join(',\n')}\n]}\n`;
  }

  private writeChunked(): void {
    const count = Math.ceil(this.runJson.length / RUNS_PER_CHUNK);
    const wasChunked = this.manifest.run_chunks?.count === count;
    const chunkDir = path.join(this.studyDir, CHUNK_DIR);
    mkdirSync(chunkDir, { recursive: true });
    for (let i = 0; i < count; i++) {
      if (wasChunked && this.dirtyChunks && !this.dirtyChunks.has(i)) continue;
      const slice = this.runJson.slice(i * RUNS_PER_CHUNK, (i + 1) * RUNS_PER_CHUNK);
      writeFileAtomicSync(path.join(chunkDir, chunkFileName(i)), `[\n${slice.join(',\n')}\n]\n`, { fsync: this.fsync });
    }
    this.dirtyChunks = new Set();
    this.manifest.run_chunks = { dir: CHUNK_DIR, runs_per_chunk: RUNS_PER_CHUNK, count };
    const { runs: _runs, rounds: _rounds, ...head } = this.manifest;
    writeFileAtomicSync(this.manifestPath, JSON.stringify({ ...head, runs: [] }) + '\n', { fsync: this.fsync });
  }
}
