// manifest.json (the checkpoint) and events.jsonl (the journal) of a study directory.
//
// Every transition is first appended to the journal, then the manifest is rewritten atomically
// (temp file in the same dir → fsync → rename → fsync dir), so a runner killed at any instant
// leaves either the old or the new manifest, never a partial one, and the journal can rebuild it.
// Runs are serialised once per change and cached. Up to INLINE_RUN_LIMIT (200) runs the manifest is one
// file; above it, runs live in chunk files `manifest.d/runs-NNNNN.json` (RUNS_PER_CHUNK each) that
// manifest.json lists in `run_chunks`, so a transition rewrites one small chunk and the header
// instead of megabytes (see bench/runner.bench.ts). Each file is replaced atomically, chunk before
// header, and readers recompute counts from the runs, so a stale header is never wrong.
// Always read through readManifest().
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { sweepStaleTempFiles, writeFileAtomicSync } from '../atomic-file.ts';
import path from 'node:path';
import { z } from 'zod';
import { ERROR_TYPES, PHASES } from './protocol.ts';
import { treeCleanupSchema } from './process-tree.ts';
import type { RunnerEvent, RunSnapshot, StatusCounts, StudySnapshot, StudyStatus } from './events.ts';

export const MANIFEST_SCHEMA_VERSION = 1 as const;
export const MANIFEST_FILE = 'manifest.json';
export const JOURNAL_FILE = 'events.jsonl';
export const PLAN_FILE = 'plan.json';
export const CHUNK_DIR = 'manifest.d';
export const INLINE_RUN_LIMIT = 200;
export const RUNS_PER_CHUNK = 100;

export function chunkFileName(i: number): string {
  return `runs-${String(i).padStart(5, '0')}.json`;
}

const runStatus = z.enum(['pending', 'running', 'completed', 'failed', 'skipped', 'interrupted']);
const errorType = z.enum(ERROR_TYPES).nullable();

export const attemptSchema = z.object({
  attempt: z.number().int().min(1),
  started_at: z.string(),
  ended_at: z.string().nullable(),
  status: runStatus,
  error_type: errorType,
  message: z.string().nullable(),
  phase_reached: z.enum(PHASES).nullable(),
  stderr_tail: z.string().nullable(),
  pid: z.number().int().nullable(),
  run_dir: z.string(),
  /** Start time of `pid` (clock ticks since boot, /proc/<pid>/stat field 22), so pid reuse is not mistaken for our child. */
  pid_start_ticks: z.number().nullable().optional(),
  /** What was left of the run's process tree after it ended (absent: nothing was checked). */
  tree_cleanup: treeCleanupSchema.nullable().optional(),
});

export const headlineSchema = z.object({
  energy_j: z.number().nullable(),
  energy_per_output_token_j: z.number().nullable(),
  output_tokens_per_s: z.number().nullable(),
  window_s: z.number().nullable(),
  duration_s: z.number().nullable(),
  flags: z.array(z.string()),
  energy_unavailable_reason: z.string().nullable().optional(),
});

export const runRecordSchema = z.object({
  index: z.number().int().min(0),
  run_id: z.string(),
  config_hash: z.string(),
  cycle: z.number().int(),
  status: runStatus,
  attempts: z.array(attemptSchema),
  error_type: errorType,
  result: z.string().nullable(),
  headline: headlineSchema.nullable(),
});

export const manifestSchema = z.object({
  schema_version: z.literal(MANIFEST_SCHEMA_VERSION),
  study_name: z.string(),
  study_hash: z.string(),
  /** sha256 of the frozen study.yaml, to refuse a resume against a changed study. */
  study_yaml_sha256: z.string().nullable(),
  status: z.enum(['running', 'paused', 'completed', 'failed', 'interrupted']),
  n_cycles: z.number().int().min(1),
  created_at: z.string(),
  started_at: z.string(),
  updated_at: z.string(),
  counts: z.object({
    pending: z.number().int(),
    running: z.number().int(),
    completed: z.number().int(),
    failed: z.number().int(),
    skipped: z.number().int(),
    interrupted: z.number().int(),
  }),
  runs: z.array(runRecordSchema),
  /** Present when runs are stored in chunk files (large studies); `runs` in the file is then empty. */
  run_chunks: z.object({ dir: z.string(), runs_per_chunk: z.number().int().min(1), count: z.number().int().min(0) }).optional(),
});
export type Manifest = z.infer<typeof manifestSchema>;
export type RunRecord = z.infer<typeof runRecordSchema>;

export class ManifestError extends Error {
  /** A damaged study dir is bad input to the command that reads it (src/cli/errors.ts exitCodeOf). */
  readonly exitCode = 2;
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message);
    this.name = 'ManifestError';
  }
}

export function emptyCounts(): StatusCounts {
  return { pending: 0, running: 0, completed: 0, failed: 0, skipped: 0, interrupted: 0 };
}

export function countStatuses(runs: ReadonlyArray<{ status: RunSnapshot['status'] }>): StatusCounts {
  const counts = emptyCounts();
  for (const r of runs) counts[r.status] += 1;
  return counts;
}

