import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { rateLimiterMemory } from '../state/rate-limiters.js';
import type { RateLimiterSpec } from '../state/shared-state.js';
import { TurnRate } from './turn-rate.js';

/** The in-process shared state's limiter, counting the calls that would be round trips with Redis. */
function countingState() {
  const calls = { consume: 0 };
  const state = {
    rateLimiter({ keyPrefix, points, durationSec }: RateLimiterSpec): RateLimiterAbstract {
      const limiter = new (rateLimiterMemory())({ keyPrefix, points, duration: durationSec });
      const consume = limiter.consume.bind(limiter);
      limiter.consume = (key, turns) => {
        calls.consume++;
        return consume(key, turns);
      };
      return limiter;
    },
  };
  return { state, calls };
}

test('turns per minute: every ended turn counts on the next look, sent to the shared state in one call, not one per turn', async () => {
  let now = 10 * 60_000 + 30_000;
  const { state, calls } = countingState();
  const rate = TurnRate.of(state, () => now);
  assert.equal(await rate.perMinute(), 0);
  for (let i = 0; i < 5; i++) rate.ended();
  assert.equal(calls.consume, 0, 'nothing sent per turn');
  assert.equal(await rate.perMinute(), 5, 'the first look after the turns shows them');
  assert.equal(calls.consume, 1, 'five turns, one call');
  // 45 s into the next minute: the previous minute's turns count for the quarter still in the window.
  now += 75_000;
  rate.ended();
  assert.equal(await rate.perMinute(), 2.3, '1 + 5 × 0.25, to one decimal');
  assert.equal(TurnRate.of(state), rate, 'one counter per shared state');
});
