// Shared pieces of the terminal end-to-end tests: a study YAML written per test, the shell line
// that starts llem in a tmux pane (CI unset, so Ink draws live frames), and waits on files and
// processes instead of sleeps.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tmux } from './tmux.ts';

export const repo = fileURLToPath(new URL('../..', import.meta.url));
export const terminalWorker = join(repo, 'test/e2e/fixtures/terminal-worker.ts');

export interface StudyOptions {
  name: string;
  /** The `sweep:` body, as YAML flow mappings: "{batch_size: [1, 2, 3]}". */
  sweep: string;
  cycles?: number;
  configGapS?: number;
  cycleGapS?: number;
  order?: 'sequential' | 'interleaved';
}

export function studyYaml(o: StudyOptions): string {
  return [
    `name: ${o.name}`,
    'backend: llamacpp',
    'model: builtin:tiny-random',
    'dataset: builtin',
    'n: 2',
    'seed: 1',
    `sweep: ${o.sweep}`,
    'execution:',
    `  n_cycles: ${o.cycles ?? 1}`,
    `  cycle_order: ${o.order ?? 'sequential'}`,
    `  config_gap_seconds: ${o.configGapS ?? 0}`,
    `  cycle_gap_seconds: ${o.cycleGapS ?? 0}`,
    '',
  ].join('\n');
}

/** A temporary directory with the study YAML in it; `cleanup` kills the tmux server and removes it. */
export class TerminalCase {
  readonly tmp: string;
  readonly out: string;
  readonly yaml: string;
  readonly tmux: Tmux;
  readonly exitFile: string;
  constructor(tag: string, study: StudyOptions) {
    this.tmp = mkdtempSync(join(tmpdir(), `llem-e2e-${tag}-`));
    this.out = join(this.tmp, 'out');
    this.yaml = join(this.tmp, 'study.yaml');
    writeFileSync(this.yaml, studyYaml(study));
    this.tmux = new Tmux(tag);
    this.exitFile = join(this.tmp, 'exit');
  }
  /** `env -u CI … node bin/llem.js <args>; echo $? > exit` for a tmux pane. */
  command(args: string, env: Record<string, string> = {}): string {
    const vars = Object.entries({ LLEM_WORKER_ENTRY: terminalWorker, ...env }).map(([k, v]) => `${k}=${v}`);
    return `env -u CI ${vars.join(' ')} node bin/llem.js ${args}; echo $? > ${this.exitFile}`;
  }
  /** Start tmux and type the command. */
  launch(columns: number, rows: number, args: string, env: Record<string, string> = {}): void {
    this.tmux.start(columns, rows, repo);
    this.tmux.sendLine(this.command(args, env));
  }
  studyDir(): string | null {
    if (!existsSync(this.out)) return null;
    const [dir] = readdirSync(this.out);
    return dir ? join(this.out, dir) : null;
  }
  manifest(): { status: string; runs: Array<{ status: string; error_type: string | null; attempts: unknown[] }> } {
    return JSON.parse(readFileSync(join(this.studyDir()!, 'manifest.json'), 'utf8'));
  }
  exitCode(): string | null {
    return existsSync(this.exitFile) && readFileSync(this.exitFile, 'utf8').trim() !== '' ? readFileSync(this.exitFile, 'utf8').trim() : null;
  }
  async waitExit(what: string, timeoutMs = 90_000): Promise<string> {
    await waitUntil(() => this.exitCode() !== null, what, timeoutMs, () => this.tmux.capture());
    return this.exitCode()!;
  }
  cleanup(): void {
    this.tmux.kill();
    for (const pid of pidsMentioning(this.tmp)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

export async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 60_000, show?: () => string): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${show ? `; screen:\n${show()}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Processes whose command line mentions `text` (not tmux, not the shell that typed it). */
export function pidsMentioning(text: string): number[] {
  let out = '';
  try {
    out = execFileSync('pgrep', ['-af', text], { encoding: 'utf8' });
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
  return out
    .trim()
    .split('\n')
    .filter((l) => l !== '' && !/\b(tmux|bash|sh -c)\b/.test(l))
    .map((l) => Number(l.split(' ')[0]))
    .filter((pid) => pid !== process.pid);
}
