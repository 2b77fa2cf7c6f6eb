/**
 * The data layer on both engines — SQLite (a file in a temp dir) and a real PostgreSQL started
 * for this file — then relays sharing a database: conversations resuming on another relay,
 * quotas and used tokens surviving a restart, and a PostgreSQL outage in the middle of a session.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { Migrator, sql } from 'kysely';
import { migrations } from '../packages/relay/src/store/migrations/index.js';
import {
  DEFAULT_LIMITS,
  UsageTracker,
  createRelay,
  openStorage,
  type Relay,
  type Storage,
  type StorageOptions,
  type UsageDays,
  type UsageLedger,
} from '@voice-bot/relay';
import { createFakeUpstream } from '@voice-bot/fake-provider';
import {
  ORIGIN,
  TalkClient,
  captureLogs,
  connectTalk,
  createSession,
  lastUser,
  openStartedTalk,
  startRelay,
} from './support/relay.js';
import { startPostgres, type PostgresServer } from './support/postgres.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TOKEN_SECRET = 'storage-secret-storage-secret-storage-0123';

let postgres: PostgresServer;
const dirs: string[] = [];
before(async () => {
  postgres = await startPostgres();
});
after(async () => {
  await postgres?.close();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'voicebot-storage-'));
  dirs.push(dir);
  return dir;
}

let databases = 0;
/** A fresh database on the shared PostgreSQL server. */
async function freshPostgresUrl(): Promise<string> {
  const name = `t_${process.pid}_${++databases}`;
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(postgres.url);
  url.pathname = `/${name}`;
  return url.toString();
}

type EngineName = 'sqlite' | 'postgres';
/** Where one test's data lives: a data dir (keys.json, SQLite) and, for PostgreSQL, a fresh database. */
async function place(engine: EngineName): Promise<StorageOptions & { dataDir: string }> {
  const dataDir = await tempDir();
  return engine === 'postgres' ? { dataDir, databaseUrl: await freshPostgresUrl() } : { dataDir };
}

const upstreamScript = {
  chat: (req: Parameters<typeof lastUser>[0]) => ({ content: `You said ${lastUser(req)}.` }),
};

/** A relay on `storage`, answering from the fake upstream at `upstreamUrl`. */
async function relayOn(
  storage: Storage,
  upstreamUrl: string,
  extra: Parameters<typeof createRelay>[0] = {},
): Promise<{ relay: Relay; url: string }> {
  const stage = { baseURL: upstreamUrl, apiKey: 'sk-x', timeoutMs: 5_000, maxRetries: 0 };
  const relay = createRelay({
    storage,
    logger: captureLogs().logger,
    tokenSecret: TOKEN_SECRET,
    providers: {
      stt: { ...stage, model: 'w' },
      llm: { ...stage, model: 'm' },
      tts: { ...stage, model: 't', voice: 'v' },
    },
    ...extra,
  });
  const { url } = await relay.listen(0);
  return { relay, url };
}

