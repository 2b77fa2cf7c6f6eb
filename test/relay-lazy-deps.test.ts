/**
 * The relay loads a package only when its configuration uses it: every module loaded stays in the
 * heap, and each garbage collection marks it (issue #23). A child process starts a relay in the
 * default configuration, ingests an HTML page, then makes a relay whose bot has a tool, and lists
 * the node_modules files loaded after each step (test/support/loaded-packages.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { before, describe, test } from 'node:test';
import { REPO_ROOT } from './support/relay.js';

const run = promisify(execFile);

interface Loaded {
  session: number;
  ingested: string[];
  started: string[];
  html: string[];
  tools: string[];
}

const packageOf = (path: string) =>
  path
    .split('/')
    .slice(0, path.startsWith('@') ? 2 : 1)
    .join('/');
const packages = (files: string[]) => new Set(files.map(packageOf));

/** The optional packages: none of them is loaded by a relay that does not use it. */
const NEVER_BY_DEFAULT = ['pg', 'ioredis', 'linkedom', '@mozilla/readability', 'unpdf', 'ajv'];

/** The `openai` SDK's files beyond its error classes (which the provider path uses). */
const openaiClient = (files: string[]) =>
  files.filter(
    (f) => f.startsWith('openai/') && !/^openai\/(core\/error|internal\/errors)\./.test(f),
  );

describe('optional packages are loaded only when the configuration uses them', () => {
  let loaded: Loaded;

  before(async () => {
    const { stdout } = await run(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', join('test', 'support', 'loaded-packages.ts')],
      { cwd: REPO_ROOT, timeout: 90_000, maxBuffer: 16 * 1024 * 1024 },
    );
    loaded = JSON.parse(stdout) as Loaded;
  });

  test('a started relay on SQLite with in-process state: its driver and the memory limiter only', () => {
    assert.equal(loaded.session, 201, 'the relay works: a session is created');
    const started = packages(loaded.started);
    assert.ok(started.has('better-sqlite3'), 'the SQLite driver is loaded (it is used)');
    for (const name of NEVER_BY_DEFAULT)
      assert.ok(!started.has(name), `${name} is not loaded by the default configuration`);
    assert.ok(loaded.started.includes('rate-limiter-flexible/lib/RateLimiterMemory.js'));
    assert.ok(
      !loaded.started.includes('rate-limiter-flexible/index.js'),
      "rate-limiter-flexible's index (every store it supports) is not loaded",
    );
    assert.deepEqual(openaiClient(loaded.started), [], 'the openai SDK client is not loaded');
  });

  test('an HTML page ingested loads the HTML parsers, and its embeddings no SDK', () => {
    assert.deepEqual(loaded.ingested, ['added']);
    const html = packages(loaded.html);
    assert.ok(html.has('linkedom') && html.has('@mozilla/readability'));
    for (const name of ['pg', 'ioredis', 'unpdf', 'ajv'])
      assert.ok(!html.has(name), `${name} is not loaded by an HTML ingest`);
    assert.deepEqual(openaiClient(loaded.html), [], 'embeddings go through the relay client');
  });

  test('a bot with a tool loads the JSON Schema validator', () => {
    assert.ok(packages(loaded.tools).has('ajv'));
  });
});
