import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RateLimiterSpec } from '../shared-state.js';
import { unavailable } from './connection.js';

const rethrow = (error: unknown): never => {
  // A refusal (points used up) is a RateLimiterRes; anything else is Redis failing.
  throw error instanceof RateLimiterRes ? error : unavailable(error);
};

/** rate-limiter-flexible's Redis limiter whose store failures read as the shared state being unavailable. */
class SharedRateLimiter extends RateLimiterRedis {
  override consume(
    key: string | number,
    points?: number,
    options?: { [key: string]: unknown },
  ): Promise<RateLimiterRes> {
    return super.consume(key, points, options).catch(rethrow);
  }

  override get(key: string | number, options?: { [key: string]: unknown }) {
    return super.get(key, options).catch(rethrow);
  }
}

/** A fixed-window limiter counted in Redis, so every relay shares its budget. */
export function redisRateLimiter(
  client: Redis,
  prefix: string,
  { keyPrefix, points, durationSec }: RateLimiterSpec,
): RateLimiterAbstract {
  return new SharedRateLimiter({
    storeClient: client,
    keyPrefix: `${prefix}rl:${keyPrefix}`,
    points,
    duration: durationSec,
    rejectIfRedisNotReady: true,
  });
}
