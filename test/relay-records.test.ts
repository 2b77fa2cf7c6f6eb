/**
 * Conversation records and webhooks end to end, through the real relay socket with the fake
 * provider, on SQLite and on PostgreSQL: turns recorded with redaction, tool calls and a handoff,
 * feedback, a conversation resumed within its TTL (one end, not two), the end-of-conversation
 * analysis, `conversation.ended` delivered to a receiver that fails twice (signature checked with
 * the README's snippet), the admin API (list, filters, export, deliveries), retention expiry and
 * erasure.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { structuredReply, type ChatRequest, type ChatScript } from '@voice-bot/fake-provider';
import { defineTool, type BotConfig } from '@voice-bot/relay';
import { startPostgres, type PostgresServer } from './support/postgres.js';
import {
  ORIGIN,
  TalkClient,
  connectTalk,
  createSession,
  startRelay,
  type RelayHarness,
} from './support/relay.js';
import {
  readmeVerifier,
  startReceiver,
  type VerifyWebhook,
  type WebhookReceiver,
} from './support/webhooks.js';

const ADMIN = 'admin-token-for-records-tests-0123456789';
const SECRET = 'hook-secret-0123456789abcdef';
const TTL_MS = 1_000;
const DAY_MS = 86_400_000;

const clinic: BotConfig = {
  id: 'clinic',
  name: 'Clinic',
  systemPrompt: 'You are the front desk.',
  tools: ['handoff'],
  records: { transcripts: true, retentionDays: 30, redact: ['email', 'phone', 'card'] },
  extract: {
    type: 'object',
    properties: {
      name: { type: 'string', description: "the visitor's name" },
      preferred_day: { type: 'string' },
    },
  },
  feedback: true,
};
const plain: BotConfig = { id: 'plain', name: 'Plain', systemPrompt: 'Hi.' };

/** A stand-in for the built-in handoff tool (same name, so the record marks the handoff). */
const handoff = defineTool({
  name: 'handoff',
  description: 'Hand the conversation to a person.',
  parameters: {
    type: 'object',
    properties: { reason: { type: 'string' }, urgency: { type: 'string' } },
    required: ['reason'],
  },
  execute: () => ({ ok: true }),
});

function lastMessage(req: ChatRequest): { role?: string; content?: unknown } {
  return (req.messages[req.messages.length - 1] ?? {}) as { role?: string; content?: unknown };
}

/** Echoes, calls `handoff` when asked for a person, and answers the analysis (structured output). */
function chat(req: ChatRequest): ChatScript {
  const structured = structuredReply(req.body);
  if (structured !== undefined) return { content: structured };
  const last = lastMessage(req);
  if (last.role === 'tool') return { content: 'A colleague will call you back.' };
  const text = String(last.content ?? '');
  if (req.tools && /human|person/i.test(text))
    return {
      toolCalls: [
        {
          name: 'handoff',
          arguments: JSON.stringify({ reason: 'wants a person', urgency: 'high' }),
        },
      ],
    };
  return { content: `Noted: ${text}` };
}

async function talk(
  h: RelayHarness,
  bot: string,
  conversationId?: string,
  key = h.key,
): Promise<TalkClient> {
  const session = await createSession(h.url, { key, origin: ORIGIN, bot });
  assert.equal(session.status, 201, JSON.stringify(session.body));
  const client = await connectTalk(session.body.ws_url as string, session.body.token, ORIGIN);
  assert.ok(client instanceof TalkClient);
  client.start({
    input: 'text',
    output: 'text',
    ...(conversationId ? { conversation_id: conversationId } : {}),
  });
  await client.next('ready');
  return client;
}

async function say(client: TalkClient, text: string): Promise<number> {
  const from = client.messages.length;
  client.send({ type: 'text', text });
  const done = await client.next('done', () => true, { from, timeoutMs: 10_000 });
  return done.turn_id;
}

