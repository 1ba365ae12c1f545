// command: any program (PyTorch, TensorRT-LLM or custom scripts). argv is a template with {field}
// substitution, never run through a shell. The program reads the prompts from LLEM_PROMPTS_FILE and
// writes one JSON record per request, one per line, to LLEM_RECORDS_FILE (schema below). Energy is
// measured around the whole process, so the program's own load and warmup fall inside the window:
// keep them short or do them before reading the prompts file is not possible — document it in the
// study. The worker does not run its own warmup for this backend (the program owns its loop).
//
// Records file (JSON Lines), one object per request:
//   {"prompt_index": 0, "input_tokens": 12, "output_tokens": 64,
//    "start_ms": 1000.0, "first_token_ms": 1020.5, "first_content_token_ms": 1020.5 (optional),
//    "token_times_ms": [1031.2, ...] (optional: arrival of each token after the first),
//    "end_ms": 1700.2, "error": null (optional)}
// Timestamps are milliseconds on any one monotonic clock (e.g. time.perf_counter() * 1000); only
// differences are used.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Backend, BackendSession, Prompt, RequestRecord, Workload } from '../types.ts';
import type { ExperimentConfig } from '../../study/types.ts';
import { backendError, invalidResult, preflightError } from '../errors.ts';

const ms = z.number().finite();
export const commandRecordSchema = z
  .object({
    prompt_index: z.number().int().min(0),
    input_tokens: z.number().int().min(0),
    output_tokens: z.number().int().min(0),
    start_ms: ms,
    first_token_ms: ms.nullable(),
    first_content_token_ms: ms.nullable().optional(),
    token_times_ms: z.array(ms).optional(),
    end_ms: ms,
    error: z.string().nullable().optional(),
  })
  .passthrough();

/** Parses a records file; throws InvalidResult naming the file, line and field. */
export function parseRecordsFile(path: string, text: string): RequestRecord[] {
  const out: RequestRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw invalidResult(`${path}:${i + 1}: records file line is not valid JSON (${(err as Error).message})`);
    }
    const r = commandRecordSchema.safeParse(obj);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      throw invalidResult(`${path}:${i + 1}: field "${issue.path.join('.') || '(line)'}": ${issue.message}`);
    }
    const d = r.data;
    if (d.end_ms < d.start_ms) throw invalidResult(`${path}:${i + 1}: field "end_ms" is before "start_ms"`);
    if (d.first_token_ms !== null && (d.first_token_ms < d.start_ms || d.first_token_ms > d.end_ms)) {
      throw invalidResult(`${path}:${i + 1}: field "first_token_ms" is outside [start_ms, end_ms]`);
    }
    out.push({
      prompt_index: d.prompt_index,
      input_tokens: d.input_tokens,
      output_tokens: d.output_tokens,
      start_ms: d.start_ms,
      first_token_ms: d.first_token_ms,
      first_content_token_ms: d.first_content_token_ms === undefined ? d.first_token_ms : d.first_content_token_ms,
      token_times_ms: d.token_times_ms ?? [],
      end_ms: d.end_ms,
      error: d.error ?? null,
    });
  }
  if (out.length === 0) throw invalidResult(`${path}: records file has no records`);
  return out;
}

export function substituteArgv(argv: readonly string[], fields: Record<string, string>): string[] {
  return argv.map((arg) =>
    arg.replace(/\{([a-z_]+)\}/g, (whole, key: string) => {
      const v = fields[key];
      if (v === undefined) throw preflightError(`command.argv: unknown placeholder ${whole}`);
      return v;
    }),
  );
}

interface CommandParams {
  argv: string[];
  cwd: string | null;
  env: Record<string, string>;
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').slice(-2000);
  } catch {
    return '';
  }
}

export const commandBackend: Backend = {
  name: 'command',
  async load(config: ExperimentConfig, ctx) {
    const p = config.params as unknown as CommandParams;
    if (!Array.isArray(p.argv) || p.argv.length === 0) throw preflightError('command.argv must be a non-empty list');
    let runs = 0;
    const session: BackendSession = {
      handlesWarmup: true,
      async run(workload: Workload, onRequest, signal) {
        runs++;
        const promptsFile = join(ctx.runDir, `prompts-${runs}.jsonl`);
        const recordsFile = join(ctx.runDir, `records-${runs}.jsonl`);
        const logPath = join(ctx.runDir, 'command.log');
        await writeFile(promptsFile, workload.prompts.map((pr: Prompt) => JSON.stringify(pr)).join('\n') + '\n');
        const fields: Record<string, string> = {
          model: config.model,
          precision: config.precision,
          n: String(workload.prompts.length),
          max_new_tokens: String(workload.max_new_tokens),
          batch_size: String(workload.concurrency),
          seed: String(workload.seed),
          prompts_file: promptsFile,
          records_file: recordsFile,
          run_dir: ctx.runDir,
        };
        const argv = substituteArgv(p.argv, fields);
        const env: NodeJS.ProcessEnv = { ...process.env, ...(p.env ?? {}) };
        for (const [k, v] of Object.entries(fields)) env[`LLEM_${k.toUpperCase()}`] = v;
        env.LLEM_GREEDY = workload.greedy ? '1' : '0';
        const fd = openSync(logPath, 'a');
        ctx.log(`command: ${JSON.stringify(argv)}`);
        // In the child's process group (not detached): a group kill by the runner ends it too.
        const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], env, cwd: p.cwd ?? ctx.runDir });
        closeSync(fd);
        const onAbort = (): void => {
          proc.kill('SIGTERM');
          setTimeout(() => proc.kill('SIGKILL'), 3000).unref();
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        const killOnExit = (): void => {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
        };
        process.on('exit', killOnExit);
        const outcome = await new Promise<{ code: number | null; sig: NodeJS.Signals | null; err: Error | null }>((resolve) => {
          proc.on('error', (err) => resolve({ code: null, sig: null, err }));
          proc.on('exit', (code, sig) => resolve({ code, sig, err: null }));
        });
        signal?.removeEventListener('abort', onAbort);
        process.off('exit', killOnExit);
        if (signal?.aborted) throw backendError(`command stopped: ${String(signal.reason ?? 'aborted')}`);
        if (outcome.err) throw preflightError(`command: cannot start ${argv[0]}: ${outcome.err.message}`);
        if (outcome.code !== 0) {
          throw backendError(
            `command ${argv[0]} exited with ${outcome.sig ? `signal ${outcome.sig}` : `code ${outcome.code}`}; end of ${logPath}:\n${tail(logPath)}`,
          );
        }
        let text: string;
        try {
          text = await readFile(recordsFile, 'utf8');
        } catch {
          throw invalidResult(`${recordsFile}: the command exited 0 but wrote no records file (LLEM_RECORDS_FILE)`);
        }
        const records = parseRecordsFile(recordsFile, text);
        for (const r of records) onRequest?.(r);
        return records;
      },
      async dispose() {},
    };
    return { session, info: { backend_version: null, model_path: null, model_builtin: false } };
  },
};
