/**
 * The per-socket side of the limits (`limits.ts` has the per-key and HTTP side): frame size and
 * rates, turns per minute, idle and lifetime timers, and the quotas as a session spends them.
 */
import { CLOSE_CODES, type ErrorCode, type ServerMessage } from '@voice-bot/protocol';
import type { LimitsConfig } from '../config/config.js';
import type { SessionPolicy, SessionRefusal } from '../conversation/session.js';
import type { TurnInput } from '../conversation/turn.js';
import type { Logger } from '../logger.js';
import { audioQuotaBytes } from './limits.js';
import type { RelayMetrics } from './metrics.js';
import type { ProviderCost, UsageStore } from './usage.js';

const QUOTA_NAMES = { audio: 'audio', llm: 'language-model', tts: 'speech-synthesis' } as const;

/** What the guard needs from the session it watches (`TalkSession` has these). */
export interface GuardedSession {
  reject(code: ErrorCode, message: string, close?: { code: number; reason: string }): void;
  readonly busy: boolean;
}

/** The handlers of a session that frames are passed on to. */
export interface FrameHandlers {
  onText(text: string): void;
  onBinary(bytes: Uint8Array): void;
}

export interface SessionGuardDeps {
  sessionId: string;
  keyId: string;
  limits: LimitsConfig;
  usage: UsageStore;
  metrics: RelayMetrics;
  log: Logger;
  /** True once the relay is shutting down: no new turns. */
  draining(): boolean;
  /** A turn ended (the admin API's turns per minute). */
  turnEnded?: () => void;
}

/**
 * A fixed-window counter of `points` per `durationMs` (the window starts at its first point), the
 * same rule as `rate-limiter-flexible`'s memory limiter but synchronous: per-frame limits run for
 * every audio frame (50 per second per session), where a Promise chain per frame costs more than
 * the frame's own handling.
 */
export class FixedWindow {
  private start = Number.NEGATIVE_INFINITY;
  private used = 0;

  constructor(
    private readonly points: number,
    private readonly durationMs: number,
  ) {}

  /** Takes a point at `now` (ms): undefined when it fits, otherwise the ms until the window ends. */
  take(now: number): number | undefined {
    if (now >= this.start + this.durationMs) {
      this.start = now;
      this.used = 0;
    }
    if (this.used < this.points) {
      this.used++;
      return undefined;
    }
    return this.start + this.durationMs - now;
  }
}

/** A per-second frame budget of one socket, and the 10-s budget of frames it may have dropped. */
interface FrameBudget {
  perSecond: number;
  what: string;
  passed: FixedWindow;
  dropped: FixedWindow;
}

function frameBudget(perSecond: number, what: string): FrameBudget | undefined {
  return perSecond > 0
    ? {
        perSecond,
        what,
        passed: new FixedWindow(perSecond, 1000),
        dropped: new FixedWindow(perSecond, 10_000),
      }
    : undefined;
}

/**
 * Per-socket limits, quotas, usage and metrics, as middleware around a session: {@link wrap}
 * puts frame admission (size, rates) in front of the session's handlers and runs the idle and
 * lifetime timers; {@link policy} answers the session's questions (may this audio be buffered,
 * this turn start, this provider request be sent?) with decisions, never by acting on it.
 */
export class SessionGuard {
  private session: GuardedSession | undefined;
  private closed = false;
  private lastActivity = Date.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private lifetimeTimer: NodeJS.Timeout | undefined;
  /** End of the rate window in which the client was last told it is over the limit. */
  private notifiedUntil = 0;
  /** JSON messages and audio frames are limited separately (undefined = no limit). */
  private readonly budgets: { json: FrameBudget | undefined; audio: FrameBudget | undefined };
  /** Turns this socket may start per minute (undefined = no limit). */
  private readonly turns: FixedWindow | undefined;
  /** Speculative turns this socket may start per minute (0 in the limits: none at all). */
  private readonly speculations: FixedWindow;
  /** The key's daily audio quota in bytes (0 = none), asked for every audio frame. */
  private readonly audioQuota: number;
  /** What the session asks before it spends (see {@link SessionPolicy}). */
  readonly policy: SessionPolicy = {
    audioIn: (bytes) => this.audioIn(bytes),
    beforeTurn: (kind) => this.beforeTurn(kind),
    charge: (cost) => this.charge(cost),
    count: (cost) => this.deps.usage.add(this.deps.keyId, cost),
    sent: (message) => this.sent(message),
    speculate: () => this.speculate(),
    speculationEnded: (outcome) => {
      this.deps.metrics.speculativeTurnEnded(outcome);
      this.deps.usage.add(this.deps.keyId, { [`speculative_${outcome}`]: 1 });
    },
  };

