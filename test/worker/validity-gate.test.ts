// Issue 17 phase 2, the validity gate as a user meets it: `llem run` with the real worker (command
// backend, fake NVML through the real addon), then `llem status --json`, `llem results`, `llem
// report` (opened in headless Chromium) and `llem export`. A run judged invalid keeps its result on
// disk, is measured again as a new attempt, and never enters a statistic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseCsv } from 'csv-parse/sync';
import { chromium } from 'playwright-core';
import { commandStudy, fakeGpuStudies, llemBin, runStudy } from './helpers.ts';
import { readManifest, readSummary } from '../../src/study-dir/read.ts';

const studies = fakeGpuStudies();
const CHROMIUM = '/usr/bin/chromium';

function llem(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [llemBin, ...args], { timeout: 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err && typeof (err as { code?: unknown }).code !== 'number') reject(err);
      else resolve({ code: err ? Number((err as { code: number }).code) : 0, stdout, stderr });
    });
  });
}

test('3 of 8 requests fail on the first attempt only: one automatic re-measurement completes the run; the summary uses only the valid attempt', { timeout: 300_000 }, async () => {
  const root = studies.root();
  const s = await runStudy(root, commandStudy({ n: 8, env: { FIXTURE_FAIL_ONCE: `3:${join(root, 'failed-once')}` } }), studies.gpu(root, [{ power: [[0, 200_000]] }]));
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stderr, /invalid: failed_requests: 37\.5 % of the measured requests failed/);
  assert.match(s.stderr, /measuring it again as attempt 2 \(attempt 1 was invalid\)/);

  const m = readManifest(s.studyDir);
  assert.equal(m.status, 'completed');
  const run = m.runs[0]!;
  assert.equal(run.status, 'completed');
  assert.deepEqual(run.attempts.map((a) => a.status), ['invalid', 'completed']);
  const [first, second] = run.attempts;
  assert.deepEqual(first!.validity!.reasons.map((r) => r.code), ['failed_requests']);
  assert.match(first!.validity!.reasons[0]!.detail, /37\.5 % of the measured requests failed/);
  assert.equal(second!.validity!.valid, true);

  // both results on disk, each in its attempt's dir; the run's result is the second
  assert.deepEqual(s.runs.map((r) => r.result?.metrics.requests_failed), [3, 0]);
  assert.equal(join(s.studyDir, first!.run_dir), s.runs[0]!.dir);
  assert.equal(run.result, join(second!.run_dir, 'result.json'));
  const valid = s.runs[1]!.result!;
  const invalid = s.runs[0]!.result!;

  const summary = readSummary(join(s.studyDir, 'summary.json'));
  assert.deepEqual(summary.configs[0]!.runs, [valid.run_id]);
  assert.equal(summary.configs[0]!.metrics.energy_j!.n, 1);
  assert.equal(summary.configs[0]!.metrics.energy_j!.mean, valid.metrics.energy_j);
  assert.notEqual(valid.metrics.energy_per_request_j, invalid.metrics.energy_per_request_j);
  assert.equal(summary.configs[0]!.metrics.energy_per_request_j!.mean, valid.metrics.energy_per_request_j);
  assert.deepEqual(
    summary.invalid_attempts.map((a) => [a.attempt, a.run_status, a.result, a.reasons.map((r) => r.code)]),
    [[1, 'completed', join(first!.run_dir, 'result.json'), ['failed_requests']]],
  );

  const status = JSON.parse((await llem(['status', s.studyDir, '--json'])).stdout);
  assert.equal(status.status, 'completed');
  assert.equal(status.runs[0].invalid_attempts, 1);
  assert.deepEqual(status.runs[0].validity, { valid: true, reasons: [] });

  const results = await llem(['results', s.studyDir]);
  assert.equal(results.code, 0, results.stderr);
  assert.match(results.stdout, /1 invalid attempt\(s\) were measured again; their results are kept and not used/);
  assert.match(results.stdout, new RegExp(`${invalid.run_id} attempt 1 .*failed_requests: 37\\.5 %`));
});