/** Reads and zod-checks manifest.json; errors name the file and the first bad field. */
export function readManifest(studyDir: string): Manifest {
  const file = path.join(studyDir, MANIFEST_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ManifestError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, file);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ManifestError(
      `${file}: not valid JSON (${(err as Error).message}); run \`llem repair-manifest ${studyDir}\` to rebuild it`,
      file,
    );
  }
  const header = raw as { run_chunks?: { dir?: unknown; count?: unknown }; runs?: unknown };
  if (header && typeof header === 'object' && header.run_chunks && typeof header.run_chunks === 'object') {
    const count = Number(header.run_chunks.count);
    const runs: unknown[] = [];
    for (let i = 0; i < count; i++) {
      const chunkFile = path.join(studyDir, String(header.run_chunks.dir ?? CHUNK_DIR), chunkFileName(i));
      let chunk: unknown;
      try {
        chunk = JSON.parse(readFileSync(chunkFile, 'utf8'));
      } catch (err) {
        throw new ManifestError(`${chunkFile}: cannot read run chunk (${(err as Error).message}); run \`llem repair-manifest ${studyDir}\` to rebuild it`, chunkFile);
      }
      if (!Array.isArray(chunk)) throw new ManifestError(`${chunkFile}: expected an array of runs`, chunkFile);
      runs.push(...chunk);
    }
    header.runs = runs;
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    let where = file;
    let fieldPath = issue.path;
    const chunks = (raw as { run_chunks?: { dir?: unknown; runs_per_chunk?: unknown } }).run_chunks;
    if (chunks && issue.path[0] === 'runs' && typeof issue.path[1] === 'number') {
      const per = Number(chunks.runs_per_chunk) || RUNS_PER_CHUNK;
      where = path.join(studyDir, String(chunks.dir ?? CHUNK_DIR), chunkFileName(Math.floor(issue.path[1] / per)));
      fieldPath = [issue.path[1] % per, ...issue.path.slice(2)];
    }
    const field = fieldPath.join('.') || '(root)';
    throw new ManifestError(
      `${where}: field "${field}": ${issue.message}; run \`llem repair-manifest ${studyDir}\` to rebuild it`,
      where,
    );
  }
  // counts are derived data: recompute rather than trust a header written before its chunk
  parsed.data.counts = countStatuses(parsed.data.runs);
  return parsed.data;
}

export { writeFileAtomicSync } from '../atomic-file.ts';

function writeAll(fd: number, data: string): void {
  const buf = Buffer.from(data, 'utf8');
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

export function toSnapshot(studyDir: string, m: Manifest, paused = false, quitRequested = false): StudySnapshot {
  return {
    study_dir: studyDir,
    study_name: m.study_name,
    study_hash: m.study_hash,
    status: m.status,
    n_cycles: m.n_cycles,
    started_at: m.started_at,
    counts: { ...m.counts },
    runs: m.runs.map(runSnapshotOf),
    paused,
    quit_requested: quitRequested,
  };
}

export function runSnapshotOf(r: RunRecord): RunSnapshot {
  return {
    index: r.index,
    run_id: r.run_id,
    config_hash: r.config_hash,
    cycle: r.cycle,
    status: r.status,
    attempts: r.attempts.map((a) => ({
      attempt: a.attempt,
      started_at: a.started_at,
      ended_at: a.ended_at,
      status: a.status,
      error_type: a.error_type,
      message: a.message,
      phase_reached: a.phase_reached,
      stderr_tail: a.stderr_tail,
      pid: a.pid,
      run_dir: a.run_dir,
    })),
    error_type: r.error_type,
    result: r.result,
    headline: r.headline ? { ...r.headline, flags: [...r.headline.flags] } : null,
  };
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

  constructor(
    readonly studyDir: string,
    readonly manifest: Manifest,
    options: { fsync?: boolean; inlineRunLimit?: number } = {},
  ) {
    this.manifestPath = path.join(studyDir, MANIFEST_FILE);
    this.journalPath = path.join(studyDir, JOURNAL_FILE);
    this.runJson = manifest.runs.map((r) => JSON.stringify(r));
    this.fsync = options.fsync ?? true;
    this.inlineLimit = options.inlineRunLimit ?? INLINE_RUN_LIMIT;
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

  /** Append events to the journal (before the manifest), then rewrite the manifest atomically. */
  commit(events: RunnerEvent[] = []): void {
    this.appendJournal(events);
    this.manifest.counts = countStatuses(this.manifest.runs);
    this.manifest.updated_at = new Date().toISOString();
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
    const { runs: _runs, run_chunks: _chunks, ...head } = this.manifest;
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
    const { runs: _runs, ...head } = this.manifest;
    writeFileAtomicSync(this.manifestPath, JSON.stringify({ ...head, runs: [] }) + '\n', { fsync: this.fsync });
  }
}

export function manifestExists(studyDir: string): boolean {
  return existsSync(path.join(studyDir, MANIFEST_FILE));
}
