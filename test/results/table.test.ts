import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { summarizeStudy } from '../../src/results/summarize.ts';
import { configTable, filterRows, parseWhere, renderCsv, renderMarkdown, runTable, sortRows, formatNumber } from '../../src/results/table.ts';
import { resultsText } from '../../src/cli/results.ts';
import { readSummary } from '../../src/study-dir/read.ts';
import { makeConfig, makeGrid, makePlan, makeResult, makeSnapshot, writeStudyDir, type ConfigFixture } from './fixtures.ts';

const NOW = '2026-02-01T00:00:00.000Z';

function gridStudy() {
  const configs = makeGrid([1, 2, 4], ['llamacpp', 'vllm']);
  const plan = makePlan(configs, 2);
  const results = plan.order.map((o) => {
    const c = configs.find((x) => x.hash === o.config_hash)!;
    const bs = c.config.batch_size;
    return makeResult(c, o.index, o.cycle, { output_tokens_per_s: 10 * bs + o.cycle, energy_per_output_token_j: 1 / bs + o.cycle / 100 });
  });
  return { configs, plan, results, summary: summarizeStudy({ plan, snapshot: null, results, now: NOW }) };
}

test('CSV with quotes, commas and newlines in labels reads back identically through a strict parser (csv-parse, no relaxations)', () => {
  const nasty: ConfigFixture[] = [
    { hash: 'aaaaaaaaaaaaaaaa', label: 'model "big", bs=1', config: makeConfig({ model: 'org/model, "quoted"', batch_size: 1 }) },
    { hash: 'bbbbbbbbbbbbbbbb', label: 'two\nlines, and a ; semicolon', config: makeConfig({ model: 'plain\r\nwindows', batch_size: 2 }) },
  ];
  const plan = makePlan(nasty, 2);
  const results = plan.order.map((o) => makeResult(nasty.find((c) => c.hash === o.config_hash)!, o.index, o.cycle, { output_tokens_per_s: 0.1 + o.index / 3 }));
  const summary = summarizeStudy({ plan, snapshot: null, results, now: NOW });
  for (const data of [configTable(summary), runTable(plan, null, results, summary)]) {
    const csv = renderCsv(data.rows);
    const parsed = parse(csv, { columns: true, relax_quotes: false, relax_column_count: false, skip_empty_lines: false }) as Array<Record<string, string>>;
    assert.equal(parsed.length, data.rows.length);
    data.rows.forEach((row, i) => {
      for (const [k, v] of Object.entries(row)) {
        const back = parsed[i]![k];
        const expected = v === null ? '' : typeof v === 'boolean' ? String(v) : String(v);
        assert.equal(back, expected, `row ${i} column ${k}`);
        if (typeof v === 'number') assert.equal(Number(back), v, 'numbers round-trip exactly');
      }
    });
  }
  const labels = (parse(renderCsv(configTable(summary).rows), { columns: true }) as Array<Record<string, string>>).map((r) => r.label);
  assert.deepEqual(labels, ['model "big", bs=1', 'two\nlines, and a ; semicolon']);
});

test('--where filters with =, != and numeric comparisons; unknown fields are named', () => {
  const { summary } = gridStudy();
  const data = configTable(summary);
  assert.equal(filterRows(data, [parseWhere('backend=llamacpp')]).rows.length, 3);
  assert.equal(filterRows(data, [parseWhere('backend!=llamacpp')]).rows.length, 3);
  assert.deepEqual(
    filterRows(data, [parseWhere('batch_size>=2'), parseWhere('backend=vllm')]).rows.map((r) => r.batch_size),
    [2, 4],
  );
  assert.equal(filterRows(data, [parseWhere('batch_size>10')]).rows.length, 0);
  assert.throws(() => filterRows(data, [parseWhere('colour=red')]), /unknown field "colour"/);
  // Fields that are not swept (so not columns) still filter: every config has this model.
  assert.equal(filterRows(data, [parseWhere('model=builtin:tiny-random')]).rows.length, 6);
  assert.equal(filterRows(data, [parseWhere('llamacpp.n_gpu_layers=99'), parseWhere('backend=llamacpp')]).rows.length, 3);
  assert.equal(filterRows(data, [parseWhere('seed=2')]).rows.length, 0);
  assert.throws(() => parseWhere('nonsense'), /FIELD=VALUE/);
});

