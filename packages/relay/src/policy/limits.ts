/**
 * Limits, rate limits and quotas: what a publishable key (and whoever holds it) may cost.
 *
 * - HTTP, at `POST /v1/sessions`: sessions per minute per key and per client IP, concurrent
 *   sockets per key, the daily audio and LLM-token quotas → 429 with `Retry-After`.
 * - At the upgrade: concurrent sockets and quotas again (tokens may have been collected in advance).
 * - Per socket (`guard.ts`): frame size, messages per second, turns per minute, idle timeout,
 *   maximum session length, and the quotas as the session spends them.
 *
 * Every value comes from `LimitsConfig` (global) merged with the key's own `limits`; 0 = no limit.
 * Rates use `rate-limiter-flexible`: its memory store in one process, its cluster store in a cluster.
 */
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { INPUT_BYTES_PER_MS, type ErrorCode } from '@voice-bot/protocol';
import { ConfigError, type LimitsConfig } from '../config/config.js';
import type { SharedState } from '../state/shared-state.js';
import type { UsageStore } from './usage.js';

/** Limits a key may override (everything but the relay-wide conversation store sizes). */
export const KEY_LIMIT_FIELDS = [
  'maxJsonBytes',
  'maxAudioFrameBytes',
  'maxUtteranceMs',
  'maxTextChars',
  'maxHistoryMessages',
  'startTimeoutMs',
  'messagesPerSecond',
  'audioFramesPerSecond',
  'idleTimeoutMs',
  'maxSessionMs',
  'sessionsPerMinutePerKey',
  'sessionsPerMinutePerIp',
  'maxConcurrentSessionsPerKey',
  'audioMinutesPerKeyPerDay',
  'llmTokensPerKeyPerDay',
  'ttsCharsPerKeyPerDay',
  'turnsPerMinute',
  'speculativeTurnsPerMinute',
] as const satisfies readonly (keyof LimitsConfig)[];

export type KeyLimitField = (typeof KEY_LIMIT_FIELDS)[number];
export type KeyLimits = Partial<Pick<LimitsConfig, KeyLimitField>>;

/** These must stay positive: 0 would refuse everything rather than mean "no limit". */
const POSITIVE_FIELDS = new Set<keyof LimitsConfig>([
  'maxJsonBytes',
  'maxAudioFrameBytes',
  'maxUtteranceMs',
  'maxTextChars',
  'maxHistoryMessages',
  'startTimeoutMs',
  'maxBufferedBytes',
  'slowClientTimeoutMs',
]);
/** Fractions make sense only for audio minutes. */
const FRACTIONAL_FIELDS = new Set<keyof LimitsConfig>(['audioMinutesPerKeyPerDay']);

/** A bad limit value (a `ConfigError`, so the CLI reports it plainly). */
export class LimitsError extends ConfigError {}

function checkValue(field: keyof LimitsConfig, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw new LimitsError(`limits.${field} must be a number ≥ 0`);
  if (!FRACTIONAL_FIELDS.has(field) && !Number.isInteger(value))
    throw new LimitsError(`limits.${field} must be a whole number`);
  if (POSITIVE_FIELDS.has(field) && value === 0)
    throw new LimitsError(`limits.${field} must be > 0`);
  return value;
}

/** Validates a key's `limits` override (from the admin API or the key file). */
export function parseKeyLimits(input: unknown): KeyLimits {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw new LimitsError('limits must be an object');
  const out: KeyLimits = {};
  for (const [field, value] of Object.entries(input)) {
    if (!(KEY_LIMIT_FIELDS as readonly string[]).includes(field))
      throw new LimitsError(`limits.${field} is not a per-key limit`);
    out[field as KeyLimitField] = checkValue(field as KeyLimitField, value);
  }
  return out;
}

/** Validates the relay-wide limits. */
export function validateLimits(limits: LimitsConfig): void {
  for (const [field, value] of Object.entries(limits))
    checkValue(field as keyof LimitsConfig, value);
}

/**
 * The limits that apply to one key. A key's `maxAudioFrameBytes` can only lower the relay's: the
 * WebSocket server's `maxPayload` is relay-wide.
 */
export function effectiveLimits(global: LimitsConfig, key: KeyLimits | undefined): LimitsConfig {
  if (!key) return global;
  const merged: LimitsConfig = { ...global };
  for (const field of KEY_LIMIT_FIELDS) {
    const value = key[field];
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) merged[field] = value;
  }
  merged.maxAudioFrameBytes = Math.min(merged.maxAudioFrameBytes, global.maxAudioFrameBytes);
  return merged;
}

/** Daily audio quota in bytes of 16 kHz PCM16 (0 = none). */
export function audioQuotaBytes(limits: LimitsConfig): number {
  return Math.round(limits.audioMinutesPerKeyPerDay * 60_000) * INPUT_BYTES_PER_MS;
}

