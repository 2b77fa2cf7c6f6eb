import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Hono } from 'hono';
import { openStorage, type Storage } from '../store/storage.js';
import { CONSOLE_COOKIE, CONSOLE_SESSION_MS, ConsoleSessions } from './console.js';

let dir: string;
let storage: Storage;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'voicebot-console-'));
  storage = await openStorage({ dataDir: dir });
});
after(async () => {
  await storage.close();
  await rm(dir, { recursive: true, force: true });
});

/** What `of` finds for a request carrying this cookie. */
async function lookUp(sessions: ConsoleSessions, id: string) {
  const app = new Hono();
  app.get('/', async (c) => {
    const found = await sessions.of(c);
    return c.json({ found: found?.id ?? null, csrf: found?.csrf ?? null });
  });
  const response = await app.request('/', { headers: { cookie: `${CONSOLE_COOKIE}=${id}` } });
  return (await response.json()) as { found: string | null; csrf: string | null };
}

test('a console session is found by its cookie for 8 hours; the database holds neither cookie nor CSRF', async () => {
  let now = 1_000_000;
  const sessions = new ConsoleSessions(storage, () => now);
  const { session } = await sessions.create('203.0.113.7');
  const other = (await sessions.create('203.0.113.8')).session;

  const found = await lookUp(sessions, session.id);
  assert.deepEqual(found, { found: session.id, csrf: session.csrf });
  assert.notEqual(session.csrf, other.csrf);
  assert.ok(sessions.csrfOk(session, session.csrf));
  assert.ok(!sessions.csrfOk(session, other.csrf));
  assert.ok(!sessions.csrfOk(session, undefined));
  assert.equal((await lookUp(sessions, `${session.id}x`)).found, null);

  const stored = JSON.stringify(
    await storage.db.selectFrom('console_sessions').selectAll().execute(),
  );
  for (const secret of [session.id, session.csrf, other.id, other.csrf])
    assert.ok(!stored.includes(secret), 'no cookie value or CSRF token in the table');

  now += CONSOLE_SESSION_MS;
  assert.equal((await lookUp(sessions, session.id)).found, null);
  assert.equal((await sessions.sweep()).length, 2);
});
