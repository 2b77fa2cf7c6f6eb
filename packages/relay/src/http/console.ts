/**
 * The admin console (`@voice-bot/console`), served at `/console/` when an admin token is set:
 *
 *   GET    /console/               the page (strict CSP: scripts and styles from this origin only)
 *   GET    /console/assets/*       the console's bundle (`@voice-bot/console/dist/browser`)
 *   POST   /console/session        sign in: {"token"} → session cookie + {"csrf", "expires_at", …}
 *   GET    /console/session        the signed-in session (its CSRF token again, for a reload)
 *   DELETE /console/session        sign out (needs the CSRF header); revokes its try-out keys
 *   POST   /console/try-key        {"bot"} → a client key for the console's own origin ("try the bot")
 *
 * The admin API accepts the session cookie instead of the bearer token ({@link adminAuth}); a
 * request that changes anything must also carry the session's CSRF token in `x-voicebot-csrf`.
 * Sessions live in the relay's database (`store/console-sessions.ts`) and failed sign-ins are
 * counted in its shared state, so behind a load balancer every relay of a fleet knows them.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { addressBucket } from './client-address.js';
import { requireBearer } from './bearer.js';
import { RelayError } from './errors.js';
import { storageUnavailableError } from './hardening.js';
import { MAX_ADMIN_BODY_BYTES, limitBody } from './body-limit.js';
import type { AuditActor, KeyStore } from '../auth/keys.js';
import type { BotConfig } from '../config/config.js';
import type { Logger } from '../logger.js';
import { RequestRate } from '../state/rate-limiters.js';
import type { SharedState } from '../state/shared-state.js';
import { ConsoleSessionStore, type EndedConsoleSession } from '../store/console-sessions.js';
import type { Storage } from '../store/storage.js';
import { writeAudit } from '../store/keys.js';

export const CONSOLE_COOKIE = 'vb_console';
export const CSRF_HEADER = 'x-voicebot-csrf';
/** How long a console session lasts after sign-in. */
export const CONSOLE_SESSION_MS = 8 * 60 * 60 * 1000;
/** Failed sign-ins per address per minute before 429. */
const MAX_FAILURES_PER_MINUTE = 10;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export interface ConsoleSession {
  /** The cookie's value (never stored: the database keys the session by its SHA-256). */
  id: string;
  hash: string;
  csrf: string;
  ip: string;
  expiresAt: number;
}

