// The bad inputs a tired researcher produces, run through the real CLI as a child process: each
// must exit 2 with a message naming the file (and line:column:field where the file's content is at
// fault), print no stack trace, and leave what is already on disk untouched.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makePlan, tempStudy } from '../runner/helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(root, 'bin/llem.js');
const QUICKSTART = readFileSync(join(root, 'examples/quickstart.yaml'), 'utf8');

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function llem(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: root, timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function assertNoStack(r: CliResult): void {
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+\)?\n/, `stack trace printed:\n${r.stderr}`);
}

/** Every file under `dir` with its bytes, to prove a failed command changed nothing. */
function snapshotTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(p, readFileSync(p).toString('base64'));
    }
  };
  walk(dir);
  return out;
}

function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'llem-bad-input-'));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

const quickstartWith = (from: RegExp, to: string) => {
  assert.match(QUICKSTART, from);
  return QUICKSTART.replace(from, to);
};

interface YamlCase {
  name: string;
  command: 'plan' | 'run';
  files: Record<string, string>;
  code: number;
  stderr?: RegExp;
  stdout?: RegExp;
}

const yamlCases: YamlCase[] = [
  { name: 'an empty study file', command: 'plan', files: { 'study.yaml': '' }, code: 2, stderr: /study\.yaml:1:1: the file has no study fields/ },
  { name: 'only comments', command: 'plan', files: { 'study.yaml': '# todo\n' }, code: 2, stderr: /study\.yaml:1:1: the file has no study fields/ },
  {
    name: 'backend with the wrong case',
    command: 'plan',
    files: { 'study.yaml': quickstartWith(/^backend: llamacpp/m, 'backend: vLLM') },
    code: 2,
    stderr: /study\.yaml:4:10: backend: expected one of .*got "vLLM" \(did you mean "vllm"\?\)/,
  },
  {
    name: 'a quoted number',
    command: 'plan',
    files: { 'study.yaml': quickstartWith(/^n: 8 .*$/m, 'n: "10"') },
    code: 2,
    stderr: /study\.yaml:7:4: n: expected number, got "10" \(quoted, so it is text: write 10 without quotes\)/,
  },
  {
    name: 'a list where one value goes (meant as a sweep)',
    command: 'plan',
    files: { 'study.yaml': 'backend: llamacpp\nmodel: builtin:tiny-random\nbatch_size: [1, 2]\n' },
    code: 2,
    stderr: /study\.yaml:3:13: batch_size: expected number, got a list \(to sweep several values, list them under sweep: as batch_size: \[\.\.\.\]\)/,
  },
  {
    name: 'a key with the wrong case',
    command: 'plan',
    files: { 'study.yaml': quickstartWith(/^n: 8/m, 'N: 8') },
    code: 2,
    stderr: /study\.yaml:7:1: N: unknown field "N" \(did you mean "n"\?\)/,
  },
  {
    name: 'run: a dataset file that does not exist',
    command: 'run',
    files: { 'study.yaml': quickstartWith(/^dataset: builtin/m, 'dataset: ./prompts.jsonl') },
    code: 2,
    stderr: /study\.yaml:6:10: dataset: file not found: .*prompts\.jsonl/,
  },
  {
    name: 'run: a .jsonl dataset with a bad line',
    command: 'run',
    files: { 'study.yaml': quickstartWith(/^dataset: builtin/m, 'dataset: ./prompts.jsonl'), 'prompts.jsonl': '{"prompt": "a"}\n{"prompt": "b",\n' },
    code: 2,
    stderr: /study\.yaml:6:10: dataset: .*prompts\.jsonl:2: not valid JSON/,
  },
  {
    name: 'run: a dataset path that is a directory',
    command: 'run',
    files: { 'study.yaml': quickstartWith(/^dataset: builtin/m, 'dataset: ./prompts.jsonl'), 'prompts.jsonl/keep': '' },
    code: 2,
    stderr: /study\.yaml:6:10: dataset: expected a \.jsonl file, got a directory/,
  },
  {
    name: 'run: a swept model file that does not exist',
    command: 'run',
    files: { 'study.yaml': quickstartWith(/^sweep:\n/m, 'sweep:\n  model: [builtin:tiny-random, ./models/m.gguf]\n').replace(/^model: .*\n/m, '') },
    code: 2,
    stderr: /study\.yaml:\d+:\d+: sweep\.model\[1\]: not found: .*models\/m\.gguf/,
  },
  {
    name: 'plan: a missing dataset is a warning naming the line (the plan may be for another machine)',
    command: 'plan',
    files: { 'study.yaml': quickstartWith(/^dataset: builtin/m, 'dataset: ./prompts.jsonl') },
    code: 0,
    stdout: /Warnings:\n.*study\.yaml:6:10: dataset: file not found: .*prompts\.jsonl.*llem run` refuses this/,
  },
];

describe('llem plan/run: bad study files', { timeout: 600_000 }, () => {
  for (const c of yamlCases) {
    it(c.name, () =>
      withTemp(async (dir) => {
        for (const [name, content] of Object.entries(c.files)) {
          mkdirSync(join(dir, name, '..'), { recursive: true });
          writeFileSync(join(dir, name), content);
        }
        const out = join(dir, 'out');
        const args = c.command === 'run' ? ['run', join(dir, 'study.yaml'), '--no-tui', '--yes', '--out', out] : ['plan', join(dir, 'study.yaml')];
        const r = await llem(args);
        assert.equal(r.code, c.code, r.stderr);
        if (c.stderr) assert.match(r.stderr, c.stderr);
        if (c.stdout) assert.match(r.stdout, c.stdout);
        assertNoStack(r);
        // refused before anything is created
        if (c.command === 'run') assert.equal(existsSync(out), false, 'no study dir may be created for bad input');
      }),
    );
  }

  it('run --out pointing at a file (or below one) is refused before anything is written', () =>
    withTemp(async (dir) => {
      const file = join(dir, 'results');
      writeFileSync(file, 'not a directory\n');
      for (const out of [file, join(file, 'sub')]) {
        const r = await llem(['run', join(root, 'examples/quickstart.yaml'), '--no-tui', '--yes', '--out', out]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /--out .*results.*(expected a directory, got a file|is a file, so the directory cannot be created)/);
        assertNoStack(r);
      }
      assert.equal(readFileSync(file, 'utf8'), 'not a directory\n');
    }));
});

describe('commands on a <dir> that is not a study dir, or a damaged one', { timeout: 600_000 }, () => {
  const commands = [['resume', '--no-tui'], ['status'], ['status', '--json'], ['repair-manifest'], ['cancel']];

  it('a path that does not exist, a file, and a plain directory: exit 2 naming the path, nothing created', () =>
    withTemp(async (dir) => {
      const plain = join(dir, 'plain');
      mkdirSync(plain);
      const yaml = join(dir, 'study.yaml');
      writeFileSync(yaml, QUICKSTART);
      const cases: Array<[string, RegExp]> = [
        [join(dir, 'missing'), /missing: no such study directory/],
        [yaml, /study\.yaml: expected a study directory, got a file \(a study YAML is started with `llem run`\)/],
        [plain, /plain: not a study directory \(no plan\.json/],
      ];
      for (const [command, ...flags] of commands) {
        for (const [target, expected] of cases) {
          const r = await llem([command!, target, ...flags]);
          assert.equal(r.code, 2, `${command} ${target}: ${r.stderr}`);
          assert.match(r.stderr, expected, `${command} ${target}`);
          assertNoStack(r);
        }
      }
      assert.deepEqual(readdirSync(plain), [], 'nothing (no .lock) left in a directory that is not a study dir');
      assert.equal(existsSync(join(dir, 'missing')), false);
      assert.equal(readFileSync(yaml, 'utf8'), QUICKSTART);
    }));

  it('a study dir whose plan.json is gone, or whose manifest.json is truncated, empty or garbage: exit 2, files untouched', async () => {
    const t = tempStudy(makePlan([{ fixture_mode: 'ok' }], { nCycles: 1 }));
    try {
      const before = snapshotTree(t.studyDir);
      const manifest = join(t.studyDir, 'manifest.json');
      const goodManifest = readFileSync(manifest, 'utf8');
      for (const [label, content] of [['truncated', goodManifest.slice(0, 40)], ['empty', ''], ['garbage', 'garbage!!\n']] as const) {
        writeFileSync(manifest, content);
        for (const [command, ...flags] of [['resume', '--no-tui'], ['status'], ['status', '--json']]) {
          const r = await llem([command!, t.studyDir, ...flags]);
          assert.equal(r.code, 2, `${label} ${command}: ${r.stderr}`);
          assert.match(r.stderr, /manifest\.json: not valid JSON [\s\S]*llem repair-manifest/, `${label} ${command}`);
          assertNoStack(r);
          assert.equal(readFileSync(manifest, 'utf8'), content, `${command} must not rewrite a damaged manifest`);
        }
      }
      writeFileSync(manifest, goodManifest);
      assert.deepEqual(snapshotTree(t.studyDir), before);

      const plan = join(t.studyDir, 'plan.json');
      const planText = readFileSync(plan, 'utf8');
      unlinkSync(plan);
      for (const [command, ...flags] of [['resume', '--no-tui'], ['status'], ['repair-manifest']]) {
        const r = await llem([command!, t.studyDir, ...flags]);
        assert.equal(r.code, 2, `${command}: ${r.stderr}`);
        assert.match(r.stderr, /plan\.json: not found; a study directory needs the plan\.json it was created with/);
        assertNoStack(r);
      }
      writeFileSync(plan, planText);
      const cancel = await llem(['cancel', t.studyDir]);
      assert.equal(cancel.code, 2, cancel.stderr);
      assert.match(cancel.stderr, /never submitted to Slurm/);
      assert.deepEqual(snapshotTree(t.studyDir), before, 'the failed commands changed nothing in the study dir');
    } finally {
      t.cleanup();
    }
  });
});

describe('llem report --out', { timeout: 600_000 }, () => {
  it('a directory gets <study>.html inside; missing parents are created; a file in the way and the study\'s own files are refused', async () => {
    const t = tempStudy(makePlan([{ fixture_mode: 'ok' }], { nCycles: 1 }));
    try {
      const before = snapshotTree(t.studyDir);
      const reports = join(t.root, 'reports');
      mkdirSync(reports);
      const intoDir = await llem(['report', t.studyDir, '--out', reports]);
      assert.equal(intoDir.code, 0, intoDir.stderr);
      const name = `${t.studyDir.split('/').pop()}.html`;
      assert.match(intoDir.stdout, new RegExp(`wrote .*reports/${name.replace(/[.]/g, '\\.')}`));
      assert.ok(readFileSync(join(reports, name), 'utf8').startsWith('<!'), 'an HTML file was written into the directory');

      const deep = join(t.root, 'new', 'sub', 'r.html');
      const nested = await llem(['report', t.studyDir, '--out', deep]);
      assert.equal(nested.code, 0, nested.stderr);
      assert.ok(existsSync(deep));

      const blocker = join(t.root, 'afile');
      writeFileSync(blocker, 'x');
      const underFile = await llem(['report', t.studyDir, '--out', join(blocker, 'r.html')]);
      assert.equal(underFile.code, 2, underFile.stderr);
      assert.match(underFile.stderr, /--out .*afile\/r\.html: .*afile is a file, so the report cannot be written there/);
      assertNoStack(underFile);

      for (const own of ['plan.json', 'manifest.json', 'study.yaml']) {
        const r = await llem(['report', t.studyDir, '--out', join(t.studyDir, own)]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, new RegExp(`that is the study's own ${own.replace('.', '\\.')}`));
      }
      assert.deepEqual(snapshotTree(t.studyDir), before, 'the study record is untouched');
    } finally {
      t.cleanup();
    }
  });
});

