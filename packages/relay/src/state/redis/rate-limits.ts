import type { Redis } from 'ioredis';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { importOptional } from '../../dependencies.js';
import type { RateLimiterSpec } from '../shared-state.js';
import { unavailable } from './connection.js';

/** Makes a fixed-window limiter counted in Redis, so every relay shares its budget. */
export type RedisRateLimiterFactory = (
  client: Redis,
  prefix: string,
  spec: RateLimiterSpec,
) => RateLimiterAbstract;

/**
 * Loads rate-limiter-flexible (a relay without Redis never does) and returns the factory of
 * limiters whose store failures read as the shared state being unavailable.
 */
export async function loadRedisRateLimiter(): Promise<RedisRateLimiterFactory> {
  const { RateLimiterRedis, RateLimiterRes } = await importOptional(
    'rate-limiter-flexible',
    'REDIS_URL',
    () => import('rate-limiter-flexible'),
  );
  const rethrow = (error: unknown): never => {
    // A refusal (points used up) is a RateLimiterRes; anything else is Redis failing.
    throw error instanceof RateLimiterRes ? error : unavailable(error);
  };
  class SharedRateLimiter extends RateLimiterRedis {
    override consume(
      key: string | number,
      points?: number,
      options?: { [key: string]: unknown },
    ): Promise<InstanceType<typeof RateLimiterRes>> {
      return super.consume(key, points, options).catch(rethrow);
    }

    override get(key: string | number, options?: { [key: string]: unknown }) {
      return super.get(key, options).catch(rethrow);
    }
  }
  return (client, prefix, { keyPrefix, points, durationSec }) =>
    new SharedRateLimiter({
      storeClient: client,
      keyPrefix: `${prefix}rl:${keyPrefix}`,
      points,
      duration: durationSec,
      rejectIfRedisNotReady: true,
    });
}
