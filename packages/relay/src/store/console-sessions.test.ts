import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { ConsoleSessionStore, MAX_CONSOLE_SESSIONS } from './console-sessions.js';
import { openStorage, type Storage } from './storage.js';

const HOUR = 3_600_000;
const IP = '198.51.100.9';
let dir: string;
let storage: Storage;
let now = 1_700_000_000_000;
let store: ConsoleSessionStore;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'voicebot-console-sessions-'));
  storage = await openStorage({ dataDir: dir });
  store = new ConsoleSessionStore(storage, () => now);
});
after(async () => {
  await storage.close();
  await rm(dir, { recursive: true, force: true });
});

const hash = (n: number) => n.toString(16).padStart(64, '0');
const rows = async () =>
  Number(
    (
      await storage.db
        .selectFrom('console_sessions')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

test('at most 64 live sessions: a new one pushes the oldest out, with its try-out keys', async () => {
  for (let i = 1; i <= MAX_CONSOLE_SESSIONS; i++) {
    now += 1;
    assert.deepEqual(await store.create(hash(i), `203.0.113.${i}`, now + 8 * HOUR), []);
  }
  assert.deepEqual(await store.setTryKey(hash(1), 'desk', 'key_a', IP), { replaced: undefined });
  assert.deepEqual(await store.setTryKey(hash(1), 'desk', 'key_b', IP), { replaced: 'key_a' });
  assert.deepEqual(await store.setTryKey(hash(1), 'sales', 'key_c', IP), { replaced: undefined });

  now += 1;
  const ended = await store.create(hash(1000), '198.51.100.1', now + 8 * HOUR);
  assert.deepEqual(ended, [
    { hash: hash(1), ip: '203.0.113.1', reason: 'pushed_out', keyIds: ['key_b', 'key_c'] },
  ]);
  assert.equal(await rows(), MAX_CONSOLE_SESSIONS);
  assert.equal(await store.find(hash(1)), undefined);
  assert.equal((await store.find(hash(2)))?.ip, '203.0.113.2');
  assert.equal(
    await store.setTryKey(hash(1), 'desk', 'key_d', IP),
    undefined,
    'gone: not recorded',
  );

  // Sign-out hands the keys over once.
  await store.setTryKey(hash(2), 'desk', 'key_e', IP);
  assert.deepEqual((await store.delete(hash(2), IP))?.keyIds, ['key_e']);
  assert.equal(await store.delete(hash(2), IP), undefined);
});

test('expired sessions are not found, and sweep hands each over once', async () => {
  await storage.db.deleteFrom('console_sessions').execute();
  now += 1;
  await store.create(hash(1), '203.0.113.1', now + HOUR);
  await store.create(hash(2), '203.0.113.2', now + 2 * HOUR);
  await store.setTryKey(hash(1), 'desk', 'key_1', IP);
  assert.deepEqual(await store.sweep(), []);

  now += HOUR;
  assert.equal(await store.find(hash(1)), undefined, 'refused before any sweep');
  assert.equal(await store.setTryKey(hash(1), 'desk', 'key_2', IP), undefined);
  assert.equal((await store.find(hash(2)))?.expiresAt, now + HOUR);
  assert.deepEqual(await store.sweep(), [
    { hash: hash(1), ip: '203.0.113.1', reason: 'expired', keyIds: ['key_1'] },
  ]);
  assert.deepEqual(await store.sweep(), []);
  assert.equal(await rows(), 1);

  // A sign-in sweeps too.
  now += HOUR;
  const ended = await store.create(hash(3), '203.0.113.3', now + HOUR);
  assert.deepEqual(
    ended.map((s) => [s.hash, s.reason]),
    [[hash(2), 'expired']],
  );
  assert.equal(await rows(), 1);
});

test('a session ends only together with its try-out keys: a failed revocation keeps it for the next sweep', async () => {
  await storage.db.deleteFrom('console_sessions').execute();
  const { record } = await storage.keys.create({
    origins: ['http://127.0.0.1:8080'],
    label: 'console try-out',
  });
  now += 1;
  await store.create(hash(7), '203.0.113.7', now + HOUR);
  await store.setTryKey(hash(7), 'desk', record.id, '203.0.113.7');
  now += HOUR;

  await sql`create trigger refuse_revoke before update on client_keys begin select raise(abort, 'test: refused'); end`.execute(
    storage.db,
  );
  try {
    await assert.rejects(store.sweep());
  } finally {
    await sql`drop trigger refuse_revoke`.execute(storage.db);
  }
  assert.equal(await rows(), 1, 'the session is still there to be swept again');
  assert.equal((await storage.keys.get(record.id))?.revoked_at, null);

  assert.deepEqual(await store.sweep(), [
    { hash: hash(7), ip: '203.0.113.7', reason: 'expired', keyIds: [record.id] },
  ]);
  assert.ok((await storage.keys.get(record.id))?.revoked_at);
  const audit = await storage.audit.list({ keyId: record.id });
  assert.deepEqual(
    audit.filter((e) => e.action === 'key.revoke').map((e) => [e.actor, e.detail]),
    [[{ kind: 'console', ip: '203.0.113.7' }, { reason: 'expired' }]],
  );
});
