// The worker's own log lines: bounded with a cut marker, written to the child's stderr so they
// reach worker.log, and shown once (not twice) in the runner's live log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { workerLog, WORKER_LOG_LINE_CAP } from '../../src/worker/log.ts';
import { planStudy } from '../../src/study/plan.ts';
import { createStudyDir, StudyRunner } from '../../src/runner/index.ts';
import { DEFAULT_VALIDITY } from '../../src/measure/validity.ts';
import type { RunnerEvent } from '../../src/runner/events.ts';
import { commandStudy } from './helpers.ts';

test('workerLog writes lines up to its cap, then one cut marker and a count at close', () => {
  const out: string[] = [];
  const log = workerLog((t) => out.push(t), 100);
  log.line('info', 'first line'); // "[info] first line\n" = 18 bytes
  log.line('warn', 'two\nlines'); // continuation indented, one entry
  for (let i = 0; i < 10; i++) log.line('debug', `chatty ${i} ${'x'.repeat(20)}`);
  log.close();
  log.line('info', 'after close');
  const text = out.join('');
  assert.match(text, /^\[info\] first line\n\[warn\] two\n {4}lines\n/);
  assert.equal((text.match(/log cut: more than 100 bytes/g) ?? []).length, 1, 'one cut marker');
  assert.match(text, /log cut: \d+ line\(s\), \d+ bytes not written\n$/);
  assert.ok(!text.includes('after close'));
  const kept = text.split('\n').filter((l) => l.startsWith('[debug]')).length;
  const cut = Number(/log cut: (\d+) line/.exec(text)![1]);
  assert.equal(kept + cut, 10, 'every line is either written or counted');
  const long: string[] = [];
  workerLog((t) => long.push(t)).line('info', 'y'.repeat(WORKER_LOG_LINE_CAP + 50));
  assert.match(long[0]!, /… \[cut: 50 more characters\]\n$/);
});

test('a run\'s worker log reaches worker.log once and the live log once; plan.json records the validity policy', { timeout: 300_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'llem-worker-log-'));
  try {
    const yamlPath = join(root, 'study.yaml');
    // 1 of 4 failed is invalid under the default policy: measured once here, it ends invalid (exit 1)
    writeFileSync(yamlPath, commandStudy({ n: 4, env: { FIXTURE_FAIL_EVERY: '4' }, validity: '{max_invalid_retries: 0}' }));
    const plan = (await planStudy(yamlPath, { gpuFreeMemoryBytes: null })).toPlanFile();
    const studyDir = createStudyDir(plan, yamlPath, join(root, 'out'));
    const recorded = JSON.parse(readFileSync(join(studyDir, 'plan.json'), 'utf8')) as { execution: { validity: unknown } };
    assert.deepEqual(recorded.execution.validity, { ...DEFAULT_VALIDITY, max_invalid_retries: 0 });
    const runner = new StudyRunner(studyDir, { env: { ...process.env, LLEM_NVML_LIB: join(root, 'no-nvml.so') } });
    const lines: string[] = [];
    runner.subscribe((e: RunnerEvent) => {
      if (e.type === 'log') lines.push(e.line);
    });
    assert.equal(await runner.run(), 1);
    const failedLine = /\[warn\] 1 of 4 measured requests failed/;
    assert.equal(lines.filter((l) => failedLine.test(l)).length, 1, `live log:\n${lines.join('\n')}`);
    assert.equal(lines.filter((l) => /\[info\] baseline: /.test(l) || /\[warn\] energy unavailable/.test(l)).length, 1);
    const [runId] = readdirSync(join(studyDir, 'runs'));
    const log = readFileSync(join(studyDir, 'runs', runId!, 'worker.log'), 'utf8');
    assert.equal((log.match(new RegExp(failedLine.source, 'g')) ?? []).length, 1, log);
    assert.match(log, /\[warn\] energy unavailable: /);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
