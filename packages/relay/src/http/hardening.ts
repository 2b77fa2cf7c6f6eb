/**
 * What the HTTP routes ask of the policy modules: admission of sessions and upgrades (limits,
 * quotas, concurrency), per-socket guards, usage and metrics, the open-session registry with
 * revocation and graceful shutdown, and the `/metrics` route.
 */
import { getConnInfo } from '@hono/node-server/conninfo';
import { Hono, type Context } from 'hono';
import type { ErrorCode } from '@voice-bot/protocol';
import { addressBucket } from './client-address.js';
import { checkBearerToken, requireBearer } from './bearer.js';
import { RelayError } from './errors.js';
import type { BotConfig, LimitsConfig } from '../config/config.js';
import type { ClientKeyRecord, KeyStore } from '../auth/keys.js';
import { SessionRegistry, type OpenSession } from '../policy/lifecycle.js';
import { TurnRate } from '../policy/turn-rate.js';
import { SessionGuard } from '../policy/guard.js';
import { Limiters, effectiveLimits, validateLimits } from '../policy/limits.js';
import type { Logger } from '../logger.js';
import { RelayMetrics } from '../policy/metrics.js';
import type { SharedState, StateStatus } from '../state/shared-state.js';
import type { UsageStore } from '../policy/usage.js';

export interface HardeningOptions {
  /** Enables the admin API under `/admin` (≥ 16 characters). Default: `VOICEBOT_ADMIN_TOKEN`; unset = no admin API (404). */
  adminToken?: string;
  /** Bearer token required by `GET /metrics`. Default: `VOICEBOT_METRICS_TOKEN`. */
  metricsToken?: string;
  /**
   * `GET /metrics`: `false` = off; `'public'` = no token needed (only behind a private network);
   * default (`true`/unset) = served only when a metrics token is set, 404 otherwise.
   * Default from `VOICEBOT_METRICS` (`public` or `off`).
   */
  metrics?: boolean | 'public';
  /** Take the client IP (sessions per IP) from the last `X-Forwarded-For` entry: set behind one reverse proxy. Default: `VOICEBOT_TRUST_PROXY=1`. */
  trustProxy?: boolean;
  /** How often open sessions' keys are re-checked for revocation (ms, default 1000). */
  revocationCheckMs?: number;
}

export interface ShutdownOptions {
  /** How long turns in flight may take to finish before sockets are closed (default 10 000 ms). */
  graceMs?: number;
}

const SHUTTING_DOWN = {
  status: 503,
  code: 'shutting_down',
  message: 'the relay is shutting down; try again in a moment',
  retryAfter: 5,
} as const;

/** A refusal as the error the app renders (429/503 with `Retry-After`). */
export function refusalError(refusal: HttpRefusal): RelayError {
  return new RelayError(refusal.code, refusal.status, refusal.message, {
    retryAfter: refusal.retryAfter,
  });
}

/** New sessions while the relay drains. */
export const shuttingDownError = (): RelayError => refusalError(SHUTTING_DOWN);

const STORAGE_UNAVAILABLE = {
  status: 503,
  code: 'storage_unavailable',
  message: 'the relay cannot reach its database; try again in a moment',
  retryAfter: 5,
} as const;

/** New sessions while the database (or the shared state) does not answer. */
export const storageUnavailableError = (): RelayError => refusalError(STORAGE_UNAVAILABLE);

/** What `/healthz` reports. */
export interface Health {
  ok: boolean;
  database: 'ok' | 'unreachable';
  state?: 'ok' | 'unreachable';
}

export interface HttpRefusal {
  status: 429 | 503;
  code: ErrorCode;
  message: string;
  retryAfter: number;
}

export class Hardening {
  readonly usage: UsageStore;
  readonly metrics: RelayMetrics;
  readonly registry = new SessionRegistry();
  readonly limiters: Limiters;
  private readonly ready: Promise<void>;
  private readonly trustProxy: boolean;

  constructor(
    private readonly deps: {
      options: HardeningOptions;
      limits: LimitsConfig;
      keys: KeyStore;
      bots: readonly BotConfig[];
      logger: Logger;
      state: SharedState;
      /** The database's health (pinged while the relay runs). */
      storage?: { status(): StateStatus };
    },
  ) {
    const { options, limits, keys, logger, state } = deps;
    validateLimits(limits);
    checkBearerToken('admin', options.adminToken);
    checkBearerToken('metrics', options.metricsToken);
    this.trustProxy = options.trustProxy ?? false;
    this.usage = state.usage;
    this.ready = this.usage.load();
    this.metrics = new RelayMetrics(() => this.registry.size);
    state.registerMetrics?.(this.metrics.registry);
    this.limiters = new Limiters(this.usage, state);
    this.registry.watchRevocations(keys, logger, options.revocationCheckMs ?? 1_000);
    state.onRevoked((keyId) => {
      const closed = this.registry.closeKey(keyId);
      logger.info(
        { key_id: keyId, sessions: closed },
        'key revoked in another process: open sessions closed',
      );
    });
  }

