/**
 * Two relays ("A" and "B": two redisState instances) sharing one real redis-server.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { startRedis, type TestRedis } from '../../../../../test/support/redis.js';
import { MemoryConversationStore } from '../../conversation/conversations.js';
import { MemoryLedger } from './memory-ledger.fixture.js';
import { redisState, type RedisState, type RedisStateOptions } from './index.js';

let redis: TestRedis;
let nextPrefix = 0;

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.close();
});

/** Two relays on one key prefix of their own; closed after the test. */
async function twoRelays(
  t: { after(fn: () => Promise<void>): void },
  options: Partial<RedisStateOptions> = {},
): Promise<[RedisState, RedisState]> {
  const prefix = `t${++nextPrefix}:`;
  const make = (relayId: string) =>
    redisState({
      url: redis.url,
      prefix,
      relayId,
      conversations: new MemoryConversationStore(60_000, 100),
      ...options,
    });
  const relays = [await make('A'), await make('B')] as [RedisState, RedisState];
  t.after(async () => {
    await Promise.all(relays.map((relay) => relay.close()));
  });
  return relays;
}

test('one claim of a token id wins out of 20 in parallel on two relays', async (t) => {
  const [a, b] = await twoRelays(t);
  const expiresAt = Date.now() / 1000 + 600;
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).claimToken('jti-1', expiresAt)),
  );
  assert.equal(results.filter(Boolean).length, 1);
  assert.equal(await b.claimToken('jti-2', expiresAt), true);
  assert.equal(await a.claimToken('jti-2', expiresAt), false);
  const before = a.redisRoundTrips();
  await a.claimToken('jti-3', expiresAt);
  assert.equal(a.redisRoundTrips() - before, 1, 'a claim is one round trip');
});

test('a rate limit is counted across both relays', async (t) => {
  const [a, b] = await twoRelays(t);
  const spec = { keyPrefix: 'sessions-key', points: 5, durationSec: 60 };
  const [onA, onB] = [a.rateLimiter(spec), b.rateLimiter(spec)];
  for (let i = 0; i < 5; i++) await (i % 2 ? onA : onB).consume('key-1');
  const sixth = await onA.consume('key-1').catch((refusal: unknown) => refusal);
  assert.ok(sixth instanceof RateLimiterRes, 'the 6th session of the minute is refused');
  assert.equal(sixth.consumedPoints, 6);
  assert.ok(sixth.msBeforeNext > 50_000 && sixth.msBeforeNext <= 60_000);
  assert.equal((await onB.consume('key-2')).consumedPoints, 1, 'another key has its own budget');
  const before = b.redisRoundTrips();
  await onB.consume('key-2');
  assert.equal(b.redisRoundTrips() - before, 1, 'a consume is one round trip');
});

test('concurrency slots add up across relays; a dead relay’s slots free themselves', async (t) => {
  const [a, b] = await twoRelays(t, { slotTtlMs: 1000, heartbeatMs: 200, reservationMs: 600 });
  assert.equal(await a.slots.tryReserve('k', 2), true);
  assert.equal(await b.slots.tryReserve('k', 2), true);
  assert.equal(await a.slots.tryReserve('k', 2), false);
  assert.equal(await b.slots.tryReserve('k', 2), false);
  assert.equal(await b.slots.tryReserve('other', 2), true, 'slots are per key');
  assert.equal(await b.slots.tryReserve('k', 0), true, '0 = no limit');
  b.slots.cancel('k');
  assert.deepEqual(await a.slots.count('k'), { open: 0, reserved: 2 });

  a.slots.opened('k');
  b.slots.opened('k');
  await sleep(50);
  assert.deepEqual(await b.slots.count('k'), { open: 2, reserved: 0 });
  // Open slots outlive the reservation time and the slot TTL while their relay's heartbeat runs.
  await sleep(1500);
  assert.deepEqual(await b.slots.count('k'), { open: 2, reserved: 0 });

  b.slots.closed('k');
  await sleep(50);
  assert.deepEqual(await a.slots.count('k'), { open: 1, reserved: 0 });
  assert.equal(await b.slots.tryReserve('k', 2), true, 'a closed socket frees its slot');
  await sleep(800);
  assert.deepEqual(
    await a.slots.count('k'),
    { open: 1, reserved: 0 },
    'a reservation whose socket never opened lapses',
  );

  // A dies: its heartbeat stops and nothing is released.
  a.slots.stopHeartbeat();
  assert.equal(await b.slots.tryReserve('k', 1), false);
  await sleep(1400);
  assert.deepEqual(await b.slots.count('k'), { open: 0, reserved: 0 });
  assert.equal(await b.slots.tryReserve('k', 1), true, 'the dead relay’s slot has expired');
});

