/**
 * A relay whose shared state is Redis loses Redis while a visitor talks: new sessions get a typed
 * 503 and the health endpoints say why, the conversation in progress finishes its turn, and the
 * relay recovers by itself when Redis is back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_LIMITS, redisState } from '@voice-bot/relay';
import { startRedis, type TestRedis } from './support/redis.js';
import {
  ORIGIN,
  createSession,
  openStartedTalk,
  startRelay,
  type RelayHarness,
} from './support/relay.js';

async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  let value = await read();
  while (!ok(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    value = await read();
  }
  return value;
}

describe('a relay on Redis', () => {
  let redis: TestRedis;
  let h: RelayHarness;

  before(async () => {
    redis = await startRedis();
    h = await startRelay({
      sharedState: (storage) =>
        redisState({
          url: redis.url,
          conversations: storage.conversations(DEFAULT_LIMITS.conversationTtlMs),
          ledger: storage.usage,
        }),
    });
  });
  after(async () => {
    await h?.close();
    await redis?.close();
  });

  test('Redis goes away: new sessions 503, the open conversation finishes its turn, then all recovers', async () => {
    const talk = await openStartedTalk(h, { input: 'text', output: 'text' });
    assert.equal((await fetch(`${h.url}/readyz`)).status, 200);

    await redis.kill();
    const health = await eventually(
      () => fetch(`${h.url}/healthz`),
      (res) => res.status === 503,
    );
    assert.equal(health.status, 503);
    assert.deepEqual(await health.json(), { ok: false, database: 'ok', state: 'unreachable' });
    assert.equal((await fetch(`${h.url}/readyz`)).status, 503);

    const refused = await createSession(h.url, { key: h.key, origin: ORIGIN });
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error?.code, 'storage_unavailable');
    assert.ok(Number(refused.headers.get('retry-after')) > 0);

    // The socket that was open keeps talking: usage is counted locally and synced later.
    talk.send({ type: 'text', text: 'echo:are you still there' });
    const done = await talk.next('done', () => true, { timeoutMs: 10_000 });
    assert.ok(done);
    assert.match(
      talk
        .of('text_delta')
        .map((m) => m.delta)
        .join(''),
      /are you still there/,
    );

    await redis.restart();
    const back = await eventually(
      () => createSession(h.url, { key: h.key, origin: ORIGIN }),
      (res) => res.status === 201,
    );
    assert.equal(back.status, 201);
    assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${h.url}/readyz`)).status, 200);
    talk.close();
    const again = await openStartedTalk(h, { input: 'text', output: 'text' });
    again.send({ type: 'text', text: 'echo:hello again' });
    await again.next('done');
    again.close();
  });
});
