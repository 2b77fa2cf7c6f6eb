/**
 * rate-limiter-flexible's in-process and cluster limiters, each loaded by itself when first used:
 * the package's index loads every store it supports (Redis, MongoDB, SQL databases…). And
 * {@link RequestRate}, a per-address count of one kind of request (bot-info, console sign-ins).
 */
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { requireOptional } from '../dependencies.js';
import type { SharedState } from './shared-state.js';

type RateLimiterFlexible = typeof import('rate-limiter-flexible');

const PACKAGE = 'rate-limiter-flexible';
const PURPOSE = 'The session rate limits';

export function rateLimiterMemory(): RateLimiterFlexible['RateLimiterMemory'] {
  return requireOptional(`${PACKAGE}/lib/RateLimiterMemory.js`, PACKAGE, PURPOSE);
}

/** The worker's limiter and the primary's answering side of a `node:cluster` relay. */
export function rateLimiterCluster(): Pick<
  RateLimiterFlexible,
  'RateLimiterCluster' | 'RateLimiterClusterMaster'
> {
  return requireOptional(`${PACKAGE}/lib/RateLimiterCluster.js`, PACKAGE, PURPOSE);
}

/**
 * Requests per identity (an address) per minute, counted in the relay's shared state: one
 * process's memory, a cluster's primary, or Redis for a fleet.
 */
export class RequestRate {
  private limiter: RateLimiterAbstract | undefined;

  /** `perMinute` 0: no limit (nothing is counted). */
  constructor(
    private readonly state: Pick<SharedState, 'rateLimiter'>,
    private readonly name: string,
    readonly perMinute: number,
  ) {}

  private counter(): RateLimiterAbstract {
    this.limiter ??= this.state.rateLimiter({
      keyPrefix: this.name,
      points: Number.MAX_SAFE_INTEGER,
      durationSec: 60,
    });
    return this.limiter;
  }

  /**
   * Counts one request of `key`. Returns the seconds until its minute ends when this request is over
   * the limit, undefined when it is within it. Throws when the shared state does not answer.
   */
  async take(key: string): Promise<number | undefined> {
    if (this.perMinute <= 0) return undefined;
    const counted = await this.counter().consume(key);
    return counted.consumedPoints > this.perMinute
      ? Math.max(1, Math.ceil(counted.msBeforeNext / 1000))
      : undefined;
  }

  /** Forgets `key`'s count. */
  async clear(key: string): Promise<void> {
    if (this.perMinute > 0) await this.counter().delete(key);
  }
}