test('closing a relay releases its slots at once', async (t) => {
  const [a, b] = await twoRelays(t);
  assert.equal(await a.slots.tryReserve('k', 2), true);
  a.slots.opened('k');
  assert.equal(await a.slots.tryReserve('k', 2), true);
  await a.close();
  assert.deepEqual(await b.slots.count('k'), { open: 0, reserved: 0 });
});

test('a revocation on A reaches B’s listener within a second, not A’s own', async (t) => {
  const [a, b] = await twoRelays(t);
  const heardByA: string[] = [];
  a.onRevoked((keyId) => heardByA.push(keyId));
  const started = Date.now();
  const heard = new Promise<string>((resolve) => b.onRevoked(resolve));
  a.announceRevoked('key-9');
  const keyId = await Promise.race([heard, sleep(1000).then(() => 'timeout')]);
  assert.equal(keyId, 'key-9');
  assert.ok(Date.now() - started < 1000);
  await sleep(100);
  assert.deepEqual(heardByA, [], 'a relay ignores its own announcement');
});

test('usage totals are exact across relays and the ledger gets every delta once', async (t) => {
  const ledger = new MemoryLedger();
  const [a, b] = await twoRelays(t, { ledger, usageSyncMs: 20, ledgerFlushMs: 100 });
  for (let i = 0; i < 50; i++) {
    a.usage.addAudioIn('k', 640);
    b.usage.addAudioIn('k', 320);
    if (i % 10 === 0) {
      a.usage.add('k', { prompt_tokens: 100, completion_tokens: 10, turns: 1 });
      b.usage.add('k', { prompt_tokens: 7, tts_chars: 30, sessions: 1 });
      b.usage.error('k', 'quota_exceeded');
    }
    await sleep(5);
  }
  a.usage.add('k', { prompt_tokens: -40 });
  assert.ok(a.usage.audioBytesToday('k') >= 32_000, 'what A counted counts at once on A');
  await a.usage.sync();
  await b.usage.sync();
  await a.usage.sync();
  for (const relay of [a, b]) {
    assert.equal(relay.usage.audioBytesToday('k'), 48_000);
    assert.equal(relay.usage.tokensToday('k'), 5 * 110 + 5 * 7 - 40);
    assert.equal(relay.usage.ttsCharsToday('k'), 150);
    assert.equal(relay.usage.audioBytesToday('unused'), 0);
  }
  await Promise.all([a.close(), b.close()]);
  const day = ledger.today('k');
  assert.equal(day.audio_in_ms, 48_000 / 32);
  assert.equal(day.prompt_tokens, 5 * 100 + 5 * 7 - 40);
  assert.equal(day.completion_tokens, 50);
  assert.equal(day.tts_chars, 150);
  assert.equal(day.turns, 5);
  assert.equal(day.sessions, 5);
  assert.deepEqual(day.errors, { quota_exceeded: 5 });
  assert.ok(ledger.writes.length >= 2, 'the ledger was written more than once (on the timer)');
});

test('without a ledger, the usage history comes from Redis, every relay’s', async (t) => {
  const [a, b] = await twoRelays(t, { usageSyncMs: 3_600_000 });
  a.usage.add('k', { sessions: 2, prompt_tokens: 30 });
  a.usage.addAudioIn('k', 6400);
  b.usage.add('k', { sessions: 1, audio_out_ms: 1500 });
  b.usage.error('k', 'rate_limited');
  await b.usage.sync();
  const [today, yesterday] = await a.usage.history('k', 2);
  assert.ok(today && yesterday);
  assert.equal(today.sessions, 3);
  assert.equal(today.prompt_tokens, 30);
  assert.equal(today.audio_in_ms, 200);
  assert.equal(today.audio_out_ms, 1500);
  assert.deepEqual(today.errors, { rate_limited: 1 });
  assert.equal(yesterday.sessions, 0);
  assert.notEqual(yesterday.date, today.date);
});
