import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MissingDependencyError, importOptional, requireOptional } from './dependencies.js';

const ABSENT = 'voicebot-package-that-is-not-installed';

describe('optional packages', () => {
  test('one not installed is a MissingDependencyError naming it and what needs it', async () => {
    const error = await importOptional(
      ABSENT,
      'REDIS_URL',
      () => import(ABSENT) as Promise<unknown>,
    ).catch((e: unknown) => e);
    assert.ok(error instanceof MissingDependencyError);
    assert.equal(error.code, 'missing_dependency');
    assert.equal(error.packageName, ABSENT);
    assert.match(error.message, new RegExp(`^REDIS_URL needs the npm package ${ABSENT}, `));
    assert.throws(
      () => requireOptional(`${ABSENT}/lib/index.js`, ABSENT, 'Tools'),
      (e: unknown) => e instanceof MissingDependencyError && e.message.startsWith('Tools needs'),
    );
  });

  test('other failures, and a missing module that is not the package, stay as they are', async () => {
    const broken = new Error('the addon was built for another Node.js');
    assert.equal(
      await importOptional('pg', 'PostgreSQL', () => Promise.reject(broken)).catch((e) => e),
      broken,
    );
    // pg is installed: a file missing inside it is not "pg is not installed".
    assert.throws(
      () => requireOptional('pg/lib/no-such-file.js', 'pg', 'PostgreSQL'),
      (e: unknown) => !(e instanceof MissingDependencyError) && /no-such-file/.test(String(e)),
    );
    const { default: pg } = await importOptional('pg', 'PostgreSQL', () => import('pg'));
    assert.equal(typeof pg.Pool, 'function');
  });
});
