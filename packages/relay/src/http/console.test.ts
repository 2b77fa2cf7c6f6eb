import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Hono } from 'hono';
import { CONSOLE_COOKIE, CONSOLE_SESSION_MS, ConsoleSessions } from './console.js';

/** What `of` finds for a request carrying this cookie. */
async function lookUp(sessions: ConsoleSessions, id: string) {
  const app = new Hono();
  app.get('/', (c) => c.json({ found: sessions.of(c)?.id ?? null }));
  const response = await app.request('/', { headers: { cookie: `${CONSOLE_COOKIE}=${id}` } });
  return ((await response.json()) as { found: string | null }).found;
}

test('console sessions end after 8 hours, and sweep hands the ended ones over once', async () => {
  let now = 1_000_000;
  const sessions = new ConsoleSessions(() => now);
  const session = sessions.create('203.0.113.7');
  assert.equal(await lookUp(sessions, session.id), session.id);
  assert.equal(await lookUp(sessions, `${session.id}x`), null);
  assert.deepEqual(sessions.sweep(), []);
  now += CONSOLE_SESSION_MS;
  assert.equal(await lookUp(sessions, session.id), null);
  assert.deepEqual(
    sessions.sweep().map((s) => s.id),
    [session.id],
  );
  assert.deepEqual(sessions.sweep(), []);
});

test('at most 64 sessions: the oldest is pushed out and handed to sweep', async () => {
  const sessions = new ConsoleSessions();
  const first = sessions.create('203.0.113.7');
  for (let i = 0; i < 64; i++) sessions.create('203.0.113.7');
  assert.equal(await lookUp(sessions, first.id), null);
  assert.deepEqual(
    sessions.sweep().map((s) => s.id),
    [first.id],
  );
});
