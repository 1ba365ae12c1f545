// The run-history store (src/history): location, records from result.json, concurrent writers
// (real processes), bounded size, and never required (bad files are skipped with a reason).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { historyDir, stateDir } from '../../src/history/paths.ts';
import { appendHistoryRecord, readHistory, CLOSED_SEGMENTS_PER_HOST, MAX_FILES, SEGMENT_BYTES } from '../../src/history/store.ts';
import { historyRecordOf, recordRunInHistory } from '../../src/history/record.ts';
import { machineKey, machineOfEnvironment } from '../../src/history/machine.ts';
import { makeConfig, makeResult, type ConfigFixture } from '../results/fixtures.ts';
import { isolateStateDir, makeRecord } from './history-helpers.ts';

const stateRoot = isolateStateDir();
const fresh = () => mkdtempSync(join(stateRoot, 'h-'));
const fixture: ConfigFixture = { hash: 'cccc000000000001', label: 'c', config: makeConfig() };

describe('history location', () => {
  it('LLEM_STATE_DIR, else an absolute XDG_STATE_HOME/llem, else ~/.local/state/llem', () => {
    assert.equal(stateDir({ LLEM_STATE_DIR: '/x/y', XDG_STATE_HOME: '/s', HOME: '/h' }), '/x/y');
    assert.equal(stateDir({ XDG_STATE_HOME: '/s', HOME: '/h' }), '/s/llem');
    assert.equal(stateDir({ XDG_STATE_HOME: 'relative/dir', HOME: '/h' }), '/h/.local/state/llem', 'a relative XDG_STATE_HOME is ignored (XDG spec)');
    assert.equal(stateDir({ HOME: '/h' }), '/h/.local/state/llem');
    assert.equal(historyDir({ LLEM_STATE_DIR: '/x' }), '/x/history');
  });

  it('these tests write under their own state dir, not the user\'s', () => {
    assert.equal(stateDir(), stateRoot);
    const out = recordRunInHistory(makeResult(fixture, 0, 1), 2);
    assert.equal(out.recorded, true);
    assert.ok(out.recorded && out.file.startsWith(stateRoot), out.recorded ? out.file : '');
  });
});

describe('history records', () => {
  it('a result.json becomes a record: machine, key, phase times, tokens/s, metrics', () => {
    const result = makeResult(fixture, 0, 1, { energy_per_output_token_j: 0.5, output_tokens_per_s: 120 });
    result.phases = {
      preflight: { start_ms: 200, end_ms: 300 },
      baseline: { start_ms: 300, end_ms: 2300 },
      load: { start_ms: 2300, end_ms: 5300 },
      warmup: { start_ms: 5300, end_ms: 6300 },
      measure: { start_ms: 6300, end_ms: 11300 },
      teardown: { start_ms: 11300, end_ms: 11400 },
    };
    const r = historyRecordOf(result, 12.5, { now: new Date('2026-02-01T00:00:00Z'), studyHash: 'abc' });
    assert.deepEqual(r.machine, { kind: 'gpu', gpu: 'NVIDIA H100', driver: '550.54', cpu: 'Fixture CPU' });
    assert.equal(r.config_hash, fixture.hash);
    assert.equal(r.key.batch_size, 1);
    assert.equal(r.key.backend, 'llamacpp');
    assert.equal(r.key.baseline_seconds, 5);
    assert.equal(r.phases_s.baseline, 2);
    assert.equal(r.phases_s.load, 3);
    assert.equal(r.phases_s.warmup, 1);
    assert.equal(r.phases_s.measure, 5);
    assert.ok(Math.abs(r.phases_s.startup! - 1.5) < 1e-9, 'wall − the four measured phases');
    assert.equal(r.baseline_measured, true, 'baseline_reused false → measured');
    assert.equal(r.output_tokens_per_s, 120);
    assert.equal(r.metrics.energy_per_output_token_j, 0.5);
    assert.equal(r.study_hash, 'abc');
    // without the parent's wall time: the child's own start-up and preflight/teardown
    assert.ok(Math.abs(historyRecordOf(result, null).phases_s.startup! - 0.4) < 1e-9);
  });

  it('a run without a GPU is a CPU machine, identified by its CPU model', () => {
    const result = makeResult(fixture, 0, 1);
    result.environment = { ...result.environment, nvml: { ...result.environment.nvml, available: false }, gpus: [] };
    const m = machineOfEnvironment(result.environment);
    assert.equal(m.kind, 'cpu');
    assert.equal(machineKey(m), 'cpu:Fixture CPU');
  });

  it('recorded then read back, in order', () => {
    const dir = fresh();
    for (let i = 0; i < 5; i++) assert.equal(recordRunInHistory(makeResult(fixture, i, i + 1), 1 + i, { dir }).recorded, true);
    const h = readHistory(dir);
    assert.deepEqual(h.problems, []);
    assert.deepEqual(h.records.map((r) => r.run_wall_s), [1, 2, 3, 4, 5]);
  });
});