async function admin(h: RelayHarness, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${h.url}/admin${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN}`, ...(init.headers ?? {}) },
  });
}

async function json<T>(response: Response): Promise<T> {
  assert.ok(response.ok, `${response.status} ${await response.clone().text()}`);
  return (await response.json()) as T;
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface RecordJson {
  id: string;
  status: string;
  handoff: boolean;
  handoff_detail: { reason?: string; urgency?: string } | null;
  turn_count: number;
  feedback: { up: number; down: number };
  summary: string | null;
  sentiment: string | null;
  urgency: string | null;
  extracted: Record<string, unknown> | null;
  turns?: {
    session_id: string;
    turn_id: number;
    user: string | null;
    assistant: string | null;
    tools: { name: string; ok: boolean; args: unknown }[];
    metrics: { total_ms: number } | null;
    feedback: { rating: string; comment: string | null; at: string } | null;
  }[];
}

function suite(engine: 'sqlite' | 'postgres') {
  describe(`records and webhooks (${engine})`, () => {
    let pg: PostgresServer | undefined;
    let h: RelayHarness;
    let receiver: WebhookReceiver;
    let verify: VerifyWebhook;

    before(async () => {
      if (engine === 'postgres') pg = await startPostgres();
      receiver = await startReceiver(2);
      verify = await readmeVerifier();
      h = await startRelay({
        upstream: { chat },
        ...(pg ? { databaseUrl: pg.url } : {}),
        relay: {
          adminToken: ADMIN,
          bots: [clinic, plain],
          tools: [handoff],
          limits: { conversationTtlMs: TTL_MS },
          toolAllowHosts: ['127.0.0.1'],
          webhooks: [
            { url: receiver.url, events: ['conversation.ended'], secretEnv: 'HOOK_SECRET' },
          ],
          webhookEnv: { HOOK_SECRET: SECRET },
          recordsTiming: {
            sweepMs: 100,
            webhookPollMs: 100,
            webhookRetry: { baseMs: 50, maxMs: 200, giveUpAfterMs: 60_000 },
          },
        },
      });
    });

    after(async () => {
      await h?.close();
      await receiver?.close();
      await pg?.close();
    });

    test('a conversation is recorded (redacted), ends once after its TTL, and its webhook arrives signed after two failures', async () => {
      const first = await talk(h, 'clinic');
      const ready = first.of('ready')[0];
      assert.ok(ready);
      assert.ok(ready?.features?.includes('feedback'));
      const conversationId = ready.conversation_id;
      const turn1 = await say(
        first,
        'Hello, my name is Jane Doe, mail jane@example.com or call +1 555 123 4567. I have urgent tooth pain.',
      );
      const turn2 = await say(first, 'Can I talk to a human please?');
      first.send({
        type: 'feedback',
        turn_id: turn1,
        rating: 'up',
        comment: 'Great, write to jane@example.com',
      });
      first.send({ type: 'feedback', turn_id: 99, rating: 'down' });
      const unknown = await first.next('error', (e) => e.code === 'unknown_turn');
      assert.equal(unknown.fatal, false);
      first.close();
      await first.closed;

      // Resumed within the TTL: the same conversation goes on, and ends only once.
      const second = await talk(h, 'clinic', conversationId);
      assert.equal(second.of('ready')[0]?.resumed, true);
      await say(second, 'Tuesday would suit me, card 4111 1111 1111 1111.');
      second.close();
      await second.closed;

      const delivered = await receiver.waitFor(1, (r) => r.status === 204);
      const attempts = receiver.received.filter(
        (r) => r.headers['webhook-id'] === delivered[0]?.headers['webhook-id'],
      );
      assert.deepEqual(
        attempts.map((r) => r.status),
        [500, 500, 204],
      );
      for (const attempt of attempts) assert.ok(verify(SECRET, attempt.headers, attempt.body));
      assert.ok(
        !verify('not-the-secret-0123456789', attempts[2]?.headers ?? {}, attempts[2]?.body ?? ''),
      );
      const event = JSON.parse(delivered[0]?.body ?? '{}') as {
        type: string;
        data: RecordJson & { conversation_id: string };
      };
      assert.equal(event.type, 'conversation.ended');
      assert.equal(event.data.conversation_id, conversationId);
      assert.equal(event.data.turn_count, 3);
      assert.equal(event.data.urgency, 'high');
      assert.equal(event.data.summary, 'Hello, my name is Jane Doe, mail [email] or call [phone].');
      assert.deepEqual(event.data.extracted, { name: 'Jane Doe', preferred_day: 'tuesday' });
      assert.equal(event.data.handoff, true);

      const record = await json<RecordJson>(await admin(h, `/conversations/${conversationId}`));
      assert.equal(record.status, 'ended');
      assert.deepEqual(record.handoff_detail, { reason: 'wants a person', urgency: 'high' });
      assert.deepEqual(record.feedback, { up: 1, down: 0 });
      const turns = record.turns ?? [];
      assert.equal(turns.length, 3);
      assert.equal(
        turns[0]?.user,
        'Hello, my name is Jane Doe, mail [email] or call [phone]. I have urgent tooth pain.',
      );
      assert.match(turns[0]?.assistant ?? '', /^Noted: .*\[email\]/);
      assert.equal(turns[0]?.feedback?.rating, 'up');
      assert.equal(turns[0]?.feedback?.comment, 'Great, write to [email]');
      assert.equal(turns[1]?.turn_id, turn2);
      assert.deepEqual(
        turns[1]?.tools.map((t) => [t.name, t.ok]),
        [['handoff', true]],
      );
      assert.equal(turns[1]?.assistant, 'A colleague will call you back.');
      assert.equal(turns[2]?.user, 'Tuesday would suit me, card [card].');
      assert.notEqual(turns[2]?.session_id, turns[0]?.session_id);
      for (const turn of turns) assert.equal(typeof turn.metrics?.total_ms, 'number');

      // Nothing of what was redacted reached the database.
      const db = h.storage.db;
      const stored = JSON.stringify([
        await db.selectFrom('conversation_records').selectAll().execute(),
        await db.selectFrom('conversation_record_turns').selectAll().execute(),
      ]);
      for (const secret of ['jane@example.com', '555 123 4567', '4111 1111 1111 1111'])
        assert.ok(!stored.includes(secret), secret);

      const deliveries = await json<{
        deliveries: { status: string; attempts: number; log: { status?: number }[] }[];
      }>(await admin(h, `/webhooks/deliveries?conversation=${conversationId}`));
      assert.equal(deliveries.deliveries.length, 1);
      assert.equal(deliveries.deliveries[0]?.status, 'delivered');
      assert.deepEqual(
        deliveries.deliveries[0]?.log.map((a) => a.status),
        [500, 500, 204],
      );

      // Filters and export.
      const list = async (query: string) =>
        (
          await json<{ conversations: RecordJson[] }>(await admin(h, `/conversations?${query}`))
        ).conversations.map((c) => c.id);
      assert.deepEqual(await list('urgency=high&handoff=true&feedback=up&bot=clinic'), [
        conversationId,
      ]);
      assert.deepEqual(await list('urgency=low'), []);
      assert.deepEqual(
        await list(`key=${h.keyId}&from=${new Date(Date.now() - 60_000).toISOString()}`),
        [conversationId],
      );
      assert.equal((await admin(h, '/conversations?sentiment=furious')).status, 400);
      const exported = await admin(h, '/conversations/export?bot=clinic');
      assert.match(exported.headers.get('content-type') ?? '', /ndjson/);
      const lines = (await exported.text())
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as RecordJson);
      assert.deepEqual(
        lines.map((l) => [l.id, l.turns?.length]),
        [[conversationId, 3]],
      );
    });

    test('feedback is refused for a bot without records', async () => {
      const client = await talk(h, 'plain');
      assert.ok(!client.of('ready')[0]?.features?.includes('feedback'));
      const turn = await say(client, 'hello');
      client.send({ type: 'feedback', turn_id: turn, rating: 'down' });
      await client.next('error', (e) => e.code === 'feedback_unavailable');
      client.close();
      await client.closed;
      assert.equal((await admin(h, '/conversations?bot=plain')).ok, true);
      assert.deepEqual(
        (await json<{ conversations: unknown[] }>(await admin(h, '/conversations?bot=plain')))
          .conversations,
        [],
      );
    });

    test('erasure deletes the record, the conversation state and its webhook rows', async () => {
      const client = await talk(h, 'clinic');
      const conversationId = client.of('ready')[0]?.conversation_id as string;
      await say(client, 'Please forget me.');
      client.close();
      await client.closed;
      await until('the conversation to end', async () => {
        const rows = await h.storage.db
          .selectFrom('webhook_outbox')
          .select('status')
          .where('conversation_id', '=', conversationId)
          .execute();
        return rows.length > 0 ? rows : undefined;
      });
      const erased = await json<{ deleted: Record<string, number> }>(
        await admin(h, `/conversations/${conversationId}`, { method: 'DELETE' }),
      );
      assert.deepEqual(erased.deleted, { records: 1, conversations: 1, webhooks: 1 });
      assert.equal((await admin(h, `/conversations/${conversationId}`)).status, 404);
      const turns = await h.storage.db
        .selectFrom('conversation_record_turns')
        .select('seq')
        .where('conversation_id', '=', conversationId)
        .execute();
      assert.deepEqual(turns, []);
      const again = await talk(h, 'clinic', conversationId);
      assert.equal(again.of('ready')[0]?.resumed, false);
      const silent = again.of('ready')[0]?.conversation_id as string;
      again.close();
      await again.closed;
      // A conversation in which the visitor said nothing is not kept once it ends.
      const silentRecord = () =>
        h.storage.db
          .selectFrom('conversation_records')
          .select('id')
          .where('id', '=', silent)
          .executeTakeFirst();
      await until(
        'the silent conversation to be recorded',
        async () => ((await silentRecord()) ? true : undefined),
        3_000,
      ).catch(() => undefined); // it may end (and go) before the first look
      await until('the silent conversation to be dropped', async () =>
        (await silentRecord()) ? undefined : true,
      );
      assert.equal(receiver.received.filter((r) => r.body.includes(silent)).length, 0);
    });

    test('records expire after their retention', async () => {
      const { conversations } = await json<{ conversations: RecordJson[] }>(
        await admin(h, '/conversations?status=ended'),
      );
      assert.ok(conversations.length >= 1);
      await h.relay.records.sweep(Date.now() + 29 * DAY_MS);
      const kept = await json<{ conversations: RecordJson[] }>(
        await admin(h, '/conversations?status=ended'),
      );
      assert.equal(kept.conversations.length, conversations.length);
      await h.relay.records.sweep(Date.now() + 31 * DAY_MS);
      const left = await json<{ conversations: RecordJson[] }>(
        await admin(h, '/conversations?status=ended'),
      );
      assert.deepEqual(left.conversations, []);
      assert.deepEqual(
        await h.storage.db.selectFrom('conversation_record_turns').select('seq').execute(),
        await h.storage.db
          .selectFrom('conversation_record_turns')
          .select('seq')
          .where(
            'conversation_id',
            'not in',
            conversations.map((c) => c.id),
          )
          .execute(),
      );
    });
  });
}

suite('sqlite');
suite('postgres');

describe('records: a revoked key', () => {
  let h: RelayHarness;
  before(async () => {
    h = await startRelay({
      upstream: { chat },
      relay: {
        adminToken: ADMIN,
        bots: [clinic],
        tools: [handoff],
        // Both far longer than the test: only the revocation can end a conversation in time.
        limits: { conversationTtlMs: 30 * 60_000 },
        recordsTiming: { sweepMs: 10 * 60_000, webhookPollMs: 100 },
      },
    });
  });
  after(async () => h?.close());

  test('its open conversation ends when the revocation closes the socket, not after the TTL', async () => {
    const client = await talk(h, 'clinic');
    const conversationId = client.of('ready')[0]?.conversation_id as string;
    await say(client, 'I would like an appointment on Friday.');
    const record = async () => json<RecordJson>(await admin(h, `/conversations/${conversationId}`));
    assert.equal((await record()).status, 'open');
    await json(await admin(h, `/keys/${h.keyId}/revoke`, { method: 'POST' }));
    assert.equal((await client.closed).code, 4003);
    const ended = await until('the conversation to end', async () => {
      const current = await record();
      return current.status === 'ended' ? current : undefined;
    });
    assert.equal(ended.turn_count, 1);
    assert.ok(ended.summary, 'the end-of-conversation analysis ran');
  });

  /** A conversation of a new key, said one thing to, its socket closed: waiting to be resumed. */
  async function waiting(): Promise<{ keyId: string; record: () => Promise<RecordJson> }> {
    const created = await h.keys.create({ origins: [ORIGIN], label: 'revoked later' });
    const client = await talk(h, 'clinic', undefined, created.secret);
    const conversationId = client.of('ready')[0]?.conversation_id as string;
    await say(client, 'Please call me back on Monday.');
    client.close();
    await client.closed;
    const record = async () => json<RecordJson>(await admin(h, `/conversations/${conversationId}`));
    await until('the socket close to be written', async () => {
      const ends = await h.storage.db
        .selectFrom('conversation_records')
        .select('ends_at')
        .where('id', '=', conversationId)
        .executeTakeFirst();
      return Number(ends?.ends_at) > Date.now() + 60_000 ? true : undefined;
    });
    assert.equal((await record()).status, 'open');
    return { keyId: created.record.id, record };
  }

  const ended = (record: () => Promise<RecordJson>) =>
    until(
      'the conversation to end',
      async () => {
        const current = await record();
        return current.status === 'ended' ? current : undefined;
      },
      5_000,
    );

  test('revoked through the admin API, its conversation waiting to be resumed ends at once', async () => {
    const { keyId, record } = await waiting();
    await json(await admin(h, `/keys/${keyId}/revoke`, { method: 'POST' }));
    const done = await ended(record);
    assert.equal(done.turn_count, 1);
    assert.ok(done.summary, 'the end-of-conversation analysis ran');
  });

  test('revoked by another process (the CLI), its waiting conversation ends at the next sweep', async () => {
    const { keyId, record } = await waiting();
    assert.equal(await h.keys.revoke(keyId), true);
    await h.relay.records.sweep();
    await ended(record);
  });

  test('a sweep asked for while one runs is not lost: it runs after it', async () => {
    const { record } = await waiting();
    const now = Date.now();
    const running = h.relay.records.sweep(now);
    // Asked with a time past the conversation's TTL: only this second sweep can end it.
    await h.relay.records.sweep(now + 31 * 60_000);
    await running;
    await ended(record);
  });
});