  private get options(): HardeningOptions {
    return this.deps.options;
  }

  get draining(): boolean {
    return this.registry.draining;
  }

  /**
   * Whether the database and the shared state answer: each as `ok` or `unreachable` (`state` only
   * when the shared state lives outside this process and can fail, e.g. Redis).
   */
  health(): Health {
    const database = this.deps.storage?.status().ok ?? true;
    const status = this.deps.state.status?.();
    return {
      ok: database && (status?.ok ?? true),
      database: database ? 'ok' : 'unreachable',
      ...(status ? { state: status.ok ? ('ok' as const) : ('unreachable' as const) } : {}),
    };
  }

  /** The admin API's token, when it is enabled. */
  get adminToken(): string | undefined {
    return this.options.adminToken;
  }

  /** `GET /metrics`, when enabled: this relay's metrics (a cluster's, summed), behind its token. */
  metricsRoutes(): Hono | undefined {
    const { metrics: mode = true, metricsToken } = this.options;
    if (mode === false || (metricsToken === undefined && mode !== 'public')) return undefined;
    const app = new Hono();
    if (metricsToken !== undefined)
      app.use('/metrics', requireBearer(metricsToken, 'voicebot-metrics'));
    app.get('/metrics', async (c) => {
      const text = this.deps.state.clusterMetrics
        ? await this.deps.state.clusterMetrics()
        : await this.metrics.registry.metrics();
      return c.body(text, 200, {
        'Content-Type': this.metrics.registry.contentType,
        'Cache-Control': 'no-store',
      });
    });
    return app;
  }

  clientIp(c: Context): string {
    if (this.trustProxy) {
      const forwarded = c.req
        .header('x-forwarded-for')
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .at(-1);
      if (forwarded) return forwarded;
    }
    try {
      return getConnInfo(c).remote.address ?? 'unknown';
    } catch {
      return 'unknown';
    }
  }

  keyLimits(key: ClientKeyRecord): LimitsConfig {
    return effectiveLimits(this.deps.limits, key.limits);
  }

  /** `POST /v1/sessions` after the key, origin and bot checks. */
  async admitSession(c: Context, key: ClientKeyRecord): Promise<HttpRefusal | undefined> {
    if (this.draining) return SHUTTING_DOWN;
    if (!this.health().ok) return STORAGE_UNAVAILABLE;
    await this.ready;
    const refusal = await this.limiters.admitSession(
      key.id,
      addressBucket(this.clientIp(c)),
      this.keyLimits(key),
    );
    if (refusal) {
      this.usage.error(key.id, refusal.code);
      this.deps.logger.info({ key_id: key.id, code: refusal.code }, 'session refused');
      return refusal;
    }
    this.usage.add(key.id, { sessions: 1 });
    this.metrics.sessionRequest('issued');
    return undefined;
  }

  /**
   * The upgrade, before its token is consumed: shutdown, quotas, concurrency. When admitted it
   * holds a concurrency slot until the socket opens; {@link cancelUpgrade} gives it back.
   */
  async admitUpgrade(key: ClientKeyRecord, limits: LimitsConfig): Promise<HttpRefusal | undefined> {
    if (this.draining) return SHUTTING_DOWN;
    await this.ready;
    const refusal = await this.limiters.admitUpgrade(key.id, limits);
    if (refusal) this.usage.error(key.id, refusal.code);
    return refusal;
  }

  /** An admitted upgrade was refused after all (its token had been used). */
  cancelUpgrade(key: ClientKeyRecord): void {
    this.limiters.cancel(key.id);
  }

  /** Creates the per-socket guard: its `policy` goes to the session, which it then `wrap`s. */
  guard(sessionId: string, keyId: string, limits: LimitsConfig, log: Logger): SessionGuard {
    return new SessionGuard({
      sessionId,
      keyId,
      limits,
      usage: this.usage,
      metrics: this.metrics,
      log,
      draining: () => this.draining,
      turnEnded: () => TurnRate.of(this.deps.state).ended(),
    });
  }

  opened(entry: OpenSession): void {
    this.limiters.opened(entry.keyId);
    this.registry.add(entry);
    this.usage.add(entry.keyId, { sockets: 1 });
    this.metrics.sessionOpened();
  }

  closed(id: string, guard: SessionGuard | undefined): void {
    guard?.dispose();
    const entry = this.registry.get(id);
    if (!entry) return;
    this.registry.delete(id);
    this.limiters.closed(entry.keyId);
  }

  /** Refuse new sessions, let turns in flight finish (≤ graceMs), close sockets with 1001. */
  async shutdown(options: ShutdownOptions = {}): Promise<void> {
    this.deps.logger.info(
      { sessions: this.registry.size, grace_ms: options.graceMs ?? 10_000 },
      'shutting down',
    );
    await this.registry.drain(options.graceMs ?? 10_000);
  }

  async close(): Promise<void> {
    this.registry.draining = true;
    this.registry.stopWatching();
    await this.deps.state.close();
  }
}