async function talkWith(url: string, key: string, conversationId?: string): Promise<TalkClient> {
  const session = await createSession(url, { key, origin: ORIGIN });
  assert.equal(session.status, 201, JSON.stringify(session.body));
  const talk = await connectTalk(
    session.body.ws_url as string,
    session.body.token as string,
    ORIGIN,
  );
  assert.ok(talk instanceof TalkClient);
  talk.start({
    input: 'text',
    output: 'text',
    ...(conversationId ? { conversation_id: conversationId } : {}),
  });
  await talk.next('ready');
  return talk;
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`storage on ${engine}`, () => {
    test('migrations run once: a second run and a second process find nothing to do', async () => {
      const where = await place(engine);
      const first = await openStorage(where);
      assert.deepEqual(await first.migrate(), [], 'openStorage already migrated');
      const second = await openStorage(where);
      assert.deepEqual(await second.migrate(), []);
      const fresh = await openStorage(await place(engine)).then(async (s) => {
        const applied = await s.db
          .selectFrom('voicebot_migrations' as never)
          .select('name' as never)
          .execute();
        await s.close();
        return applied;
      });
      assert.deepEqual(
        fresh,
        Object.keys(migrations(engine)).map((name) => ({ name })),
      );
      assert.deepEqual(fresh.slice(0, 2), [
        { name: '001_initial' },
        { name: '002_speculative_usage' },
      ]);
      await Promise.all([first.close(), second.close()]);
    });

    test('a database from before 002 is migrated: old usage rows read speculative counts as 0, new ones add up', async () => {
      const where = await place(engine);
      const old = await openStorage(where);
      // Back to the 1.0 schema (every later migration undone): no speculative columns; one day of usage in it.
      const back = await new Migrator({
        db: old.db,
        provider: { getMigrations: async () => migrations(engine) },
        migrationTableName: 'voicebot_migrations',
        migrationLockTableName: 'voicebot_migrations_lock',
      }).migrateTo('001_initial');
      assert.equal(back.error, undefined);
      await sql`insert into usage_days (day, key_id, turns, prompt_tokens) values ('2030-01-02', 'k1', 4, 100)`.execute(
        old.db,
      );
      await old.close();

      const upgraded = await openStorage(where);
      try {
        assert.deepEqual(await upgraded.migrate(), [], 'openStorage applied 002 already');
        const at = Date.parse('2030-01-02T12:00:00Z');
        const [before] = await upgraded.usage.history('k1', 1, at);
        assert.equal(before?.turns, 4);
        assert.equal(before?.prompt_tokens, 100);
        assert.equal(before?.speculative_confirmed, 0);
        assert.equal(before?.speculative_discarded, 0);
        const counted = new UsageTracker();
        counted.add('k1', { speculative_confirmed: 2, speculative_discarded: 3 });
        const days = counted.export();
        const today = Object.keys(days)[0] as string;
        await upgraded.usage.add({ '2030-01-02': days[today] ?? {} });
        await upgraded.usage.add({ '2030-01-02': days[today] ?? {} });
        const [after] = await upgraded.usage.history('k1', 1, at);
        assert.equal(after?.speculative_confirmed, 4);
        assert.equal(after?.speculative_discarded, 6);
        assert.equal(after?.turns, 4, 'the other counters are untouched');
      } finally {
        await upgraded.close();
      }
    });

    test('a key change and its audit row commit together; a failed audit write changes nothing', async () => {
      const storage = await openStorage(await place(engine));
      try {
        const { record } = await storage.keys.create(
          { origins: ['https://a.example'], label: 'shop' },
          { kind: 'cli', user: 'alice' },
        );
        await storage.keys.update(
          record.id,
          { label: 'renamed' },
          { kind: 'admin-api', ip: '10.0.0.1' },
        );
        const entries = await storage.audit.list({ keyId: record.id });
        assert.deepEqual(
          entries.map((e) => [e.action, e.actor]),
          [
            ['key.update', { kind: 'admin-api', ip: '10.0.0.1' }],
            ['key.create', { kind: 'cli', user: 'alice' }],
          ],
          'newest first',
        );
        assert.deepEqual(entries[0]?.detail.label, 'renamed');

        // The audit table goes away: every change must fail whole.
        await sql`alter table audit_log rename to audit_log_gone`.execute(storage.db);
        await assert.rejects(storage.keys.revoke(record.id, { kind: 'cli', user: 'alice' }));
        await assert.rejects(storage.keys.create({ origins: ['https://b.example'] }));
        await assert.rejects(storage.keys.update(record.id, { label: 'again' }));
        const after = await storage.keys.list();
        assert.equal(after.length, 1, 'no key was created');
        assert.equal(after[0]?.revoked_at, null, 'the key was not revoked');
        assert.equal(after[0]?.label, 'renamed');
        await sql`alter table audit_log_gone rename to audit_log`.execute(storage.db);
        assert.equal(await storage.keys.revoke(record.id, { kind: 'cli', user: 'alice' }), true);
        assert.equal((await storage.audit.list({ limit: 1 }))[0]?.action, 'key.revoke');
      } finally {
        await storage.close();
      }
    });

    test('keys.json in the data dir is imported once, then renamed', async () => {
      const where = await place(engine);
      const old = {
        version: 1,
        keys: [
          {
            id: 'key_0123456789abcdef',
            label: 'from the file',
            hash: 'a'.repeat(64),
            hint: 'abcd',
            origins: ['https://shop.example'],
            bots: ['support'],
            limits: { maxSessionsPerKey: 3 },
            created_at: '2024-01-01T00:00:00.000Z',
            revoked_at: null,
          },
          {
            id: 'key_fedcba9876543210',
            label: '',
            hash: 'b'.repeat(64),
            hint: 'wxyz',
            origins: ['https://old.example'],
            bots: [],
            created_at: '2024-01-02T00:00:00.000Z',
            revoked_at: '2024-02-01T00:00:00.000Z',
          },
        ],
      };
      const file = join(where.dataDir, 'keys.json');
      await writeFile(file, JSON.stringify(old));
      const { lines, logger } = captureLogs();
      const storage = await openStorage({ ...where, logger });
      const keys = await storage.keys.list();
      assert.deepEqual(keys, old.keys);
      assert.ok(!existsSync(file) && existsSync(`${file}.imported`));
      assert.ok(
        lines.some((l) => l.includes(`imported 2 client keys from ${file}`)),
        lines.join('\n'),
      );
      assert.equal((await storage.audit.list()).filter((e) => e.action === 'key.import').length, 2);
      await storage.close();

      // A keys.json that shows up again (restored from a backup, say) is not imported twice.
      await writeFile(
        file,
        JSON.stringify({ version: 1, keys: [{ ...old.keys[0], id: 'key_new' }] }),
      );
      const again = await openStorage(where);
      assert.equal((await again.keys.list()).length, 2);
      assert.ok(existsSync(file), 'left alone');
      await again.close();
    });

    test('20 parallel claims of one token id from two connections: exactly one wins', async () => {
      const where = await place(engine);
      const a = await openStorage(where);
      const b = await openStorage(where);
      const expiresAt = Math.floor(Date.now() / 1000) + 600;
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? a : b).usedTokens.claim('jti-one', expiresAt),
        ),
      );
      assert.equal(results.filter(Boolean).length, 1);
      assert.equal(await a.usedTokens.claim('jti-two', expiresAt), true);
      // Expired ids are purged; live ones stay.
      assert.equal(await a.usedTokens.claim('jti-old', Math.floor(Date.now() / 1000) - 5), true);
      assert.equal((await b.purge()).tokens, 1);
      assert.equal(await b.usedTokens.claim('jti-two', expiresAt), false);
      await Promise.all([a.close(), b.close()]);
    });

    test('usage counted by two trackers on one database adds up exactly; a failed flush is kept', async () => {
      const where = await place(engine);
      const a = await openStorage(where);
      const b = await openStorage(where);
      let failNext = 1;
      /** The real ledger, failing its first write (as during an outage). */
      const flaky: UsageLedger = {
        add: async (days: UsageDays) => {
          if (failNext-- > 0) throw new Error('database unreachable');
          await b.usage.add(days);
        },
        totals: (date) => b.usage.totals(date),
        history: (keyId, days, now) => b.usage.history(keyId, days, now),
      };
      const one = new UsageTracker({ ledger: a.usage, flushMs: 10 });
      const two = new UsageTracker({ ledger: flaky, flushMs: 10_000 });
      await Promise.all([one.load(), two.load()]);
      for (let i = 0; i < 50; i++) {
        one.addAudioIn('k', 3_202); // not a multiple of 32: ms are fractional, bytes stay exact
        two.addAudioIn('k', 1_602);
        one.add('k', { prompt_tokens: 7, completion_tokens: 3, sessions: 1 });
        two.add('k', { prompt_tokens: 11, tts_chars: 5, turns: 1 });
        one.error('k', 'rate_limited');
        two.error('k', 'quota_exceeded');
        if (i % 10 === 0) await sleep(15);
      }
      await assert.doesNotReject(two.flush(), 'a failed flush does not throw');
      assert.equal(two.audioBytesToday('k') >= 50 * 1_602, true, 'kept counting what failed');
      await Promise.all([one.close(), two.close()]);
      const [day] = await a.usage.history('k', 1);
      assert.equal(day?.audio_in_ms, (50 * (3_202 + 1_602)) / 32);
      assert.equal(day?.prompt_tokens, 50 * 18);
      assert.equal(day?.completion_tokens, 50 * 3);
      assert.equal(day?.tts_chars, 250);
      assert.equal(day?.sessions, 50);
      assert.equal(day?.turns, 50);
      assert.deepEqual(day?.errors, { rate_limited: 50, quota_exceeded: 50 });
      // A new tracker (a restarted relay) starts from the stored totals.
      const restarted = new UsageTracker({ ledger: a.usage });
      await restarted.load();
      assert.equal(restarted.audioBytesToday('k'), 50 * (3_202 + 1_602));
      assert.equal(restarted.tokensToday('k'), 50 * 21);
      await restarted.close();
      await Promise.all([a.close(), b.close()]);
    });

    test('a conversation resumes on a second relay sharing the database, and not after its TTL', async () => {
      const where = await place(engine);
      const upstream = createFakeUpstream(upstreamScript);
      const served = await upstream.listen(0);
      const storageA = await openStorage(where);
      const storageB = await openStorage(where);
      const ttl = 1_500;
      const { secret } = await storageA.keys.create({ origins: [ORIGIN] });
      const limits = { conversationTtlMs: ttl };
      const a = await relayOn(storageA, served.url, { limits });
      const b = await relayOn(storageB, served.url, { limits });
      try {
        const first = await talkWith(a.url, secret);
        const id = first.of('ready')[0]?.conversation_id as string;
        first.send({ type: 'text', text: 'one' });
        await first.next('done');
        first.close();
        await first.closed;
        await until(() => storageA.conversations(ttl).waiting === 0, 'the write');

        const second = await talkWith(b.url, secret, id);
        const ready = second.of('ready')[0];
        assert.equal(ready?.resumed, true);
        assert.equal(ready?.conversation_id, id);
        assert.deepEqual(ready?.history, [
          { role: 'user', text: 'one' },
          { role: 'assistant', text: 'You said one.' },
        ]);
        second.close();
        await second.closed;

        await sleep(ttl + 300);
        const late = await talkWith(b.url, secret, id);
        assert.equal(late.of('ready')[0]?.resumed, false, 'expired: a new conversation');
        assert.notEqual(late.of('ready')[0]?.conversation_id, id);
        late.close();
        assert.ok((await storageB.purge()).conversations >= 1, 'the expired one is purged');
      } finally {
        await Promise.all([a.relay.close(), b.relay.close()]);
        await Promise.all([storageA.close(), storageB.close()]);
        await served.close();
      }
    });
  });
}