describe('llem watch on a study nobody runs', { timeout: 300_000 }, () => {
  it('says so and exits instead of waiting forever for a journal that will not grow', async () => {
    const t = tempStudy(makePlan([{ fixture_mode: 'ok' }], { nCycles: 1 }));
    try {
      writeFileSync(join(t.studyDir, 'events.jsonl'), 'garbage, not a journal line\n');
      const before = snapshotTree(t.studyDir);
      const r = await llem(['watch', t.studyDir, '--no-tui']);
      assert.equal(r.code, 1, r.stderr); // the manifest still says running: not completed
      assert.match(r.stdout, /no runner is running this study \(manifest status: running\); nothing to follow .*llem resume/);
      assertNoStack(r);
      assert.deepEqual(snapshotTree(t.studyDir), before, 'watch is read-only');
    } finally {
      t.cleanup();
    }
  });
});

describe('Ctrl+C', { timeout: 120_000 }, () => {
  // proper-lockfile installs signal-exit's SIGINT listener when loaded; loaded at import, it made
  // Ctrl+C during a long synchronous plan a no-op (the plan printed in full, exit 0).
  it('the CLI modules install no SIGINT listener at import, so Ctrl+C during planning stops the process', async () => {
    const script = [
      "await import('./src/cli/plan.ts'); await import('./src/cli/run.ts'); await import('./src/cli/resume.ts');",
      "await import('./src/cli/status.ts'); await import('./src/runner/index.ts');",
      "process.stdout.write('ready ' + process.listenerCount('SIGINT') + '\\n');",
      // stands in for a big grid being planned: synchronous work the signal must interrupt
      'const end = Date.now() + 20000; while (Date.now() < end) {}',
      "process.stdout.write('finished\\n');",
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        stdout += d;
        if (stdout.includes('\n')) resolve();
      });
      child.on('exit', () => reject(new Error(`child exited before ready: ${stderr}`)));
    });
    try {
      assert.match(stdout, /^ready 0\n/, 'no SIGINT listener after loading the command modules');
      child.kill('SIGINT');
      const { code, signal } = await exited;
      assert.equal(signal, 'SIGINT', `expected death by SIGINT, got code ${code}`);
      assert.doesNotMatch(stdout, /finished/);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
