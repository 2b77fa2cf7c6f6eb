/**
 * The shared state of relays on several machines, in Redis (`REDIS_URL`): session-token claims,
 * rate limits, concurrency slots, usage (with the database as its ledger) and revocations.
 * Conversations live in the database store handed in.
 */
import { randomBytes } from 'node:crypto';
import type { ConversationStore } from '../../conversation/conversations.js';
import type { Logger } from '../../logger.js';
import type { UsageLedger } from '../../policy/usage.js';
import { RESERVATION_MS, type SharedState, type StateStatus } from '../shared-state.js';
import { claimToken } from './claims.js';
import {
  closeRedis,
  connectRedis,
  redisTarget,
  type ConnectRedisOptions,
  type CountingRedis,
} from './connection.js';
import { loadRedisRateLimiter } from './rate-limits.js';
import { RevocationChannel } from './revocations.js';
import { RedisSlots } from './slots.js';
import { RedisUsage } from './usage.js';

export { connectRedis, redisTarget, SharedStateUnavailableError } from './connection.js';
export { RedisSlots } from './slots.js';
export { RedisUsage } from './usage.js';

export interface RedisStateOptions extends ConnectRedisOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` */
  url: string;
  conversations: ConversationStore;
  /** Where usage is kept for good (the database); without it usage lives in Redis only. */
  ledger?: UsageLedger | undefined;
  logger?: Logger | undefined;
  /** Prefix of every Redis key and channel (default `vb:`). */
  prefix?: string;
  /** Names this relay in slot members and revocation messages (default: random). */
  relayId?: string;
  /** How often usage is synced with Redis (default 250 ms). */
  usageSyncMs?: number;
  /** How often usage is written to the ledger (default 5000 ms). */
  ledgerFlushMs?: number;
  /** How long an open slot lives without a heartbeat of its relay (default 15 000 ms). */
  slotTtlMs?: number;
  /** How often this relay extends its open slots (default 5000 ms). */
  heartbeatMs?: number;
  /** How long an accepted upgrade holds a slot when its socket never opens (default 10 s). */
  reservationMs?: number;
}

export interface RedisState extends SharedState {
  readonly relayId: string;
  readonly slots: RedisSlots;
  readonly usage: RedisUsage;
  status(): StateStatus;
  /** Round trips to Redis so far on the command connection (a pipeline or script is one). */
  redisRoundTrips(): number;
}

/**
 * Connects to Redis (rejecting within `timeoutMs`, default 3 s, with `host:port` in the message
 * when it is unreachable) and returns the shared state. While Redis is down, calls fail at once
 * with {@link SharedStateUnavailableError} and `status()` is not ok; the connections come back
 * by themselves.
 */
export async function redisState(options: RedisStateOptions): Promise<RedisState> {
  const prefix = options.prefix ?? 'vb:';
  const relayId = options.relayId ?? randomBytes(6).toString('hex');
  const logger = options.logger;
  const target = redisTarget(options.url);
  const redisRateLimiter = await loadRedisRateLimiter();
  const client = await connectRedis(options.url, {
    ...options,
    connectionName: `voicebot-relay-${relayId}`,
  });
  let subscriber: CountingRedis;
  try {
    subscriber = await connectRedis(options.url, {
      ...options,
      connectionName: `voicebot-relay-${relayId}-sub`,
    });
  } catch (error) {
    client.disconnect();
    throw error;
  }
  for (const [name, connection] of [
    ['commands', client],
    ['revocations', subscriber],
  ] as const) {
    let down = false;
    connection.on('error', (error: Error) => {
      if (down) return;
      down = true;
      logger?.warn({ redis: target, err: error.message }, `redis ${name} connection lost`);
    });
    connection.on('ready', () => {
      if (!down) return;
      down = false;
      logger?.info({ redis: target }, `redis ${name} connection back`);
    });
  }

  const revocations = new RevocationChannel(
    client,
    subscriber,
    `${prefix}revoked`,
    relayId,
    logger,
  );
  try {
    await revocations.start();
  } catch (error) {
    client.disconnect();
    subscriber.disconnect();
    throw new Error(`cannot subscribe to revocations on Redis at ${target}`, { cause: error });
  }
  const slots = new RedisSlots(client, {
    prefix,
    relayId,
    reservationMs: options.reservationMs ?? RESERVATION_MS,
    ttlMs: options.slotTtlMs ?? 15_000,
    heartbeatMs: options.heartbeatMs ?? 5_000,
    logger,
  });
  const usage = new RedisUsage(client, {
    prefix,
    relayId,
    syncMs: options.usageSyncMs ?? 250,
    ledgerFlushMs: options.ledgerFlushMs ?? 5_000,
    ledger: options.ledger,
    logger,
  });
  try {
    await usage.start();
  } catch (error) {
    await usage.close();
    slots.stopHeartbeat();
    client.disconnect();
    subscriber.disconnect();
    throw error;
  }
  let closed: Promise<void> | undefined;

  return {
    relayId,
    claimToken: (jti, expiresAt) => claimToken(client, prefix, jti, expiresAt),
    rateLimiter: (spec) => redisRateLimiter(client, prefix, spec),
    slots,
    usage,
    conversations: options.conversations,
    announceRevoked: (keyId) => revocations.announce(keyId),
    onRevoked: (listener) => revocations.onRevoked(listener),
    status: () =>
      client.status === 'ready' ? { ok: true } : { ok: false, detail: 'redis unreachable' },
    redisRoundTrips: () => client.roundTrips,
    close() {
      closed ??= (async () => {
        await usage.close();
        await slots.release().catch(() => undefined);
        await Promise.all([closeRedis(client), closeRedis(subscriber)]);
      })();
      return closed;
    },
  };
}