describe('a relay restarted on the same SQLite file', () => {
  test('keeps the daily quota and refuses a token used before the restart', async () => {
    const dataDir = await tempDir();
    const upstream = createFakeUpstream(upstreamScript);
    const served = await upstream.listen(0);
    const limits = { llmTokensPerKeyPerDay: 1_000 };
    try {
      const storage = await openStorage({ dataDir });
      const { record, secret } = await storage.keys.create({ origins: [ORIGIN] });
      const first = await relayOn(storage, served.url, { limits });
      const used = await createSession(first.url, { key: secret, origin: ORIGIN });
      const talk = await connectTalk(used.body.ws_url as string, used.body.token as string, ORIGIN);
      assert.ok(talk instanceof TalkClient);
      talk.close();
      await talk.closed;
      first.relay.usage.add(record.id, { prompt_tokens: 1_000 });
      await first.relay.close();
      await storage.close();

      // No storage passed: the relay opens <dataDir>/voicebot.db itself.
      const second = createRelay({
        dataDir,
        logger: captureLogs().logger,
        tokenSecret: TOKEN_SECRET,
        limits,
      });
      const { url } = await second.listen(0);
      try {
        const refused = await createSession(url, { key: secret, origin: ORIGIN });
        assert.equal(refused.status, 429);
        assert.equal(refused.body.error?.code, 'quota_exceeded');
        const again = await connectTalk(
          (used.body.ws_url as string).replace(/:\d+/, `:${new URL(url).port}`),
          used.body.token as string,
          ORIGIN,
        );
        assert.ok(!(again instanceof TalkClient));
        assert.equal(again.refused, 429, 'the quota is checked before the token');
        const [day] = await second.storage.usage.history(record.id, 1);
        assert.equal(day?.prompt_tokens, 1_000);
      } finally {
        await second.close();
      }
    } finally {
      await served.close();
    }
  });

  test('a used token is refused after the restart', async () => {
    const dataDir = await tempDir();
    const upstream = createFakeUpstream(upstreamScript);
    const served = await upstream.listen(0);
    try {
      const storage = await openStorage({ dataDir });
      const { secret } = await storage.keys.create({ origins: [ORIGIN] });
      const first = await relayOn(storage, served.url);
      const used = await createSession(first.url, { key: secret, origin: ORIGIN });
      const talk = await connectTalk(used.body.ws_url as string, used.body.token as string, ORIGIN);
      assert.ok(talk instanceof TalkClient);
      talk.close();
      await first.relay.close();
      await storage.close();

      const reopened = await openStorage({ dataDir });
      const second = await relayOn(reopened, served.url);
      try {
        const again = await connectTalk(
          `${second.url.replace('http', 'ws')}/v1/talk`,
          used.body.token as string,
          ORIGIN,
        );
        assert.ok(!(again instanceof TalkClient));
        assert.equal(again.refused, 401, 'token_reused');
      } finally {
        await second.relay.close();
        await reopened.close();
      }
    } finally {
      await served.close();
    }
  });
});