export interface Refusal {
  status: 429;
  code: ErrorCode;
  message: string;
  /** Seconds, for the `Retry-After` header. */
  retryAfter: number;
}

function secondsToUtcMidnight(now = Date.now()): number {
  const midnight = new Date(now);
  midnight.setUTCHours(24, 0, 0, 0);
  return Math.max(1, Math.ceil((midnight.getTime() - now) / 1000));
}

/**
 * Admission control shared by every session of one relay: rate limiters (one per distinct budget,
 * so a key's own numbers get their own counters), concurrency slots and quota checks. The counters
 * live in the {@link SharedState}: this process's memory, or a cluster's primary process.
 */
export class Limiters {
  private readonly pool = new Map<string, RateLimiterAbstract>();

  constructor(
    private readonly usage: UsageStore,
    private readonly state: Pick<SharedState, 'rateLimiter' | 'slots'>,
  ) {}

  /**
   * The counter of one kind of request (`sessions-ip`, `sessions-key`), per minute. It counts every
   * request of its kind for an identity, whatever budget applies: a key with its own per-IP budget
   * shares the address's count with every other key, and changing a key's budget keeps its count.
   */
  private counter(name: string): RateLimiterAbstract {
    let limiter = this.pool.get(name);
    if (!limiter) {
      limiter = this.state.rateLimiter({
        keyPrefix: name,
        points: Number.MAX_SAFE_INTEGER,
        durationSec: 60,
      });
      this.pool.set(name, limiter);
    }
    return limiter;
  }

  /** Counts one request; returns the wait in ms when more than `points` were made this minute. */
  private async take(name: string, points: number, key: string): Promise<number | undefined> {
    if (points <= 0) return undefined;
    const counted = await this.counter(name).consume(key);
    return counted.consumedPoints > points ? counted.msBeforeNext : undefined;
  }

  private tooMany(max: number): Refusal {
    return {
      status: 429,
      code: 'too_many_sessions',
      message: `this key already has ${max} open session${max === 1 ? '' : 's'}; try again later`,
      retryAfter: 5,
    };
  }

  /** A daily quota that is used up (used ≥ limit). */
  quota(keyId: string, limits: LimitsConfig): Refusal | undefined {
    const audio = audioQuotaBytes(limits);
    if (audio > 0 && this.usage.audioBytesToday(keyId) >= audio) {
      return {
        status: 429,
        code: 'quota_exceeded',
        message: "this key's daily audio quota is used up; it resets at 00:00 UTC",
        retryAfter: secondsToUtcMidnight(),
      };
    }
    const tokens = limits.llmTokensPerKeyPerDay;
    if (tokens > 0 && this.usage.tokensToday(keyId) >= tokens) {
      return {
        status: 429,
        code: 'quota_exceeded',
        message: "this key's daily language-model quota is used up; it resets at 00:00 UTC",
        retryAfter: secondsToUtcMidnight(),
      };
    }
    return undefined;
  }

  /** `POST /v1/sessions` for an authorised key: per-IP and per-key rates, concurrency, quotas. */
  async admitSession(
    keyId: string,
    ip: string,
    limits: LimitsConfig,
  ): Promise<Refusal | undefined> {
    const ipWait = await this.take('sessions-ip', limits.sessionsPerMinutePerIp, ip);
    if (ipWait !== undefined) {
      return {
        status: 429,
        code: 'rate_limited',
        message: 'too many sessions from this address; slow down',
        retryAfter: Math.max(1, Math.ceil(ipWait / 1000)),
      };
    }
    const keyWait = await this.take('sessions-key', limits.sessionsPerMinutePerKey, keyId);
    if (keyWait !== undefined) {
      return {
        status: 429,
        code: 'rate_limited',
        message: 'too many sessions for this key; slow down',
        retryAfter: Math.max(1, Math.ceil(keyWait / 1000)),
      };
    }
    const max = limits.maxConcurrentSessionsPerKey;
    if (max > 0) {
      const { open, reserved } = await this.state.slots.count(keyId);
      if (open + reserved >= max) return this.tooMany(max);
    }
    return this.quota(keyId, limits);
  }

  /**
   * The upgrade, before its token is consumed: quotas, then a concurrency slot, held from here on
   * (until the socket closes, {@link cancel}, or 10 s pass without the socket opening).
   */
  async admitUpgrade(keyId: string, limits: LimitsConfig): Promise<Refusal | undefined> {
    const quota = this.quota(keyId, limits);
    if (quota) return quota;
    const max = limits.maxConcurrentSessionsPerKey;
    return (await this.state.slots.tryReserve(keyId, max)) ? undefined : this.tooMany(max);
  }

  /** The upgrade that {@link admitUpgrade} admitted was refused after all. */
  cancel(keyId: string): void {
    this.state.slots.cancel(keyId);
  }

  opened(keyId: string): void {
    this.state.slots.opened(keyId);
  }

  closed(keyId: string): void {
    this.state.slots.closed(keyId);
  }
}