test('a GPU that throttles for the whole window: the run ends invalid after its re-measurements, with its reasons in status --json, results, the report and the export', { timeout: 600_000 }, async () => {
  const root = studies.root();
  const s = await runStudy(root, commandStudy({ n: 4, env: { FIXTURE_STEPS: 'sleep:300' } }), studies.gpu(root, [{ power: [[0, 200_000]], throttle: [[0, 0x40]] }]));
  assert.equal(s.code, 1, 'a study whose run ended invalid exits 1, like a failed one');
  assert.match(s.stdout, /study silent: failed — 0 completed, 0 failed, 0 skipped, 0 interrupted, 1 invalid/);
  assert.match(s.stdout, /invalid .* after 3 attempt\(s\): invalid: thermal_throttle: thermal throttling during 100\.0 % of the window/);

  const m = readManifest(s.studyDir);
  assert.equal(m.status, 'failed');
  const run = m.runs[0]!;
  assert.equal(run.status, 'invalid');
  assert.equal(run.result, null);
  assert.equal(run.headline, null);
  // the default policy: measured, then measured again twice (max_invalid_retries 2)
  assert.deepEqual(run.attempts.map((a) => a.status), ['invalid', 'invalid', 'invalid']);
  assert.equal(s.runs.length, 3);
  for (const r of s.runs) assert.ok(r.result && r.result.metrics.throttle_fraction!.thermal! > 0.999, `${r.id} kept its result`);

  const status = await llem(['status', s.studyDir, '--json']);
  const json = JSON.parse(status.stdout);
  assert.equal(json.status, 'failed');
  assert.equal(json.counts.invalid, 1);
  assert.equal(json.runs[0].status, 'invalid');
  assert.equal(json.runs[0].invalid_attempts, 3);
  assert.equal(json.runs[0].validity.valid, false);
  assert.deepEqual(json.runs[0].validity.reasons.map((r: { code: string }) => r.code), ['thermal_throttle']);
  assert.match(json.runs[0].validity.reasons[0].detail, /thermal throttling during 100\.0 % of the window \(more than 5\.0 %\)/);
  const text = await llem(['status', s.studyDir]);
  assert.match(text.stdout, /1 invalid/);
  assert.match(text.stdout, / invalid  \(3 attempts\)  invalid: thermal_throttle/);

  const summary = readSummary(join(s.studyDir, 'summary.json'));
  assert.equal(summary.study.counts.invalid, 1);
  assert.deepEqual(summary.configs[0]!.runs, []);
  assert.equal(summary.configs[0]!.metrics.energy_j!.n, 0);
  assert.equal(summary.excluded_runs[0]!.status, 'invalid');
  assert.equal(summary.excluded_runs[0]!.invalid_attempts.length, 3);

  const table = await llem(['results', s.studyDir]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /EXCLUDED AS INVALID: 1 run\(s\)/);
  assert.match(table.stdout, /3 invalid attempt\(s\); last: thermal_throttle: thermal throttling during 100\.0 % of the window/);
  const runsJson = JSON.parse((await llem(['results', s.studyDir, '--runs', '--format', 'json'])).stdout);
  assert.equal(runsJson[0].status, 'invalid');
  assert.equal(runsJson[0].energy_j, null);
  assert.match(runsJson[0].reason, /thermal_throttle/);

  const csvOut = join(root, 'runs.csv');
  assert.equal((await llem(['export', s.studyDir, '--format', 'csv', '--out', csvOut])).code, 0);
  const rows = parseCsv(readFileSync(csvOut, 'utf8'), { columns: true }) as Array<Record<string, string>>;
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.status, 'invalid');
  assert.equal(rows[0]!.energy_j, '');
  assert.match(rows[0]!.reason!, /thermal_throttle/);

  // the report, as a reader sees it in a browser
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (.ci/run does)`);
  const reportFile = join(root, 'report.html');
  const report = await llem(['report', s.studyDir, '--out', reportFile]);
  assert.equal(report.code, 0, report.stderr);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 120_000,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(pathToFileURL(reportFile).href, { waitUntil: 'load', timeout: 120_000 });
    const section = page.locator('section#invalid');
    assert.equal(await section.locator('h2').innerText(), 'Excluded as invalid');
    assert.ok(await section.isVisible());
    const rowsText = await section.locator('tr.invalid-run').allInnerTexts();
    assert.equal(rowsText.length, 3, 'one row per invalid attempt');
    for (const [i, t] of rowsText.entries()) {
      assert.match(t, new RegExp(`\\b${i + 1}\\b`));
      assert.match(t, /thermal_throttle: thermal throttling during 100\.0 % of the window/);
      assert.match(t, /run ended invalid/);
    }
    assert.match(await page.locator('p.meta').first().innerText(), /0 of 1 runs completed, 1 invalid/);
  } finally {
    await browser.close();
  }
});
