/**
 * Connections to Redis: configured to fail fast while Redis is unreachable (no offline queue, one
 * attempt per command, a command timeout) and to reconnect by themselves with a capped backoff.
 */
import type { Redis, RedisOptions } from 'ioredis';
import { importOptional } from '../../dependencies.js';

/** A shared-state call failed because Redis did not answer: the relay should answer 503. */
export class SharedStateUnavailableError extends Error {
  override readonly name = 'SharedStateUnavailableError';
  readonly code = 'state_unavailable';

  constructor(message = 'the shared state (redis) is unreachable', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Rethrows any error of a Redis call as {@link SharedStateUnavailableError}. */
export function unavailable(error: unknown): SharedStateUnavailableError {
  return error instanceof SharedStateUnavailableError
    ? error
    : new SharedStateUnavailableError(undefined, { cause: error });
}

/** `host:port` of a Redis URL, for messages: never its user name or password. */
export function redisTarget(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || 'localhost'}:${parsed.port || '6379'}`;
  } catch {
    return 'an unparsable REDIS_URL';
  }
}

/** Checks that `url` is a Redis URL (anything else would be taken for a socket path, echoed in errors). */
export function checkRedisUrl(url: string): void {
  let protocol: string | undefined;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol !== 'redis:' && protocol !== 'rediss:')
    throw new Error('REDIS_URL must be a redis://host:port or rediss://host:port URL');
}

/** `message` without the credentials of `url`, should a library have echoed them. */
function redact(message: string, url: string): string {
  let out = message;
  try {
    const { username, password } = new URL(url);
    for (const secret of [password, username]) {
      if (!secret) continue;
      out = out.split(secret).join('***').split(decodeURIComponent(secret)).join('***');
    }
  } catch {
    // not a URL: nothing of it to take out
  }
  return out;
}

export interface RedisConnectionOptions {
  /** A command unanswered after this long fails (default 2000 ms). */
  commandTimeoutMs?: number;
  /** Longest wait between two reconnection attempts (default 2000 ms). */
  maxReconnectDelayMs?: number;
  /** Name shown by `CLIENT LIST`. */
  connectionName?: string;
}

export function redisOptions(options: RedisConnectionOptions = {}) {
  const maxDelay = options.maxReconnectDelayMs ?? 2000;
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 2000,
    connectTimeout: 5000,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 10), maxDelay),
    ...(options.connectionName ? { connectionName: options.connectionName } : {}),
  } satisfies RedisOptions;
}

/**
 * An ioredis client that counts its round trips: each command written on its own, and each
 * pipeline or transaction once, however many commands it holds.
 */
export interface CountingRedis extends Redis {
  readonly roundTrips: number;
}

type CountingRedisClass = new (url: string, options: RedisOptions) => CountingRedis;

let countingRedis: Promise<CountingRedisClass> | undefined;

/** The {@link CountingRedis} class, made once ioredis is loaded (by the first connection). */
function countingRedisClass(): Promise<CountingRedisClass> {
  countingRedis ??= importOptional('ioredis', 'REDIS_URL', () => import('ioredis')).then(
    ({ Redis }) =>
      class extends Redis implements CountingRedis {
        private sent = 0;
        private readonly batches = new WeakSet<object>();

        get roundTrips(): number {
          return this.sent;
        }

        override sendCommand(...[command, stream]: Parameters<Redis['sendCommand']>): unknown {
          if (!stream) this.sent++;
          else if (!this.batches.has(stream)) {
            this.batches.add(stream);
            this.sent++;
          }
          return super.sendCommand(command, stream);
        }
      },
    (error: unknown) => {
      countingRedis = undefined;
      throw error;
    },
  );
  return countingRedis;
}

export interface ConnectRedisOptions extends RedisConnectionOptions {
  /** Give up when Redis is not ready after this long (default 3000 ms). */
  timeoutMs?: number;
}

/**
 * Connects to `url` and resolves once Redis answers; rejects with a message naming `host:port`
 * (never the password) when it does not within `timeoutMs`. The client then reconnects by itself.
 */
export async function connectRedis(
  url: string,
  options: ConnectRedisOptions = {},
): Promise<CountingRedis> {
  checkRedisUrl(url);
  const target = redisTarget(url);
  const client = new (await countingRedisClass())(url, redisOptions(options));
  let lastError: Error | undefined;
  const remember = (error: Error) => {
    lastError = error;
  };
  client.on('error', remember);
  const timeoutMs = options.timeoutMs ?? 3000;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const why = lastError ? `: ${redact(lastError.message, url)}` : '';
        reject(new Error(`cannot reach Redis at ${target} within ${timeoutMs} ms${why}`));
      }, timeoutMs);
      client.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
      client.connect().catch(remember);
    });
  } catch (error) {
    client.disconnect();
    throw error;
  } finally {
    client.off('error', remember);
  }
  return client;
}

/** Quits politely when connected, otherwise just drops the connection. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // fall through: the connection is going away anyway
    }
  }
  client.disconnect();
}