/** The `@voice-bot/console` browser build, when that package is installed beside the relay. */
export function consoleAssetsDir(): string | undefined {
  try {
    const manifest = createRequire(import.meta.url).resolve('@voice-bot/console/package.json');
    const dir = join(dirname(manifest), 'dist', 'browser');
    return existsSync(join(dir, 'console.js')) ? dir : undefined;
  } catch {
    return undefined;
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();
const sameSecret = (a: string, b: string) => timingSafeEqual(sha256(a), sha256(b));
/** The CSRF token is derived from the session id, so the database holds neither. */
const csrfOf = (id: string) =>
  createHmac('sha256', id).update('voicebot console csrf').digest('base64url');

function sessionOf(id: string, ip: string, expiresAt: number): ConsoleSession {
  return { id, hash: sha256(id).toString('hex'), csrf: csrfOf(id), ip, expiresAt };
}

/** Console sign-ins, kept in the relay's database ({@link ConsoleSessionStore}). */
export class ConsoleSessions {
  readonly store: ConsoleSessionStore;
  private readonly requests = new WeakMap<Request, ConsoleSession>();

  constructor(
    storage: Pick<Storage, 'db' | 'ready' | 'engine'>,
    private readonly now: () => number = Date.now,
  ) {
    this.store = new ConsoleSessionStore(storage, now);
  }

  /**
   * A new session, and the ones that ended (`previous`, the one this browser held, and those that
   * made room), their try-out keys revoked.
   */
  async create(
    ip: string,
    previous?: ConsoleSession,
  ): Promise<{ session: ConsoleSession; ended: EndedConsoleSession[] }> {
    const session = sessionOf(
      randomBytes(32).toString('base64url'),
      ip,
      this.now() + CONSOLE_SESSION_MS,
    );
    const ended = await this.store.create(session.hash, ip, session.expiresAt, previous?.hash);
    return { session, ended };
  }

  /** The live session the request's cookie names, if any (looked up once per request). */
  async of(c: Context): Promise<ConsoleSession | undefined> {
    const cached = this.requests.get(c.req.raw);
    if (cached) return cached;
    const id = getCookie(c, CONSOLE_COOKIE);
    if (!id || id.length > 100) return undefined;
    let stored: Awaited<ReturnType<ConsoleSessionStore['find']>>;
    try {
      stored = await this.store.find(sha256(id).toString('hex'));
    } catch {
      throw storageUnavailableError();
    }
    if (!stored) return undefined;
    const session = sessionOf(id, stored.ip, stored.expiresAt);
    this.requests.set(c.req.raw, session);
    return session;
  }

  csrfOk(session: ConsoleSession, header: string | undefined): boolean {
    return header !== undefined && header.length <= 100 && sameSecret(header, session.csrf);
  }

  /** Signs the session out from `ip`: what it held, or undefined when another request ended it first. */
  end(session: ConsoleSession, ip: string): Promise<EndedConsoleSession | undefined> {
    return this.store.delete(session.hash, ip);
  }

  /** Sessions that expired (their try-out keys revoked), each handed to one caller in the whole fleet. */
  sweep(): Promise<EndedConsoleSession[]> {
    return this.store.sweep();
  }

  /** The audit actor of a request the console made, or undefined. */
  actor(c: Context, ip: string): AuditActor | undefined {
    return this.requests.has(c.req.raw) ? { kind: 'console', ip } : undefined;
  }
}

/**
 * The admin API's authentication: `Authorization: Bearer <admin token>`, or a console session
 * cookie (GETs) plus its CSRF token in `x-voicebot-csrf` (anything that changes something).
 */
export function adminAuth(
  token: string,
  sessions: ConsoleSessions | undefined,
  onRefused: (c: Context) => void,
  audit?: (c: Context, session: ConsoleSession) => Promise<void>,
): MiddlewareHandler {
  const bearer = requireBearer(token, 'voicebot-admin', onRefused);
  return async (c, next) => {
    const session = sessions && !c.req.header('authorization') ? await sessions.of(c) : undefined;
    if (!session) return bearer(c, next);
    if (!SAFE_METHODS.has(c.req.method) && !sessions?.csrfOk(session, c.req.header(CSRF_HEADER))) {
      onRefused(c);
      throw new RelayError(
        'unauthorized',
        403,
        `a console request that changes something needs the session's CSRF token in ${CSRF_HEADER}`,
      );
    }
    await next();
    if (!SAFE_METHODS.has(c.req.method) && c.res.status < 400) await audit?.(c, session);
  };
}

/**
 * `Secure`, except in plain-http development: the Host is a loopback name, no proxy header says
 * the browser is elsewhere, and the relay's public URL (if set) is not https. A proxy in front
 * (nginx's `proxy_pass http://127.0.0.1:8080` sends that Host) always gets `Secure`.
 */
export function cookieFlags(
  c: Context,
  maxAgeSeconds: number,
  publicUrl: string | undefined,
): string {
  const host = (c.req.header('host') ?? '').replace(/:\d+$/, '').toLowerCase();
  const development =
    LOCAL_HOSTS.has(host) &&
    !['x-forwarded-proto', 'x-forwarded-for', 'forwarded'].some((h) => c.req.header(h)) &&
    !/^https:/i.test(publicUrl ?? '');
  const secure = development ? '' : '; Secure';
  return `; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeSeconds}${secure}`;
}

/** The CSP of the console's own pages: nothing from elsewhere, no inline script or style. */
function consoleCsp(c: Context): string {
  const host = c.req.header('host') ?? '';
  const sockets = /^[\w.:[\]-]+$/.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'self'",
    // The try-out widget's speech detector runs WebAssembly.
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "worker-src 'self' blob:",
    `connect-src 'self'${sockets}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "object-src 'none'",
  ].join('; ');
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Voice bot console</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script type="module" src="/console/assets/console.js"></script>
</head>
<body>
<vb-console><p class="boot">Loading the console…</p></vb-console>
<noscript>The console needs JavaScript.</noscript>
</body>
</html>
`;

export interface ConsoleDeps {
  sessions: ConsoleSessions;
  token: string;
  keys: KeyStore;
  bots: readonly BotConfig[];
  storage: Pick<Storage, 'db' | 'ready'>;
  /** Where failed sign-ins are counted (per address, across the fleet with Redis). */
  state: Pick<SharedState, 'rateLimiter'>;
  clientIp(c: Context): string;
  log: Logger;
  /** Where the console's browser build is (default: the installed `@voice-bot/console`). */
  assetsDir?: string | undefined;
  /** The widget's module URL when the relay serves it (`/widget/voice-bot.esm.js`), for "try the bot". */
  widgetUrl?: string | undefined;
  /** Closes a revoked key's sockets (the admin API's revoke path). */
  closeKey(keyId: string): void;
  /** The relay's public address (`publicUrl`): when https, the cookie is always `Secure`. */
  publicUrl?: string | undefined;
  /** How often expired sessions are ended and their try-out keys revoked (default 60 s). */
  sweepMs?: number | undefined;
}

/** How often expired console sessions are swept by default. */
export const CONSOLE_SWEEP_MS = 60_000;

export interface ConsoleRoutes {
  app: Hono;
  /** Ends expired sessions now (what the timer does). */
  sweep(): Promise<void>;
  /** Stops the sweep timer. */
  close(): void;
}

/** Writes an audit row for a console action (key changes write their own, through the key store). */
export async function consoleAudit(
  storage: Pick<Storage, 'db' | 'ready'>,
  actor: AuditActor,
  action: string,
  detail: Record<string, unknown> = {},
): Promise<void> {
  await storage.ready();
  await writeAudit(storage.db, actor, action, null, detail);
}

export function consoleRoutes(deps: ConsoleDeps): ConsoleRoutes {
  const { sessions, keys, log } = deps;
  const app = new Hono();
  const attempts = new RequestRate(deps.state, 'console-sign-in-ip', MAX_FAILURES_PER_MINUTE);
  const actor = (c: Context): AuditActor => ({ kind: 'console', ip: deps.clientIp(c) });

  /** The store revoked the keys of the sessions that ended; their open sockets close here. */
  function closed(ended: readonly EndedConsoleSession[]): void {
    for (const session of ended) {
      for (const id of session.keyIds) deps.closeKey(id);
      log.info(
        { ip: session.ip, reason: session.reason, revoked_keys: session.keyIds.length },
        'console: session ended',
      );
    }
  }
  /** A failed database call: 503 `storage_unavailable`, never a 500. */
  async function stored<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch {
      throw storageUnavailableError();
    }
  }

  let sweeping: Promise<void> | undefined;
  const sweep = () =>
    (sweeping ??= sessions
      .sweep()
      .then(closed, (error: unknown) =>
        log.warn(
          { err: (error as Error).message },
          'console: expired sessions not swept (retried)',
        ),
      )
      .finally(() => (sweeping = undefined)));
  const timer = setInterval(() => void sweep(), deps.sweepMs ?? CONSOLE_SWEEP_MS);
  timer.unref();

  const headers: MiddlewareHandler = async (c, next) => {
    await next();
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
    c.header('Content-Security-Policy', consoleCsp(c));
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
  };
  app.use('/console', headers);
  app.use('/console/*', headers);
  app.use('/console/session', limitBody(MAX_ADMIN_BODY_BYTES));
  app.use('/console/try-key', limitBody(MAX_ADMIN_BODY_BYTES));

  app.get('/console', (c) => c.redirect('/console/', 308));
  app.get('/console/', (c) => c.html(PAGE));

  const assets = deps.assetsDir ?? consoleAssetsDir();
  if (assets) {
    const serve = serveStatic({
      root: assets,
      precompressed: true,
      rewriteRequestPath: (path) => path.slice('/console/assets'.length),
    });
    app.use('/console/assets/*', async (c, next) => {
      await next();
      if (c.res.status === 200 && /\/chunks\/[^/]+-[\w-]{6,}\.js$/.test(c.req.path))
        c.res.headers.set('Cache-Control', 'public, max-age=31536000, immutable');
    });
    app.use('/console/assets/*', serve);
  } else {
    log.warn(
      'the console page is served but @voice-bot/console is not built (npm run build): /console/ will not load',
    );
  }

  /** A JSON object body (sign-in only accepts JSON: an HTML form cannot send it). */
  async function jsonBody(c: Context): Promise<Record<string, unknown>> {
    if (!(c.req.header('content-type') ?? '').startsWith('application/json'))
      throw new RelayError('bad_request', 415, 'send JSON (Content-Type: application/json)');
    try {
      const parsed: unknown = JSON.parse(await c.req.text());
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
        return parsed as Record<string, unknown>;
    } catch {
      // Answered below.
    }
    throw new RelayError('bad_request', 400, 'request body must be a JSON object');
  }

  const sessionView = (session: ConsoleSession) => ({
    csrf: session.csrf,
    expires_at: new Date(session.expiresAt).toISOString(),
    bots: deps.bots.map((bot) => ({ id: bot.id, ...(bot.name ? { name: bot.name } : {}) })),
    widget_url: deps.widgetUrl ?? null,
  });

  /** Every attempt counts (so a burst of parallel guesses cannot all get through); success clears. */
  async function countAttempt(ip: string): Promise<void> {
    let wait: number | undefined;
    try {
      wait = await attempts.take(addressBucket(ip));
    } catch {
      throw storageUnavailableError();
    }
    if (wait !== undefined)
      throw new RelayError('rate_limited', 429, 'too many failed sign-ins: wait a minute', {
        retryAfter: wait,
      });
  }

  app.post('/console/session', async (c) => {
    const ip = deps.clientIp(c);
    const input = await jsonBody(c);
    await countAttempt(ip);
    const token = input.token;
    if (typeof token !== 'string' || token.length > 1000 || !sameSecret(token, deps.token)) {
      log.warn({ ip }, 'console: sign-in refused');
      await consoleAudit(deps.storage, actor(c), 'console.sign_in_failed').catch(() => undefined);
      throw new RelayError('unauthorized', 401, 'that is not the admin token');
    }
    await attempts.clear(addressBucket(ip)).catch(() => undefined);
    // The sign-in and its audit row commit together; the session the browser held ends with it.
    const previous = await sessions.of(c);
    const { session, ended } = await stored(sessions.create(ip, previous));
    closed(ended);
    c.header(
      'Set-Cookie',
      `${CONSOLE_COOKIE}=${session.id}${cookieFlags(c, CONSOLE_SESSION_MS / 1000, deps.publicUrl)}`,
    );
    log.info({ ip }, 'console: signed in');
    return c.json(sessionView(session), 201);
  });

  const signedIn = async (c: Context): Promise<ConsoleSession> => {
    const session = await sessions.of(c);
    if (!session) throw new RelayError('unauthorized', 401, 'not signed in to the console');
    return session;
  };
  const checkedCsrf = async (c: Context): Promise<ConsoleSession> => {
    const session = await signedIn(c);
    if (!sessions.csrfOk(session, c.req.header(CSRF_HEADER)))
      throw new RelayError(
        'unauthorized',
        403,
        `the CSRF header ${CSRF_HEADER} is missing or wrong`,
      );
    return session;
  };

  app.get('/console/session', async (c) => c.json(sessionView(await signedIn(c))));

  app.delete('/console/session', async (c) => {
    const session = await checkedCsrf(c);
    const ended = await stored(sessions.end(session, deps.clientIp(c)));
    if (ended) closed([ended]);
    c.header('Set-Cookie', `${CONSOLE_COOKIE}=${cookieFlags(c, 0, deps.publicUrl)}`);
    log.info({ ip: deps.clientIp(c) }, 'console: signed out');
    return c.json({ signed_out: true });
  });

  app.post('/console/try-key', async (c) => {
    const session = await checkedCsrf(c);
    const input = await jsonBody(c);
    const bot = deps.bots.find((b) => b.id === input.bot);
    if (!bot)
      throw new RelayError('unknown_bot', 400, `there is no bot ${JSON.stringify(input.bot)}`);
    const origin = c.req.header('origin');
    if (!origin || !/^https?:\/\/[\w.:[\]-]+$/.test(origin))
      throw new RelayError('missing_origin', 400, 'the request has no Origin header');
    const created = await stored(
      keys.create({ origins: [origin], bots: [bot.id], label: 'console try-out' }, actor(c)),
    );
    const keyId = created.record.id;
    let recorded: Awaited<ReturnType<ConsoleSessionStore['setTryKey']>>;
    try {
      recorded = await sessions.store.setTryKey(session.hash, bot.id, keyId, deps.clientIp(c));
    } catch {
      // Nothing links the new key to the session: it must not stay live.
      await keys
        .revoke(keyId, actor(c))
        .catch((error: unknown) =>
          log.error(
            { key_id: keyId, err: (error as Error).message },
            'console: a try-out key could not be recorded nor revoked: revoke it by hand',
          ),
        );
      throw storageUnavailableError();
    }
    if (!recorded) {
      // Signed out (on any relay) while the key was being made: the store revoked it.
      deps.closeKey(keyId);
      throw new RelayError('unauthorized', 401, 'not signed in to the console');
    }
    if (recorded.replaced) deps.closeKey(recorded.replaced);
    return c.json({ bot: bot.id, key_id: keyId, key: created.secret }, 201);
  });

  return { app, sweep, close: () => clearInterval(timer) };
}

/** What the admin API needs from the console: its sessions, and an audit row per console change. */
export function consoleAdminDeps(
  storage: Pick<Storage, 'db' | 'ready' | 'engine'>,
  clientIp: (c: Context) => string,
): { sessions: ConsoleSessions; audit(c: Context, session: ConsoleSession): Promise<void> } {
  return {
    sessions: new ConsoleSessions(storage),
    // Key changes are written by the key store itself (with the console as their actor).
    audit: async (c) => {
      if (/^\/admin\/keys(\/|$)/.test(c.req.path)) return;
      await consoleAudit(storage, { kind: 'console', ip: clientIp(c) }, 'console.change', {
        method: c.req.method,
        path: c.req.path,
      });
    },
  };
}