describe('PostgreSQL going away while the relay runs', () => {
  test('health turns 503, new sessions get storage_unavailable, the open turn goes on, and it all recovers', async () => {
    const databaseUrl = await freshPostgresUrl();
    const h = await startRelay({ databaseUrl, pingMs: 200, upstream: upstreamScript });
    let stopped = false;
    try {
      assert.deepEqual(await (await fetch(`${h.url}/healthz`)).json(), {
        ok: true,
        database: 'ok',
      });
      assert.equal((await fetch(`${h.url}/readyz`)).status, 200);
      const talk = await openStartedTalk(h, { input: 'text', output: 'text' });
      const id = talk.of('ready')[0]?.conversation_id as string;

      await postgres.stop();
      stopped = true;
      await until(async () => (await fetch(`${h.url}/healthz`)).status === 503, 'healthz 503');
      const health = await (await fetch(`${h.url}/healthz`)).json();
      assert.deepEqual(health, { ok: false, database: 'unreachable' });
      assert.ok(!JSON.stringify(health).includes(postgres.password));
      assert.equal((await fetch(`${h.url}/readyz`)).status, 503);
      const refused = await createSession(h.url, { key: h.key, origin: ORIGIN });
      assert.equal(refused.status, 503);
      assert.equal(refused.body.error?.code, 'storage_unavailable');
      assert.equal(refused.headers.get('retry-after'), '5');

      // The socket that was open keeps working; its conversation write waits for the database.
      talk.send({ type: 'text', text: 'during the outage' });
      assert.equal((await talk.next('done')).text, 'You said during the outage.');

      await postgres.start();
      stopped = false;
      await until(async () => (await fetch(`${h.url}/healthz`)).status === 200, 'healthz 200');
      assert.equal((await fetch(`${h.url}/readyz`)).status, 200);
      const conversations = h.storage.conversations(DEFAULT_LIMITS.conversationTtlMs);
      await until(() => conversations.waiting === 0, 'the conversation write', 15_000);
      talk.close();
      await talk.closed;

      const resumed = await openStartedTalk(h, {
        input: 'text',
        output: 'text',
        conversation_id: id,
      });
      assert.equal(resumed.of('ready')[0]?.resumed, true);
      assert.deepEqual(resumed.of('ready')[0]?.history, [
        { role: 'user', text: 'during the outage' },
        { role: 'assistant', text: 'You said during the outage.' },
      ]);
      resumed.close();
      assert.ok(
        !h.logs.some((line) => line.includes(postgres.password)),
        'the password is never logged',
      );
    } finally {
      if (stopped) await postgres.start();
      await h.close();
    }
  });
});
