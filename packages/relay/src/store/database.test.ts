import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { STATEMENT_CACHE_SIZE, cachingStatements } from './database.js';

test('SQLite statements are prepared once per SQL text, at most STATEMENT_CACHE_SIZE kept', () => {
  const db = cachingStatements(new Database(':memory:'));
  const first = db.prepare('select 1 as one');
  assert.equal(db.prepare('select 1 as one'), first, 'the same text: the same statement');
  for (let i = 0; i < STATEMENT_CACHE_SIZE - 1; i++) db.prepare(`select ${i + 2} as n`);
  assert.equal(db.prepare('select 1 as one'), first, 'still kept at the bound');
  for (let i = 0; i < STATEMENT_CACHE_SIZE; i++) db.prepare(`select ${i + 1000} as n`);
  assert.notEqual(db.prepare('select 1 as one'), first, 'dropped once the bound was passed');
  db.close();
});

test('a statement being iterated is not handed out again; both give their rows', () => {
  const sqlite = new Database(':memory:');
  sqlite.exec('create table t (n integer); insert into t values (1), (2), (3)');
  const db = cachingStatements(sqlite);
  const text = 'select n from t order by n';
  const outer = db.prepare(text);
  const rows: number[] = [];
  for (const row of outer.iterate([]) as IterableIterator<{ n: number }>) {
    const inner = db.prepare(text);
    assert.notEqual(inner, outer);
    rows.push(row.n, (inner.all([]) as { n: number }[]).length);
  }
  assert.deepEqual(rows, [1, 3, 2, 3, 3, 3]);
  db.close();
});
