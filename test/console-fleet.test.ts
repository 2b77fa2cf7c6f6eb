/**
 * Console sign-ins behind a round-robin balancer: two relays on one PostgreSQL and one Redis. A
 * session made on one relay works on the other (cookie + CSRF), ends on both when it is signed out
 * or expires (its try-out key revoked by exactly one sweep, in the transaction that ends it), failed
 * sign-ins and `POST /v1/bot-info` are counted per address across the fleet.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_LIMITS, redisState, type Storage } from '@voice-bot/relay';
import { ConsoleSessionStore } from '../packages/relay/src/store/console-sessions.js';
import { startPostgres, type PostgresServer } from './support/postgres.js';
import { startRedis, type TestRedis } from './support/redis.js';
import { ORIGIN, createSession, startRelay, type RelayHarness } from './support/relay.js';

const ADMIN = 'console-fleet-admin-token-0123456789';

interface SignedIn {
  cookie: string;
  csrf: string;
}

let postgres: PostgresServer;
let redis: TestRedis;
let a: RelayHarness;
let b: RelayHarness;

const start = () =>
  startRelay({
    databaseUrl: postgres.url,
    sharedState: (storage: Storage) =>
      redisState({
        url: redis.url,
        conversations: storage.conversations(DEFAULT_LIMITS.conversationTtlMs),
        ledger: storage.usage,
      }),
    relay: {
      adminToken: ADMIN,
      trustProxy: true,
      // The test sweeps expired sessions itself (console.test.ts covers the timer).
      consoleSweepMs: 3_600_000,
      bots: [{ id: 'desk', name: 'Front desk', systemPrompt: 'You are the front desk.' }],
    },
  });

before(async () => {
  [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
  a = await start();
  b = await start();
});
after(async () => {
  await a?.close();
  await b?.close();
  await redis?.close();
  await postgres?.close();
});

function request(
  relay: RelayHarness,
  path: string,
  init: { method?: string; ip: string; session?: SignedIn; csrf?: boolean; body?: unknown },
): Promise<Response> {
  const headers: Record<string, string> = { 'x-forwarded-for': init.ip };
  if (init.session) headers.cookie = init.session.cookie;
  if (init.session && init.csrf !== false) headers['x-voicebot-csrf'] = init.session.csrf;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (path === '/console/try-key') headers.origin = new URL(relay.url).origin;
  return fetch(`${relay.url}${path}`, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
}

async function signIn(relay: RelayHarness, ip: string): Promise<SignedIn> {
  const res = await request(relay, '/console/session', {
    method: 'POST',
    ip,
    body: { token: ADMIN },
  });
  assert.equal(res.status, 201);
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] as string;
  assert.match(cookie, /^vb_console=[\w-]{40,}$/);
  return { cookie, csrf: ((await res.json()) as { csrf: string }).csrf };
}

describe('console sessions across a fleet', () => {
  test('signed in on A: the cookie and CSRF work on B; signed out on B, A refuses the cookie', async () => {
    const ip = '198.51.100.1';
    const session = await signIn(a, ip);

    assert.equal((await request(b, '/admin/keys', { ip, session })).status, 200);
    const view = await request(b, '/console/session', { ip, session });
    assert.equal(view.status, 200);
    assert.equal(((await view.json()) as { csrf: string }).csrf, session.csrf);

    const body = { origins: ['https://clinic.example'], label: 'made on B' };
    const refused = await request(b, '/admin/keys', {
      method: 'POST',
      ip,
      session,
      csrf: false,
      body,
    });
    assert.equal(refused.status, 403);
    const made = await request(b, '/admin/keys', { method: 'POST', ip, session, body });
    assert.equal(made.status, 201);
    const { id } = (await made.json()) as { id: string };
    const audit = await a.storage.audit.list({ keyId: id });
    assert.deepEqual(
      audit.map((entry) => [entry.action, entry.actor]),
      [['key.create', { kind: 'console', ip }]],
    );

    const out = await request(b, '/console/session', { method: 'DELETE', ip, session });
    assert.equal(out.status, 200);
    assert.match(out.headers.get('set-cookie') ?? '', /^vb_console=;.*Max-Age=0/);
    assert.equal((await request(a, '/admin/keys', { ip, session })).status, 401);
    assert.equal((await request(a, '/console/session', { ip, session })).status, 401);
    assert.equal((await request(b, '/admin/keys', { ip, session })).status, 401);
  });

  test('an expired session is refused on both relays; one of them revokes its try-out key', async () => {
    const ip = '198.51.100.2';
    const session = await signIn(a, ip);
    const tried = await request(b, '/console/try-key', {
      method: 'POST',
      ip,
      session,
      body: { bot: 'desk' },
    });
    assert.equal(tried.status, 201);
    const tryKey = (await tried.json()) as { key_id: string; key: string };
    const origin = new URL(b.url).origin;
    assert.equal((await createSession(a.url, { key: tryKey.key, origin })).status, 201);

    await a.storage.db
      .updateTable('console_sessions')
      .set({ expires_at: Date.now() - 1 })
      .execute();
    assert.equal((await request(a, '/admin/keys', { ip, session })).status, 401);
    assert.equal((await request(b, '/admin/keys', { ip, session })).status, 401);
    assert.equal((await createSession(b.url, { key: tryKey.key, origin })).status, 201);
    // Both relays' timers fire at once.
    const swept = (
      await Promise.all([a, b, a, b].map((relay) => new ConsoleSessionStore(relay.storage).sweep()))
    ).flat();
    assert.deepEqual(
      swept.map((s) => [s.reason, s.keyIds]),
      [['expired', [tryKey.key_id]]],
    );
    const refused = await createSession(b.url, { key: tryKey.key, origin });
    assert.equal(refused.body.error?.code, 'key_revoked');
    const revocations = (await a.storage.audit.list({ keyId: tryKey.key_id })).filter(
      (entry) => entry.action === 'key.revoke',
    );
    assert.deepEqual(
      revocations.map((entry) => [entry.actor, entry.detail]),
      [[{ kind: 'console', ip }, { reason: 'expired' }]],
    );
  });

  test('two relays sweeping and signing in at once: each ended session goes to one, the cap holds', async () => {
    await a.storage.db.deleteFrom('console_sessions').execute();
    const onA = new ConsoleSessionStore(a.storage);
    const onB = new ConsoleSessionStore(b.storage);
    const hash = (n: number) => n.toString(16).padStart(64, '0');
    const past = Date.now() - 1;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 20; i++) {
        await onA.create(hash(round * 100 + i), '203.0.113.1', Date.now() + 60_000);
        await onA.setTryKey(hash(round * 100 + i), 'desk', `key_${round}_${i}`, '203.0.113.1');
      }
      await a.storage.db.updateTable('console_sessions').set({ expires_at: past }).execute();
      const swept = (
        await Promise.all([onA.sweep(), onB.sweep(), onA.sweep(), onB.sweep()])
      ).flat();
      assert.equal(swept.length, 20);
      assert.equal(new Set(swept.flatMap((s) => s.keyIds)).size, 20);
    }

    const future = Date.now() + 60_000;
    for (let i = 0; i < 64; i++) await onA.create(hash(1000 + i), '203.0.113.1', future);
    for (let round = 0; round < 3; round++) {
      const created = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          (i % 2 ? onA : onB).create(hash(2000 + round * 100 + i), '203.0.113.2', future),
        ),
      );
      const pushedOut = created.flat().map((s) => s.hash);
      assert.equal(new Set(pushedOut).size, 16);
      const { n } = await a.storage.db
        .selectFrom('console_sessions')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      assert.equal(Number(n), 64);
    }
    await a.storage.db.deleteFrom('console_sessions').execute();
  });

  test('failed sign-ins from one address are counted across the fleet: the 11th is refused', async () => {
    const ip = '203.0.113.50';
    for (let i = 0; i < 10; i++) {
      const res = await request(i % 2 ? b : a, '/console/session', {
        method: 'POST',
        ip,
        body: { token: `wrong-token-${i}` },
      });
      assert.equal(res.status, 401);
    }
    const refused = await request(a, '/console/session', {
      method: 'POST',
      ip,
      body: { token: ADMIN },
    });
    assert.equal(refused.status, 429);
    assert.equal(
      ((await refused.json()) as { error: { code: string } }).error.code,
      'rate_limited',
    );
    const wait = Number(refused.headers.get('retry-after'));
    assert.ok(wait >= 1 && wait <= 60, `Retry-After ${wait}`);
    assert.equal(
      (await request(b, '/console/session', { method: 'POST', ip, body: { token: ADMIN } })).status,
      429,
    );
    await signIn(b, '203.0.113.51');
  });
});

describe('POST /v1/bot-info across a fleet', () => {
  const botInfo = (relay: RelayHarness, ip: string) =>
    fetch(`${relay.url}/v1/bot-info?key=${a.key}&bot=desk`, {
      method: 'POST',
      headers: { origin: ORIGIN, 'x-forwarded-for': ip },
    });

  test('60 per minute per address, counted by every relay; other addresses and sessions unaffected', async () => {
    const ip = '192.0.2.1';
    const statuses = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => (await botInfo(i % 2 ? b : a, ip)).status),
    );
    assert.deepEqual(new Set(statuses), new Set([200]));
    const refused = await botInfo(a, ip);
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('x-voicebot-error'), 'rate_limited');
    assert.equal(refused.headers.get('access-control-allow-origin'), ORIGIN);
    const wait = Number(refused.headers.get('retry-after'));
    assert.ok(wait >= 1 && wait <= 60, `Retry-After ${wait}`);
    assert.equal((await botInfo(b, ip)).status, 429);

    assert.equal((await botInfo(b, '192.0.2.2')).status, 200);
    const res = await fetch(`${a.url}/v1/sessions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${a.key}`,
        origin: ORIGIN,
        'content-type': 'application/json',
        'x-forwarded-for': ip,
      },
      body: '{"bot":"desk"}',
    });
    assert.equal(res.status, 201, 'the session budget is a different one');
  });
});
