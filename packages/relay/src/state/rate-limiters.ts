/**
 * rate-limiter-flexible's in-process and cluster limiters, each loaded by itself when first used:
 * the package's index loads every store it supports (Redis, MongoDB, SQL databases…).
 */
import { requireOptional } from '../dependencies.js';

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