describe('history is never required', () => {
  it('a missing directory is an empty history without a problem', () => {
    const h = readHistory(join(fresh(), 'nothing-here'));
    assert.deepEqual(h.records, []);
    assert.deepEqual(h.problems, []);
  });

  it('torn lines, garbage and records of another version are skipped with a reason', () => {
    const dir = fresh();
    appendHistoryRecord(makeRecord(), dir);
    const file = join(dir, readdirSync(dir)[0]!);
    appendFileSync(file, 'not json\n' + JSON.stringify({ ...makeRecord(), v: 99 }) + '\n');
    // a writer that died mid-line: the next append shares its line and is still read
    appendFileSync(file, '{"v":1,"recorded_at":"2026-01-0');
    appendHistoryRecord(makeRecord({ run_id: 'second' }), dir);
    const h = readHistory(dir);
    assert.deepEqual(h.records.map((r) => r.run_id), ['0000-aaaaaaaa-c1', 'second']);
    assert.equal(h.problems.length, 1);
    assert.match(h.problems[0]!, /2 line\(s\) unreadable or of another version; skipped/);
  });

  it('an unreadable store (a file where the directory should be) is ignored with the reason', () => {
    const root = fresh();
    const notADir = join(root, 'history');
    writeFileSync(notADir, 'x');
    const h = readHistory(notADir);
    assert.deepEqual(h.records, []);
    assert.match(h.problems[0]!, /ENOTDIR/);
    const out = appendHistoryRecord(makeRecord(), join(notADir, 'sub'));
    assert.equal(out.recorded, false);
    assert.ok(!out.recorded && /ENOTDIR|not a directory/.test(out.reason), JSON.stringify(out));
    const isDir = fresh();
    mkdirSync(join(isDir, 'runs-x.jsonl'));
    assert.match(readHistory(isDir).problems[0]!, /EISDIR/);
  });

  it('refuses a record too long to append in one piece rather than risk interleaving', () => {
    const out = appendHistoryRecord(makeRecord({ run_id: 'x'.repeat(5000) }), fresh());
    assert.equal(out.recorded, false);
    assert.ok(!out.recorded && /exceeds/.test(out.reason));
  });
});

describe('history bounds and concurrency', () => {
  it('stays bounded: segments rotate and old ones are pruned; the newest records survive', () => {
    const dir = fresh();
    const line = Buffer.byteLength(JSON.stringify(makeRecord()) + '\n');
    const count = Math.ceil(((CLOSED_SEGMENTS_PER_HOST + 3) * SEGMENT_BYTES) / line);
    for (let i = 0; i < count; i++) assert.equal(appendHistoryRecord(makeRecord({ run_id: `r${i}` }), dir).recorded, true);
    const files = readdirSync(dir);
    assert.ok(files.length <= CLOSED_SEGMENTS_PER_HOST + 1, files.join(', '));
    const bytes = files.reduce((s, f) => s + statSync(join(dir, f)).size, 0);
    assert.ok(bytes <= (CLOSED_SEGMENTS_PER_HOST + 1) * (SEGMENT_BYTES + line), `${bytes} bytes`);
    const h = readHistory(dir);
    assert.equal(h.records.at(-1)!.run_id, `r${count - 1}`);
    assert.ok(h.records.length < count, 'the oldest were pruned');
    assert.ok(MAX_FILES >= CLOSED_SEGMENTS_PER_HOST + 1);
  });

  const writeConcurrently = (dir: string, writers: number, each: number) => {
    const script = fileURLToPath(new URL('./fixtures/history-writer.ts', import.meta.url));
    return Promise.all(
      Array.from({ length: writers }, (_, w) =>
        new Promise<number | null>((resolve) => {
          const child = spawn(process.execPath, ['--import', 'tsx', script, dir, String(w), String(each)], { stdio: ['ignore', 'ignore', 'inherit'] });
          child.on('exit', (code) => resolve(code));
        }),
      ),
    );
  };

  it('concurrent writer processes never interleave or lose a line', async () => {
    const dir = fresh();
    const writers = 4;
    const line = Buffer.byteLength(JSON.stringify(makeRecord({ run_id: 'w0-000' })) + '\n');
    const each = Math.floor(SEGMENT_BYTES / line / writers); // all in one file: nothing pruned
    assert.deepEqual(await writeConcurrently(dir, writers, each), Array(writers).fill(0));
    const h = readHistory(dir);
    assert.deepEqual(h.problems, []);
    assert.equal(new Set(h.records.map((r) => r.run_id)).size, writers * each);
    const raw = readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8')).join('');
    assert.equal(raw.split('\n').filter(Boolean).length, writers * each);
  });

  it('concurrent writers through several rotations: every kept line whole, the newest segments kept', async () => {
    const dir = fresh();
    const writers = 3;
    const each = 300;
    assert.deepEqual(await writeConcurrently(dir, writers, each), Array(writers).fill(0));
    assert.equal(appendHistoryRecord(makeRecord({ run_id: 'after' }), dir).recorded, true);
    const h = readHistory(dir);
    assert.deepEqual(h.problems, []);
    const line = Buffer.byteLength(JSON.stringify(makeRecord({ run_id: 'w0-000' })) + '\n');
    const keptAtLeast = Math.floor((CLOSED_SEGMENTS_PER_HOST * SEGMENT_BYTES) / line);
    assert.ok(h.records.length >= keptAtLeast && h.records.length <= writers * each + 1, `${h.records.length} records kept`);
    assert.equal(h.records.at(-1)!.run_id, 'after');
    assert.ok(readdirSync(dir).length <= CLOSED_SEGMENTS_PER_HOST + 1);
  });
});
