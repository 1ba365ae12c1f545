// Per-request records of completed runs (<run dir>/requests.jsonl, written by the worker from its
// RequestRecords), for the per-request answers: goodput under an SLO.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { RequestRecord } from '../backends/types.ts';
import type { RunResult } from './schema.ts';

const ms = z.number().finite();
/** One line of requests.jsonl: the worker's RequestRecord (src/backends/types.ts). */
export const requestLineSchema = z
  .object({
    prompt_index: z.number().int(),
    input_tokens: z.number().int(),
    output_tokens: z.number().int(),
    start_ms: ms,
    first_token_ms: ms.nullable(),
    first_content_token_ms: ms.nullable(),
    token_times_ms: z.array(ms),
    end_ms: ms,
    error: z.string().nullable(),
    scheduled_ms: ms.optional(),
  })
  .passthrough() satisfies z.ZodType<RequestRecord, z.ZodTypeDef, unknown>;

export const REQUESTS_FILE = 'requests.jsonl';

/** Parses requests.jsonl; a bad line is an error naming the file, line and field. */
export function parseRequestLines(file: string, text: string): RequestRecord[] {
  const out: RequestRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (err) {
      throw new Error(`${file}:${i + 1}: not valid JSON (${(err as Error).message})`);
    }
    const parsed = requestLineSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Error(`${file}:${i + 1}: field "${issue.path.join('.') || '(line)'}": ${issue.message}`);
    }
    out.push(parsed.data);
  }
  return out;
}

/** The request records of each result (by run_id), read beside its result.json. Runs whose file is
 * missing or bad are named in `errors` and left out of the map (their goodput is unknown, not 0). */
export async function loadRequestRecords(
  studyDir: string,
  results: readonly RunResult[],
  resultPaths: ReadonlyMap<string, string>,
): Promise<{ records: Map<string, RequestRecord[]>; errors: string[] }> {
  const records = new Map<string, RequestRecord[]>();
  const errors: string[] = [];
  for (const r of results) {
    const rel = resultPaths.get(r.run_id);
    if (!rel) continue;
    const file = path.join(path.dirname(path.resolve(studyDir, rel)), REQUESTS_FILE);
    if (!existsSync(file)) {
      errors.push(`${r.run_id}: no ${REQUESTS_FILE}; its goodput is unknown`);
      continue;
    }
    try {
      records.set(r.run_id, parseRequestLines(file, await readFile(file, 'utf8')));
    } catch (err) {
      errors.push(`${(err as Error).message}; goodput of ${r.run_id} is unknown`);
    }
  }
  return { records, errors };
}
