import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadBackend } from '../../src/backends/load.ts';
import { backendNames } from '../../src/backends/registry.ts';
import { ClassifiedError } from '../../src/backends/errors.ts';

test('every registered backend spec names a child-side implementation of that backend', async () => {
  for (const name of backendNames()) {
    const b = await loadBackend(name);
    assert.equal(b.name, name);
    assert.equal(typeof b.load, 'function');
  }
});

test('an unknown backend is a PreflightError listing the known ones', async () => {
  await assert.rejects(loadBackend('tensorflow'), (e: unknown) => e instanceof ClassifiedError && e.errorType === 'PreflightError' && /known: .*llamacpp/.test(e.message));
});
