import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Hono } from 'hono';
import { sql } from 'kysely';
import { createLogger } from '../logger.js';
import { rateLimiterMemory } from '../state/rate-limiters.js';
import { openStorage, type Storage } from '../store/storage.js';
import {
  CONSOLE_COOKIE,
  CONSOLE_SESSION_MS,
  ConsoleSessions,
  consoleRoutes,
  cookieFlags,
  type ConsoleRoutes,
} from './console.js';
import { errorHandler } from './errors.js';

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

const TOKEN = 'console-unit-admin-token-0123456789';
const ORIGIN = 'http://127.0.0.1:8080';

/** The console's routes over this test's SQLite database, with the relay's error handler. */
function consoleApp(options: { now?: () => number; sweepMs?: number } = {}) {
  const logs: { msg: string; reason?: string; revoked_keys?: number }[] = [];
  const log = createLogger({
    destination: { write: (line: string) => logs.push(JSON.parse(line)) },
  });
  const sessions = new ConsoleSessions(storage, options.now);
  const routes: ConsoleRoutes = consoleRoutes({
    sessions,
    token: TOKEN,
    keys: storage.keys,
    bots: [{ id: 'desk', name: 'Front desk', systemPrompt: 'You are the front desk.' }],
    storage,
    state: {
      rateLimiter: ({ keyPrefix, points, durationSec }) =>
        new (rateLimiterMemory())({ keyPrefix, points, duration: durationSec }),
    },
    clientIp: (c) => c.req.header('x-forwarded-for') ?? '127.0.0.1',
    log,
    assetsDir: dir,
    closeKey: () => undefined,
    sweepMs: options.sweepMs,
  });
  const app = new Hono();
  app.route('/', routes.app);
  app.onError(errorHandler({ countError: () => undefined, log }));
  const call = (
    path: string,
    init: { method?: string; cookie?: string; csrf?: string; body?: unknown },
  ) =>
    app.request(path, {
      method: init.method ?? 'GET',
      headers: {
        host: '127.0.0.1:8080',
        origin: ORIGIN,
        ...(init.cookie ? { cookie: init.cookie } : {}),
        ...(init.csrf ? { 'x-voicebot-csrf': init.csrf } : {}),
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  const signIn = async (cookie?: string) => {
    const res = await call('/console/session', {
      method: 'POST',
      body: { token: TOKEN },
      ...(cookie ? { cookie } : {}),
    });
    assert.equal(res.status, 201);
    const set = (res.headers.get('set-cookie') ?? '').split(';')[0] as string;
    return { cookie: set, csrf: ((await res.json()) as { csrf: string }).csrf };
  };
  const tryKey = async (session: { cookie: string; csrf: string }) => {
    const res = await call('/console/try-key', {
      method: 'POST',
      ...session,
      body: { bot: 'desk' },
    });
    return {
      status: res.status,
      body: (await res.json()) as { key_id: string; error?: { code: string } },
    };
  };
  return { routes, call, signIn, tryKey, logs };
}

const revocationsOf = async (keyId: string) =>
  (await storage.audit.list({ keyId }))
    .filter((entry) => entry.action === 'key.revoke')
    .map((entry) => [entry.actor, entry.detail]);

/** Makes every write of `statement` on `table` fail, as a database that refuses it would. */
async function failing<T>(
  table: string,
  statement: 'insert' | 'update' | 'delete',
  work: () => T | Promise<T>,
): Promise<T> {
  const trigger = sql.raw(`fail_${table}_${statement}`);
  await sql`create trigger ${trigger} before ${sql.raw(statement)} on ${sql.table(table)} begin select raise(abort, 'test: refused'); end`.execute(
    storage.db,
  );
  try {
    return await work();
  } finally {
    await sql`drop trigger ${trigger}`.execute(storage.db);
  }
}

test('the cookie is Secure unless loopback Host, no proxy header and no https publicUrl', async () => {
  const app = new Hono();
  app.get('/', (c) => c.text(cookieFlags(c, 60, c.req.query('public'))));
  const secure = async (headers: Record<string, string>, publicUrl?: string) =>
    (
      await (
        await app.request(publicUrl ? `/?public=${encodeURIComponent(publicUrl)}` : '/', {
          headers,
        })
      ).text()
    ).includes('; Secure');

  assert.equal(await secure({ host: '127.0.0.1:8080' }), false, 'plain local development');
  assert.equal(await secure({ host: 'localhost:8787' }, 'http://localhost:8787'), false);
  assert.equal(await secure({ host: '127.0.0.1:8080', 'x-forwarded-proto': 'https' }), true);
  assert.equal(await secure({ host: '127.0.0.1:8080', 'x-forwarded-for': '203.0.113.9' }), true);
  assert.equal(
    await secure({ host: '127.0.0.1:8080', forwarded: 'for=203.0.113.9;proto=https' }),
    true,
  );
  assert.equal(await secure({ host: '127.0.0.1:8080' }, 'https://relay.example.com'), true);
  assert.equal(await secure({ host: 'relay.example.com' }), true);
});

test('signing in again ends the old session and revokes its try-out key, with the reason in the audit', async () => {
  await storage.db.deleteFrom('console_sessions').execute();
  const { routes, call, signIn, tryKey, logs } = consoleApp();
  try {
    const first = await signIn();
    const made = await tryKey(first);
    assert.equal(made.status, 201);
    const second = await signIn(first.cookie);
    assert.notEqual(second.cookie, first.cookie);
    assert.equal((await call('/console/session', { cookie: first.cookie })).status, 401);
    assert.equal((await call('/console/session', { cookie: second.cookie })).status, 200);
    assert.ok((await storage.keys.get(made.body.key_id))?.revoked_at);
    assert.deepEqual(await revocationsOf(made.body.key_id), [
      [{ kind: 'console', ip: '127.0.0.1' }, { reason: 'signed_in_again' }],
    ]);
    assert.ok(
      logs.some((l) => l.msg === 'console: session ended' && l.reason === 'signed_in_again'),
    );

    // A second try-out key for the same bot replaces the first; signing out revokes the second.
    const one = await tryKey(second);
    const two = await tryKey(second);
    const out = await call('/console/session', { method: 'DELETE', ...second });
    assert.equal(out.status, 200);
    assert.deepEqual(
      [
        (await revocationsOf(one.body.key_id))[0]?.[1],
        (await revocationsOf(two.body.key_id))[0]?.[1],
      ],
      [{ reason: 'replaced' }, { reason: 'signed_out' }],
    );
  } finally {
    routes.close();
  }
});

test('database failures answer 503 storage_unavailable: no cookie without its audit row, no orphaned try-out key', async () => {
  await storage.db.deleteFrom('console_sessions').execute();
  const { routes, call, signIn, tryKey } = consoleApp();
  try {
    const refused = await failing('audit_log', 'insert', () =>
      call('/console/session', { method: 'POST', body: { token: TOKEN } }),
    );
    assert.equal(refused.status, 503);
    assert.equal(
      ((await refused.json()) as { error: { code: string } }).error.code,
      'storage_unavailable',
    );
    assert.equal(refused.headers.get('set-cookie'), null);
    assert.equal((await storage.db.selectFrom('console_sessions').selectAll().execute()).length, 0);

    const session = await signIn();
    const before = new Set((await storage.keys.list()).map((k) => k.id));
    const noKey = await failing('client_keys', 'insert', () => tryKey(session));
    assert.deepEqual([noKey.status, noKey.body.error?.code], [503, 'storage_unavailable']);

    const unrecorded = await failing('console_sessions', 'update', () => tryKey(session));
    assert.deepEqual(
      [unrecorded.status, unrecorded.body.error?.code],
      [503, 'storage_unavailable'],
    );
    const made = (await storage.keys.list()).filter((k) => !before.has(k.id));
    assert.equal(made.length, 1, 'the key made before the failure');
    assert.ok(made[0]?.revoked_at, 'is revoked, since no session holds it');

    const out = await failing('console_sessions', 'delete', () =>
      call('/console/session', { method: 'DELETE', ...session }),
    );
    assert.equal(out.status, 503);
    assert.equal(
      (await call('/console/session', { cookie: session.cookie })).status,
      200,
      'still signed in',
    );
  } finally {
    routes.close();
  }
});

test('expired sessions end on a timer, without any console request, and their try-out keys are revoked', async () => {
  await storage.db.deleteFrom('console_sessions').execute();
  let now = Date.now();
  const { routes, call, signIn, tryKey, logs } = consoleApp({ now: () => now, sweepMs: 30 });
  try {
    const session = await signIn();
    const made = await tryKey(session);
    now += CONSOLE_SESSION_MS;
    const deadline = Date.now() + 5_000;
    while (!(await storage.keys.get(made.body.key_id))?.revoked_at && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(await revocationsOf(made.body.key_id), [
      [{ kind: 'console', ip: '127.0.0.1' }, { reason: 'expired' }],
    ]);
    assert.equal((await storage.db.selectFrom('console_sessions').selectAll().execute()).length, 0);
    assert.deepEqual(
      logs.filter((l) => l.msg === 'console: session ended').map((l) => [l.reason, l.revoked_keys]),
      [['expired', 1]],
    );
    assert.equal((await call('/console/session', { cookie: session.cookie })).status, 401);
  } finally {
    routes.close();
  }
});