  constructor(private readonly deps: SessionGuardDeps) {
    const { limits } = deps;
    this.budgets = {
      json: frameBudget(limits.messagesPerSecond, 'messages'),
      audio: frameBudget(limits.audioFramesPerSecond, 'audio frames'),
    };
    this.turns =
      limits.turnsPerMinute > 0 ? new FixedWindow(limits.turnsPerMinute, 60_000) : undefined;
    this.speculations = new FixedWindow(limits.speculativeTurnsPerMinute, 60_000);
    this.audioQuota = audioQuotaBytes(limits);
  }

  /**
   * Guards `session`: returns the handler its socket's frames go through (admission first, then
   * the session; a throw never reaches the socket) and starts the idle and lifetime timers.
   */
  wrap(session: GuardedSession & FrameHandlers): (bytes: Uint8Array, isBinary: boolean) => void {
    this.session = session;
    const { limits, log } = this.deps;
    if (limits.idleTimeoutMs > 0) this.armIdle(limits.idleTimeoutMs);
    if (limits.maxSessionMs > 0) {
      this.lifetimeTimer = setTimeout(
        () =>
          session.reject(
            'session_too_long',
            `a session may last at most ${Math.round(limits.maxSessionMs / 1000)} s; start a new one`,
            {
              code: CLOSE_CODES.sessionTooLong,
              reason: 'session too long',
            },
          ),
        limits.maxSessionMs,
      );
      this.lifetimeTimer.unref();
    }
    return (bytes, isBinary) => {
      if (!this.admit(isBinary ? 'audio' : 'json', bytes.byteLength)) return;
      try {
        if (isBinary) session.onBinary(bytes);
        else
          session.onText(
            Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
          );
      } catch (error) {
        log.error({ err: String(error) }, 'frame handling failed');
      }
    };
  }

  // ── frames ──

  /** A client frame of `bytes` arrived: true if the session may handle it (size and rate limits). */
  private admit(kind: 'json' | 'audio', bytes: number): boolean {
    if (this.closed) return false;
    const now = Date.now();
    this.lastActivity = now;
    this.deps.metrics.bytesIn(kind, bytes);
    const { limits } = this.deps;
    if (bytes > limits.maxAudioFrameBytes) {
      // The key's own frame limit (the relay-wide one is `maxPayload`, enforced by `ws` with 1009 too).
      this.dispose();
      this.session?.reject(
        'message_too_large',
        `frames are limited to ${limits.maxAudioFrameBytes} bytes for this key`,
        {
          code: CLOSE_CODES.messageTooBig,
          reason: 'frame too large',
        },
      );
      return false;
    }
    const budget = this.budgets[kind];
    if (!budget) return true;
    const wait = budget.passed.take(now);
    if (wait === undefined) return true;
    this.dropped(budget, now, wait);
    return false;
  }

  /**
   * A frame over its per-second budget is dropped. The first drop in each one-second window is
   * answered with `rate_limited`; when more frames than one second's budget are dropped within
   * 10 s the client is not slowing down: fatal `rate_limited`, close 1008.
   */
  private dropped(budget: FrameBudget, now: number, msBeforeNext: number): void {
    if (budget.dropped.take(now) !== undefined) {
      // Decided once: frames already queued behind this one are dropped without a word.
      this.dispose();
      this.deps.log.warn(
        { limit: budget.perSecond, what: budget.what },
        'rate limit exceeded persistently; closing',
      );
      this.session?.reject('rate_limited', `too many ${budget.what}; the session is closed`, {
        code: CLOSE_CODES.policyViolation,
        reason: 'rate limited',
      });
      return;
    }
    if (now >= this.notifiedUntil) {
      this.notifiedUntil = now + msBeforeNext;
      this.session?.reject(
        'rate_limited',
        `at most ${budget.perSecond} ${budget.what} per second; some are being dropped`,
      );
    }
  }

  // ── idle timeout ──

  private armIdle(delayMs: number): void {
    this.idleTimer = setTimeout(() => this.checkIdle(), delayMs);
    this.idleTimer.unref();
  }

  private checkIdle(): void {
    if (this.closed) return;
    const { idleTimeoutMs } = this.deps.limits;
    const quietFor = Date.now() - this.lastActivity;
    if (this.session?.busy) {
      // A reply is playing: the visitor is listening, not idle.
      this.armIdle(idleTimeoutMs);
      return;
    }
    if (quietFor < idleTimeoutMs) {
      this.armIdle(idleTimeoutMs - quietFor);
      return;
    }
    this.deps.log.info({ idle_ms: quietFor }, 'idle timeout');
    this.session?.reject(
      'idle_timeout',
      `no message for ${Math.round(idleTimeoutMs / 1000)} s; the session is closed`,
      {
        code: CLOSE_CODES.idleTimeout,
        reason: 'idle timeout',
      },
    );
  }

