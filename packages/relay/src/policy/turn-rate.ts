import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { SharedState } from '../state/shared-state.js';

const MINUTE_MS = 60_000;
/** Turns ended here are added to the shared counter at most this often (one round trip, not one per turn). */
const FLUSH_MS = 1000;

/**
 * Turns ended in the last minute, counted in the relay's shared state (this process, a cluster's
 * primary, or Redis for a fleet) as one counter per calendar minute: the figure is the current
 * minute's count plus the share of the previous minute's that still falls within the last 60 s.
 * Turns are added to the shared state once a second per process; a look from this process adds
 * what it has not sent yet, so the first look after a turn already shows it.
 */
export class TurnRate {
  private static readonly byState = new WeakMap<object, TurnRate>();
  private limiter: RateLimiterAbstract | undefined;
  /** Turns ended here and not yet added to the shared counter, by minute (at most two minutes). */
  private pending = new Map<number, number>();
  private flushTimer: NodeJS.Timeout | undefined;

  /** One counter per shared state: the sessions count into it and the admin API reads the same one. */
  static of(state: Pick<SharedState, 'rateLimiter'>, now: () => number = Date.now): TurnRate {
    let rate = TurnRate.byState.get(state);
    if (!rate) {
      rate = new TurnRate(state, now);
      TurnRate.byState.set(state, rate);
    }
    return rate;
  }

  private constructor(
    private readonly state: Pick<SharedState, 'rateLimiter'>,
    private readonly now: () => number,
  ) {}

  private counter(): RateLimiterAbstract {
    // Each minute's counter lives two minutes: through the minute after it, where it is still read.
    this.limiter ??= this.state.rateLimiter({
      keyPrefix: 'turns-per-minute',
      points: Number.MAX_SAFE_INTEGER,
      durationSec: 120,
    });
    return this.limiter;
  }

  /** A turn ended (an unreachable shared state loses the count: it is a display figure). */
  ended(): void {
    const minute = Math.floor(this.now() / MINUTE_MS);
    this.pending.set(minute, (this.pending.get(minute) ?? 0) + 1);
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => void this.flush(), FLUSH_MS);
    this.flushTimer.unref();
  }

  private async flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const pending = this.pending;
    if (pending.size === 0) return;
    this.pending = new Map();
    await Promise.all(
      [...pending].map(([minute, turns]) =>
        this.counter()
          .consume(String(minute), turns)
          .catch(() => undefined),
      ),
    );
  }

  /** Turns per minute over the last 60 s, one decimal. Throws when the shared state does not answer. */
  async perMinute(): Promise<number> {
    await this.flush();
    const at = this.now();
    const minute = Math.floor(at / MINUTE_MS);
    const [current, previous] = await Promise.all([
      this.counter().get(String(minute)),
      this.counter().get(String(minute - 1)),
    ]);
    const elapsed = (at % MINUTE_MS) / MINUTE_MS;
    const turns = (current?.consumedPoints ?? 0) + (previous?.consumedPoints ?? 0) * (1 - elapsed);
    return Math.round(turns * 10) / 10;
  }
}