test('--sort by any column, descending with a leading minus, display rows follow', () => {
  const { summary } = gridStudy();
  const data = configTable(summary);
  const asc = sortRows(data, 'tokens_per_s');
  const tps = asc.rows.map((r) => r.tokens_per_s as number);
  assert.deepEqual(tps, [...tps].sort((a, b) => a - b));
  const desc = sortRows(data, '-tokens_per_s');
  assert.deepEqual(desc.rows.map((r) => r.tokens_per_s), [...tps].reverse());
  assert.equal(desc.display[0]!.batch_size, String(desc.rows[0]!.batch_size));
  assert.deepEqual(sortRows(data, 'backend').rows.map((r) => r.backend), ['llamacpp', 'llamacpp', 'llamacpp', 'vllm', 'vllm', 'vllm']);
  assert.throws(() => sortRows(data, 'nope'), /unknown column "nope"/);
});

test('Markdown escapes pipes and newlines; partial studies carry a note', () => {
  const c: ConfigFixture = { hash: 'cccccccccccccccc', label: 'a|b\nc', config: makeConfig() };
  const plan = makePlan([c], 2);
  const summary = summarizeStudy({ plan, snapshot: null, results: [makeResult(c, 0, 1)], now: NOW });
  const md = renderMarkdown(configTable(summary));
  assert.match(md, /a\\\|b<br>c/);
  assert.match(md, /^> PARTIAL RESULTS: 1 of 2 runs/m);
  const lines = md.trim().split('\n').filter((l) => l.startsWith('|'));
  const cellsPerLine = lines.map((l) => l.split(/(?<!\\)\|/).length);
  assert.ok(cellsPerLine.every((n) => n === cellsPerLine[0]), 'every table line has the same number of cells');
});

test('run rows list failed runs with their reason and no metrics', () => {
  const [a] = makeGrid([1]);
  const plan = makePlan([a!], 2);
  const snapshot = makeSnapshot(plan, new Map([[`${a!.hash}:2`, { status: 'failed' as const, errorType: 'TimeoutError' as const, message: 'exceeded 600 s' }]]));
  const results = [makeResult(a!, 0, 1)];
  const summary = summarizeStudy({ plan, snapshot, results, now: NOW });
  const rows = runTable(plan, snapshot, results, summary).rows;
  assert.equal(rows.length, 2);
  assert.equal(rows[0]!.status, 'completed');
  assert.equal(rows[0]!.energy_per_output_token_j, 0.5);
  assert.equal(rows[1]!.status, 'failed');
  assert.equal(rows[1]!.error_type, 'TimeoutError');
  assert.match(String(rows[1]!.reason), /exceeded 600 s/);
  assert.equal(rows[1]!.energy_per_output_token_j, null);
});

test('formatNumber keeps 4 significant digits', () => {
  assert.equal(formatNumber(0.123456), '0.1235');
  assert.equal(formatNumber(1234.5), '1235');
  assert.equal(formatNumber(123456), '123456');
  assert.equal(formatNumber(null), '–');
  assert.equal(formatNumber(2.5e-7), '2.500e-7');
});

test('llem results on a study dir: csv/json to stdout, notes to stderr, --recompute writes summary.json', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'llem-results-'));
  try {
    const { plan, results } = gridStudy();
    await writeStudyDir(dir, plan, results.slice(0, results.length - 1));
    const csv = await resultsText(dir, { format: 'csv', where: ['backend=vllm'], sort: '-batch_size' });
    const rows = parse(csv.stdout, { columns: true }) as Array<Record<string, string>>;
    assert.deepEqual(rows.map((r) => r.batch_size), ['4', '2', '1']);
    assert.match(csv.stderr, /PARTIAL RESULTS: 11 of 12 runs/);
    const json = JSON.parse((await resultsText(dir, { format: 'json', where: [], runs: true })).stdout) as Array<Record<string, unknown>>;
    assert.equal(json.length, 12);
    assert.equal(json.filter((r) => r.status === 'pending').length, 1);
    const recomputed = await resultsText(dir, { format: 'table', where: [], recompute: true, bootstrapResamples: '500' });
    assert.match(recomputed.stdout, /recomputed .*summary\.json/);
    assert.equal((readSummary(path.join(dir, 'summary.json'))).statistics.bootstrap_resamples, 500);
    await assert.rejects(resultsText(dir, { format: 'table', where: [], bootstrapResamples: '500' }), /use it with --recompute/);
    await assert.rejects(resultsText(dir, { format: 'table', where: [], recompute: true, bootstrapResamples: '5' }), /--bootstrap-resamples 5/);
    // A stale summary.json (fewer runs than now on disk) is not shown as current.
    await writeStudyDir(dir, plan, results);
    const after = await resultsText(dir, { format: 'md', where: [] });
    assert.match(after.stdout, /older than the run files/);
    await writeFile(path.join(dir, 'plan.json'), '{');
    await assert.rejects(resultsText(dir, { format: 'table', where: [] }), (err: Error & { exitCode?: number }) => err.exitCode === 2 && /plan\.json: not valid JSON/.test(err.message));
    await assert.rejects(resultsText(dir, { format: 'xml', where: [] }), /--format xml/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
