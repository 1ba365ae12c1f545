// Writes study files into a fresh temp dir for one test and removes it afterwards.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import assert from 'node:assert/strict';
import { StudyInputError } from '../../src/study/errors.ts';

export async function withStudy<T>(files: Record<string, string | Buffer>, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'llem-study-'));
  try {
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), content);
    }
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Awaits a rejection with a StudyInputError and returns it. */
export async function inputError(p: Promise<unknown>): Promise<StudyInputError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof StudyInputError, `expected StudyInputError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    return err;
  }
  assert.fail('expected the study to be rejected');
}