  // ── the session's policy ──

  private audioIn(bytes: number): SessionRefusal | undefined {
    const { keyId, usage } = this.deps;
    const quota = this.audioQuota;
    if (quota > 0 && usage.audioBytesToday(keyId) + bytes > quota)
      return this.quotaExceeded('audio');
    usage.addAudioIn(keyId, bytes);
    return undefined;
  }

  private beforeTurn(kind: TurnInput['kind']): SessionRefusal | undefined {
    if (this.deps.draining())
      return {
        code: 'shutting_down',
        message: 'the relay is restarting; please reconnect in a moment',
      };
    const { keyId, usage, limits } = this.deps;
    if (kind === 'say') return undefined;
    if (
      limits.llmTokensPerKeyPerDay > 0 &&
      usage.tokensToday(keyId) >= limits.llmTokensPerKeyPerDay
    )
      return this.quotaExceeded('llm');
    const wait = this.turns?.take(Date.now());
    if (wait !== undefined) {
      return {
        code: 'rate_limited',
        message: `at most ${limits.turnsPerMinute} turns per minute; this one was dropped (try again in ${Math.ceil(wait / 1000)} s)`,
      };
    }
    return undefined;
  }

  /**
   * May a speculative turn start now? Not while draining, over the per-minute budget
   * (`speculativeTurnsPerMinute`, 0 = never) or with the day's LLM tokens used up. A no is silent:
   * the visitor's `commit` then runs an ordinary turn.
   */
  private speculate(): boolean {
    const { keyId, usage, limits } = this.deps;
    if (this.deps.draining()) return false;
    if (
      limits.llmTokensPerKeyPerDay > 0 &&
      usage.tokensToday(keyId) >= limits.llmTokensPerKeyPerDay
    )
      return false;
    return this.speculations.take(Date.now()) === undefined;
  }

  /**
   * A provider request is about to be sent: it is refused (the session closes with 4005) when the
   * day's LLM tokens are used up, or when its speech characters would go over the day's budget;
   * otherwise its estimated cost is counted now, before any money is spent.
   */
  private charge(cost: ProviderCost): SessionRefusal | undefined {
    const { keyId, usage, limits } = this.deps;
    const llm = (cost.prompt_tokens ?? 0) + (cost.completion_tokens ?? 0);
    if (
      llm > 0 &&
      limits.llmTokensPerKeyPerDay > 0 &&
      usage.tokensToday(keyId) >= limits.llmTokensPerKeyPerDay
    )
      return this.quotaExceeded('llm');
    const chars = cost.tts_chars ?? 0;
    if (
      chars > 0 &&
      limits.ttsCharsPerKeyPerDay > 0 &&
      usage.ttsCharsToday(keyId) + chars > limits.ttsCharsPerKeyPerDay
    )
      return this.quotaExceeded('tts');
    usage.add(keyId, cost);
    return undefined;
  }

  private sent(message: ServerMessage): SessionRefusal | undefined {
    const { keyId, usage, metrics, limits } = this.deps;
    if (message.type === 'error') {
      metrics.error(message.code, message.message);
      usage.error(keyId, message.code);
      if (message.turn_id !== undefined) {
        metrics.turnEnded('error');
        usage.add(keyId, { turns: 1 });
        this.deps.turnEnded?.();
        this.lastActivity = Date.now();
      }
      return undefined;
    }
    if (message.type !== 'done') return undefined;
    this.lastActivity = Date.now();
    const m = message.metrics;
    metrics.turnEnded(message.interrupted ? 'interrupted' : 'done', m);
    usage.add(keyId, { turns: 1, audio_out_ms: m.audio_out_ms ?? 0 });
    this.deps.turnEnded?.();
    const quota = limits.llmTokensPerKeyPerDay;
    // Over (not at) the quota: the turn that crossed it has been delivered; the session ends now.
    return quota > 0 && usage.tokensToday(keyId) > quota ? this.quotaExceeded('llm') : undefined;
  }

  private quotaExceeded(kind: keyof typeof QUOTA_NAMES): SessionRefusal {
    this.deps.log.warn({ quota: kind }, 'daily quota exceeded; closing');
    return {
      code: 'quota_exceeded',
      message: `this key's daily ${QUOTA_NAMES[kind]} quota is used up; it resets at 00:00 UTC`,
      close: { code: CLOSE_CODES.quotaExceeded, reason: 'quota exceeded' },
    };
  }

  /** The socket closed: stop timers and free the per-socket counters. */
  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.lifetimeTimer);
  }
}
