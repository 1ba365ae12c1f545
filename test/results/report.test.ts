import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { summarizeStudy } from '../../src/results/summarize.ts';
import { buildReportHtml } from '../../src/results/report.ts';
import { downsamplePower, parsePowerCsv } from '../../src/results/charts.ts';
import { writeReport } from '../../src/cli/report.ts';
import { percentiles } from '../../src/worker/metrics.ts';
import { makeGrid, makePlan, makePowerCsv, makeResult, makeSnapshot, writeStudyDir, type RunFixture } from './fixtures.ts';

const CHROMIUM = '/usr/bin/chromium';
const NOW = '2026-02-01T00:00:00.000Z';

/** 2 backends × 3 batch sizes × 2 cycles, one run failed, flags on some runs. */
function study() {
  const configs = makeGrid([1, 4, 16], ['llamacpp', 'vllm']);
  const plan = makePlan(configs, 2);
  const failed = configs[5]!;
  const snapshot = makeSnapshot(plan, new Map<string, Partial<RunFixture>>([[`${failed.hash}:2`, { status: 'failed', errorType: 'OutOfMemory', message: 'CUDA out of memory <oops> & more' }]]));
  const results = plan.order
    .filter((o) => !(o.config_hash === failed.hash && o.cycle === 2))
    .map((o) => {
      const c = configs.find((x) => x.hash === o.config_hash)!;
      const bs = c.config.batch_size;
      const k = c.config.backend === 'vllm' ? 0.7 : 1;
      return makeResult(
        c,
        o.index,
        o.cycle,
        { energy_j: 200 * ((k * 0.5) / Math.sqrt(bs) + o.cycle / 200), energy_per_output_token_j: (k * 0.5) / Math.sqrt(bs) + o.cycle / 200, output_tokens_per_s: (20 * bs) / k + o.cycle },
        o.index % 4 === 0 ? ['thermal_throttle'] : [],
      );
    });
  const summary = summarizeStudy({ plan, snapshot, results, now: NOW });
  return { configs, plan, snapshot, results, summary };
}

test('power.csv: the meter format, a wide format, empty cells skipped, downsampling per device', () => {
  const long = parsePowerCsv(makePowerCsv(50, 100, 2));
  assert.equal(long.length, 100);
  assert.deepEqual([...new Set(long.map((s) => s.device))], ['GPU 0', 'GPU 1']);
  assert.ok(Math.abs(long[1]!.t_s - 0.1) < 1e-9);
  const wide = parsePowerCsv('t_ms,gpu0_power_w,gpu1_power_w\n0,100,\n500,110,90\n');
  assert.deepEqual(wide, [
    { t_s: 0, device: 'gpu0', power_w: 100 },
    { t_s: 0.5, device: 'gpu0', power_w: 110 },
    { t_s: 0.5, device: 'gpu1', power_w: 90 },
  ]);
  assert.throws(() => parsePowerCsv('a,b\n1,2\n'), /no time column/);
  const down = downsamplePower(parsePowerCsv(makePowerCsv(5000, 100, 2)), 600);
  assert.ok(down.filter((s) => s.device === 'GPU 0').length <= 600);
  assert.ok(down.filter((s) => s.device === 'GPU 1').length <= 600);
});

