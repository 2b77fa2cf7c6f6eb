/**
 * The conversation store's writer on both engines (SQLite in a temp dir, a real PostgreSQL started
 * for this file): snapshots queued by `touch` are written in batches, one transaction per batch,
 * through an upsert compiled once; the newest snapshot of each conversation is what a second
 * storage on the same database reads.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { openStorage, type StorageOptions } from '@voice-bot/relay';
import type { Conversation } from '../packages/relay/src/conversation/conversations.js';
import { startPostgres, type PostgresServer } from './support/postgres.js';

let postgres: PostgresServer;
const dirs: string[] = [];
before(async () => {
  postgres = await startPostgres();
});
after(async () => {
  await postgres?.close();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

let databases = 0;
async function place(engine: 'sqlite' | 'postgres'): Promise<StorageOptions> {
  const dataDir = await mkdtemp(join(tmpdir(), 'voicebot-convstore-'));
  dirs.push(dataDir);
  if (engine === 'sqlite') return { dataDir };
  const name = `c_${process.pid}_${++databases}`;
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(postgres.url);
  url.pathname = `/${name}`;
  return { dataDir, databaseUrl: url.toString() };
}

const TTL = 60_000;
const until = async (check: () => boolean, what: string) => {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`conversation writes on ${engine}`, () => {
    test('150 conversations touched at once are all written, each with its newest messages', async () => {
      const where = await place(engine);
      const writer = await openStorage(where);
      const reader = await openStorage(where);
      try {
        const store = writer.conversations(TTL);
        const made: Conversation[] = [];
        for (let i = 0; i < 150; i++) {
          const { conversation } = await store.open(undefined, 'key_a', 'bot');
          conversation.messages.push({ role: 'user', text: `hello ${i}` });
          conversation.pageMetadata = { n: i };
          store.touch(conversation);
          made.push(conversation);
        }
        // Touched again while the first batch is being written: the newer snapshot must win.
        for (const conversation of made.slice(0, 70)) {
          conversation.messages.push({ role: 'assistant', text: `reply ${conversation.id}` });
          store.touch(conversation);
        }
        await until(() => store.waiting === 0, 'the writes');
        const other = reader.conversations(TTL);
        for (const [i, conversation] of made.entries()) {
          const opened = await other.open(conversation.id, 'key_a', 'bot');
          assert.equal(opened.resumed, true, `conversation ${i} was written`);
          const expected = [{ role: 'user', text: `hello ${i}` }];
          if (i < 70) expected.push({ role: 'assistant', text: `reply ${conversation.id}` });
          assert.deepEqual(opened.conversation.messages, expected);
          assert.deepEqual(opened.conversation.pageMetadata, { n: i });
        }
        const count = await reader.db
          .selectFrom('conversations')
          .select(({ fn }) => fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow();
        assert.equal(Number(count.n), 150);
      } finally {
        await Promise.all([writer.close(), reader.close()]);
      }
    });

    test('a conversation id is only updated by the key and bot that created it', async () => {
      const where = await place(engine);
      const storage = await openStorage(where);
      try {
        const store = storage.conversations(TTL);
        const { conversation } = await store.open(undefined, 'key_a', 'bot');
        conversation.messages.push({ role: 'user', text: 'mine' });
        store.touch(conversation);
        await until(() => store.waiting === 0, 'the first write');
        // Another key writing the same id (it cannot resume it: `open` gives it a new one, but
        // a forged snapshot must still not overwrite the row).
        store.touch({
          ...conversation,
          keyId: 'key_b',
          messages: [{ role: 'user', text: 'theirs' }],
        });
        await until(() => store.waiting === 0, 'the second write');
        const row = await storage.db
          .selectFrom('conversations')
          .selectAll()
          .where('id', '=', conversation.id)
          .executeTakeFirstOrThrow();
        assert.equal(row.key_id, 'key_a');
        assert.deepEqual(JSON.parse(row.messages), [{ role: 'user', text: 'mine' }]);
      } finally {
        await storage.close();
      }
    });
  });
}
