export interface RetrySchedule {
  /** Delay before the second attempt; each later one doubles it. */
  baseMs: number;
  /** The longest delay between two attempts. */
  maxMs: number;
  /** A failed attempt this long after the event was queued is the last one. */
  giveUpAfterMs: number;
}

/** 30 s, 1 min, 2 min, … capped at 1 h, for a day: about 30 attempts. */
export const DEFAULT_RETRY: RetrySchedule = {
  baseMs: 30_000,
  maxMs: 60 * 60_000,
  giveUpAfterMs: 24 * 60 * 60_000,
};

/** The wait after the `attempts`-th failed attempt (1-based). */
export function retryDelayMs(attempts: number, schedule: RetrySchedule = DEFAULT_RETRY): number {
  const exponent = Math.min(Math.max(attempts - 1, 0), 30);
  return Math.min(schedule.baseMs * 2 ** exponent, schedule.maxMs);
}
