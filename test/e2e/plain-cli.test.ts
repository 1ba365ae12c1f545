// The plain side of the terminal (no TTY): the pre-flight printed before the first run, what a
// resume says remains (and --yes), run --dry-run, and plain `llem watch` numbers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { repo, studyYaml, terminalWorker } from './terminal-session.ts';

function llem(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['bin/llem.js', ...args], {
    cwd: repo,
    env: { ...process.env, LLEM_WORKER_ENTRY: terminalWorker, E2E_SLEEP_MS: '500', ...env },
    encoding: 'utf8',
    timeout: 240_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tempStudy(sweep: string, name: string): { dir: string; yaml: string; out: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'llem-e2e-plain-'));
  const yaml = join(dir, 'study.yaml');
  writeFileSync(yaml, studyYaml({ name, sweep, cycles: 2 }));
  return { dir, yaml, out: join(dir, 'out'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test('plain mode prints the pre-flight before the first run: count, skipped configs, estimate, finish time', { timeout: 300_000 }, () => {
  // max_prompts 1 leaves no room for the warmup's CV window: those configs are skipped
  const s = tempStudy('{batch_size: [1, 2], warmup.max_prompts: [1, 10]}', 'e2e-plain-preflight');
  try {
    const r = llem(['run', s.yaml, '--out', s.out, '--no-tui']);
    assert.equal(r.code, 0, r.stderr);
    const before = r.stderr.slice(0, r.stderr.indexOf('[1/4]'));
    assert.ok(before.length > 0, r.stderr);
    assert.match(before, /2 configs × 2 cycles = 4 runs/);
    assert.match(before, /skipped 2 combinations/);
    assert.match(before, /llamacpp bs=1 warmup\.max_prompts=1: warmup\.max_prompts 1 leaves no room for the CV window/);
    assert.match(before, /estimate: \S+ \(\S+–\S+\), finishes about \d\d:\d\d/);
  } finally {
    s.cleanup();
  }
});

test('resume: the pre-flight counts what remains; --yes is accepted; run --dry-run prints the plan', { timeout: 300_000 }, () => {
  const s = tempStudy('{batch_size: [1, 2, 3]}', 'e2e-plain-resume');
  try {
    const dry = llem(['run', s.yaml, '--out', s.out, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /3 configs × 2 cycles = 6 runs/);
    assert.match(dry.stdout, /Estimate: ~/);
    assert.throws(() => readdirSync(s.out), 'a dry run creates no study');

    // bs=2 fails: 4 of 6 complete, 2 failed
    const first = llem(['run', s.yaml, '--out', s.out, '--no-tui'], { E2E_FAIL_BATCH: '2' });
    assert.equal(first.code, 1, first.stderr);
    const [dirName] = readdirSync(s.out);
    const studyDir = join(s.out, dirName!);
    const again = llem(['resume', studyDir, '--retry-failed', '--yes', '--no-tui']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /2 of 6 runs to go \(4 completed; 3 configs × 2 cycles\)/);
    assert.match(again.stderr, /estimate: \S+ \(\S+–\S+\), finishes about \d\d:\d\d/);
  } finally {
    s.cleanup();
  }
});

test('plain llem watch prints rounded numbers', { timeout: 300_000 }, () => {
  const s = tempStudy('{batch_size: [1]}', 'e2e-plain-watch');
  try {
    assert.equal(llem(['run', s.yaml, '--out', s.out, '--no-tui']).code, 0);
    const [dirName] = readdirSync(s.out);
    const watched = llem(['watch', join(s.out, dirName!), '--no-tui']);
    assert.equal(watched.code, 0, watched.stderr);
    assert.match(watched.stdout, /completed\s+\S+ s\s+101\.0 J\s+833\.4 tok\/s/);
    assert.doesNotMatch(watched.stdout, /833\.36/);
  } finally {
    s.cleanup();
  }
});
