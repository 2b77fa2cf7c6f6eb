/**
 * Redis going away and coming back (a killed redis-server, empty when it restarts), a ledger that
 * fails, and starting against a Redis that is not there.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, startRedis, type TestRedis } from '../../../../../test/support/redis.js';
import { MemoryConversationStore } from '../../conversation/conversations.js';
import type { UsageLedger } from '../../policy/usage.js';
import { MemoryLedger } from './memory-ledger.fixture.js';
import { connectRedis, redisState, SharedStateUnavailableError, type RedisState } from './index.js';

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.close();
});

/** Relays whose timers do not run during the test: syncs and ledger writes happen when told. */
async function manualRelays(
  t: { after(fn: () => Promise<void>): void },
  ledger: UsageLedger,
  prefix: string,
): Promise<[RedisState, RedisState]> {
  const make = (relayId: string) =>
    redisState({
      url: redis.url,
      prefix,
      relayId,
      ledger,
      usageSyncMs: 3_600_000,
      ledgerFlushMs: 3_600_000,
      maxReconnectDelayMs: 200,
      conversations: new MemoryConversationStore(60_000, 100),
    });
  const relays = [await make('A'), await make('B')] as [RedisState, RedisState];
  t.after(async () => {
    await Promise.all(relays.map((relay) => relay.close()));
  });
  return relays;
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await sleep(20);
  }
}

/** How long `promise` takes to settle, and its error. */
async function failure(promise: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = Date.now();
  try {
    await promise;
  } catch (error) {
    return { ms: Date.now() - started, error };
  }
  throw new Error('expected a failure');
}

test('a failed ledger write is retried later, never counted twice', async (t) => {
  const ledger = new MemoryLedger();
  const [a] = await manualRelays(t, ledger, 'ledger:');
  a.usage.addAudioIn('k', 3200);
  ledger.failing = true;
  await assert.rejects(a.usage.flushLedger(), /database unreachable/);
  a.usage.addAudioIn('k', 320);
  ledger.failing = false;
  await a.usage.flushLedger();
  await a.usage.flushLedger();
  assert.equal(ledger.writes.length, 1, 'nothing new: nothing written');
  a.usage.add('k', { turns: 1 });
  await a.close();
  assert.equal(ledger.today('k').audio_in_ms, 3520 / 32);
  assert.equal(ledger.today('k').turns, 1);
  assert.equal(ledger.writes.length, 2, 'close writes what is left');
});

test('while Redis is down calls fail fast; after its restart the quotas are seeded from the ledger', async (t) => {
  const ledger = new MemoryLedger();
  const [a, b] = await manualRelays(t, ledger, 'outage:');
  a.usage.addAudioIn('k', 32_000);
  b.usage.addAudioIn('k', 3_200);
  b.usage.add('k', { prompt_tokens: 500, completion_tokens: 20 });
  await a.usage.sync();
  await b.usage.sync();
  await a.usage.sync();
  assert.equal(a.usage.audioBytesToday('k'), 35_200);
  await Promise.all([a.usage.flushLedger(), b.usage.flushLedger()]);
  assert.equal(a.status().ok, true);

  await redis.kill();
  await until(() => !a.status().ok && !b.status().ok, 'both relays see Redis gone');
  assert.deepEqual(a.status(), { ok: false, detail: 'redis unreachable' });
  for (const call of [
    a.claimToken('jti', Date.now() / 1000 + 60),
    a.slots.tryReserve('k', 3),
    b.rateLimiter({ keyPrefix: 'sessions-ip', points: 10, durationSec: 60 }).consume('1.2.3.4'),
    a.usage.sync(),
  ]) {
    const { ms, error } = await failure(call);
    assert.ok(error instanceof SharedStateUnavailableError, String(error));
    assert.ok(ms < 500, `failed in ${ms} ms`);
  }

  // Counted while Redis is down: some of it reaches the ledger before Redis is back, some after.
  a.usage.addAudioIn('k', 640);
  b.usage.add('k', { tts_chars: 12 });
  await Promise.all([a.usage.flushLedger(), b.usage.flushLedger()]);
  a.usage.addAudioIn('k', 64);
  b.usage.add('k', { prompt_tokens: 5 });
  assert.equal(a.usage.audioBytesToday('k'), 35_200 + 704, 'quotas keep counting locally');

  await redis.restart();
  await until(() => a.status().ok && b.status().ok, 'both relays reconnect', 5000);
  await b.usage.sync();
  await a.usage.sync();
  await b.usage.sync();
  for (const relay of [a, b]) {
    assert.equal(relay.usage.audioBytesToday('k'), 35_200 + 704);
    assert.equal(relay.usage.tokensToday('k'), 525);
    assert.equal(relay.usage.ttsCharsToday('k'), 12);
  }
  assert.equal(await a.claimToken('jti', Date.now() / 1000 + 60), true, 'calls work again');

  await Promise.all([a.close(), b.close()]);
  const day = ledger.today('k');
  assert.equal(day.audio_in_ms, (35_200 + 704) / 32);
  assert.equal(day.prompt_tokens, 505);
  assert.equal(day.completion_tokens, 20);
  assert.equal(day.tts_chars, 12);
});

test('revocations reach the other relay again after Redis restarted', async (t) => {
  const [a, b] = await manualRelays(t, new MemoryLedger(), 'revoke:');
  await redis.restart();
  await until(() => a.status().ok && b.status().ok, 'both relays reconnect', 5000);
  const heard = new Promise<string>((resolve) => b.onRevoked(resolve));
  // The subscriber may reconnect a moment after the command connection.
  const announce = setInterval(() => a.announceRevoked('key-1'), 100);
  try {
    assert.equal(await Promise.race([heard, sleep(3000).then(() => 'timeout')]), 'key-1');
  } finally {
    clearInterval(announce);
  }
});

test('starting against a Redis that is not there fails quickly with host:port, never the password', async () => {
  const port = await freePort();
  const url = `redis://relay:s3cret-pw@127.0.0.1:${port}`;
  const started = Date.now();
  const error = await redisState({
    url,
    timeoutMs: 1000,
    conversations: new MemoryConversationStore(60_000, 100),
  }).then(
    () => undefined,
    (reason: unknown) => reason,
  );
  assert.ok(error instanceof Error);
  assert.match(error.message, new RegExp(`cannot reach Redis at 127\\.0\\.0\\.1:${port}`));
  assert.doesNotMatch(error.message, /s3cret/);
  assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  for (const bad of ['not a url', `redis//relay:s3cret-pw@127.0.0.1:${port}`, 'http://x:1']) {
    await assert.rejects(connectRedis(bad, { timeoutMs: 500 }), (e: Error) => {
      assert.match(e.message, /REDIS_URL must be a redis:\/\/host:port/);
      assert.doesNotMatch(e.message, /s3cret/);
      return true;
    });
  }
});