test('report HTML is self-contained: inline SVG charts, no script, no external reference', async () => {
  const { summary, plan, results } = study();
  const powerRuns = results.slice(0, 3).map((r) => ({ run_id: r.run_id, label: r.run_id, csvText: makePowerCsv(200, 150), flags: [] }));
  const html = await buildReportHtml({ summary, plan, powerRuns: [...powerRuns, { run_id: 'x', label: 'x', csvText: null, flags: [] }] }, NOW);
  // 2 swept fields × 2 metrics + two frontiers (vs throughput, vs TTFT p95) + 3 power timelines
  // (the run without power.csv is noted).
  assert.equal((html.match(/<figure class="chart"/g) ?? []).length, 9);
  assert.equal((html.match(/data-chart="frontier"/g) ?? []).length, 1);
  assert.equal((html.match(/data-chart="parameter"/g) ?? []).length, 4);
  assert.equal((html.match(/<svg/g) ?? []).length, 9);
  assert.doesNotMatch(html, /<script|<link|<img|src=|@import|url\(/i);
  const urls = (html.match(/https?:\/\/[^"'\s)]+/g) ?? []).filter((u) => !u.startsWith('http://www.w3.org/'));
  assert.deepEqual(urls, [], 'only XML namespace URIs');
  assert.match(html, /x: no power\.csv/);
  assert.match(html, /CUDA out of memory &lt;oops&gt; &amp; more/, 'failure reasons are escaped');
  assert.match(html, /thermal_throttle in \d of \d runs/);
  assert.match(html, /OutOfMemory/);
});

test('without energy in any run, the report says why the energy charts are missing', async () => {
  const configs = makeGrid([1, 2]);
  const plan = makePlan(configs, 1);
  const results = plan.order.map((o) => {
    const r = makeResult(configs.find((c) => c.hash === o.config_hash)!, o.index, o.cycle, { energy_j: null, energy_per_output_token_j: null, energy_unavailable_reason: 'NVML not found' }, ['energy_unavailable']);
    // a machine without NVML: speed only, which the validity gate accepts (with a GPU it would be invalid)
    r.environment.nvml = { available: false, reason: 'NVML not found', driver_version: null, cuda_driver_version: null };
    r.environment.gpus = [];
    return r;
  });
  const summary = summarizeStudy({ plan, snapshot: null, results, now: NOW });
  assert.equal(summary.configs[0]!.metrics.energy_per_output_token_j!.n_missing, 1);
  const html = await buildReportHtml({ summary, plan, powerRuns: [] }, NOW);
  assert.equal((html.match(/data-chart="parameter"/g) ?? []).length, 1, 'tokens/s only');
  assert.equal((html.match(/data-chart="pareto"/g) ?? []).length, 0);
  assert.match(html, /Energy was not measured in any completed run/);
});

test('a study with no completed run and a single config still gets a report, marked partial', async () => {
  const [only] = makeGrid([1]);
  const plan = makePlan([only!], 3);
  const summary = summarizeStudy({ plan, snapshot: null, results: [], now: NOW });
  const html = await buildReportHtml({ summary, plan, powerRuns: [] }, NOW);
  assert.equal((html.match(/<figure class="chart"/g) ?? []).length, 0);
  assert.match(html, /Partial results/);
  assert.match(html, /No swept parameter/);
  assert.match(html, /No completed run yet/);
});

test('the HTML report renders in headless Chromium: no console error, all charts, no network request', { timeout: 300_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (.ci/run does)`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'llem-report-'));
  const { plan: basePlan, results } = study();
  // The study declares an SLO: the report gets its goodput section from each run's requests.jsonl.
  const plan = { ...basePlan, slo: ['ttft_p95_ms<=200', 'itl_p95_ms<=50'] };
  const requests = new Map<string, string>();
  for (const r of results) {
    const bs = Number(r.config.batch_size);
    const records = Array.from({ length: 8 }, (_, i) => {
      const start = 1000 * i;
      const first = start + 12 * bs + 15 * i + r.cycle; // larger batches and later requests wait longer
      const times = Array.from({ length: 9 }, (_, k) => first + 10 * (k + 1));
      return { prompt_index: i, input_tokens: 50, output_tokens: 10, start_ms: start, first_token_ms: first, first_content_token_ms: first, token_times_ms: times, end_ms: times.at(-1)!, error: null };
    });
    // The result's own TTFT statistics from the same records, as the worker computes them.
    r.metrics.ttft_ms = percentiles(records.map((x) => x.first_token_ms - x.start_ms));
    requests.set(r.run_id, records.map((x) => JSON.stringify(x)).join('\n') + '\n');
  }
  await writeStudyDir(dir, plan, results, () => makePowerCsv(300, 160));
  for (const r of results) await writeFile(path.join(dir, 'runs', r.run_id, 'requests.jsonl'), requests.get(r.run_id)!);
  await writeFile(path.join(dir, 'study.yaml'), 'name: fixture-study # <script>alert(1)</script>\nsweep:\n  batch_size: [1, 4, 16]\n');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 120_000,
  });
  try {
    // Through the command: the study dir has no manifest, so runs without a result are pending.
    const { file, bytes } = await writeReport(dir, { out: path.join(dir, 'report.html') });
    assert.ok(bytes > 10_000, `report is ${bytes} bytes`);
    const html = await readFile(file, 'utf8');
    assert.match(html, /study\.yaml as run/);
    assert.match(html, /<section id="slo"><h2>Service-level objective: ttft_p95_ms&lt;=200,itl_p95_ms&lt;=50/);
    assert.match(html, /Recommended under ttft_p95_ms&lt;=200,itl_p95_ms&lt;=50: /);
    assert.match(html, /<section id="frontier"><h2>Energy–latency frontier/);
    assert.match(html, /# &lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.doesNotMatch(html, /<script/i);
    const expectedCharts = (html.match(/<figure class="chart"/g) ?? []).length;
    // backend, batch_size × 2 metrics + two frontiers + one timeline per config (6 configs, under the cap)
    assert.equal(expectedCharts, 4 + 2 + 6);

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const consoleErrors: string[] = [];
    const requests: string[] = [];
    const fileUrl = pathToFileURL(file).href;
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(msg.text());
    });
    page.on('pageerror', (err) => consoleErrors.push(String(err)));
    page.on('request', (req) => requests.push(req.url()));
    await page.route('**/*', (route) => (route.request().url() === fileUrl ? route.continue() : route.abort()));
    await page.goto(fileUrl, { waitUntil: 'load', timeout: 120_000 });

    const charts = await page.$$eval('figure.chart svg', (svgs) =>
      svgs.map((s) => {
        const r = s.getBoundingClientRect();
        return { w: r.width, h: r.height, marks: s.querySelectorAll('path, line, rect, circle').length };
      }),
    );
    assert.equal(charts.length, expectedCharts);
    for (const c of charts) {
      assert.ok(c.w > 100 && c.h > 100, `chart rendered at ${c.w}×${c.h}`);
      assert.ok(c.marks > 5, 'chart has marks');
    }
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(requests, [fileUrl], 'the only request is the report file itself');
    const title = await page.title();
    assert.match(title, /fixture-study/);

    const shot = path.join(os.tmpdir(), 'llem-report-screenshot.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok((await stat(shot)).size > 10_000, 'screenshot written');
    console.log(`# report screenshot: ${shot}`);
    // The answer sections, as a person sees them: visible, with a chart drawn in the frontier one.
    for (const id of ['slo', 'frontier']) {
      const box = await page.locator(`section#${id}`).boundingBox();
      assert.ok(box && box.height > 100 && box.width > 500, `section ${id} is laid out (${JSON.stringify(box)})`);
      const sectionShot = path.join(os.tmpdir(), `llem-report-${id}.png`);
      await page.locator(`section#${id}`).screenshot({ path: sectionShot });
      console.log(`# ${id} section screenshot: ${sectionShot}`);
    }
    const faded = await page.$$eval('section#frontier figure svg path', (ps) => ps.filter((p) => Number(p.getAttribute('opacity') ?? p.getAttribute('fill-opacity') ?? 1) < 0.5).length);
    assert.ok(faded > 0, 'dominated configs are drawn faded');
    assert.equal(await page.locator('section#slo tr.recommended').count(), 1, 'the recommended config is highlighted');
  } finally {
    await browser.close();
    await rm(dir, { recursive: true, force: true });
  }
});
