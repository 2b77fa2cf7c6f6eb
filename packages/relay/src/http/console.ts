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
 * Sessions live in this relay's memory: in a fleet, sign in on each relay (or route /console and
 * /admin of one browser to one relay).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { requireBearer } from './bearer.js';
import { RelayError } from './errors.js';
import { MAX_ADMIN_BODY_BYTES, limitBody } from './body-limit.js';
import type { AuditActor, KeyStore } from '../auth/keys.js';
import type { BotConfig } from '../config/config.js';
import type { Logger } from '../logger.js';
import type { Storage } from '../store/storage.js';
import { writeAudit } from '../store/keys.js';

export const CONSOLE_COOKIE = 'vb_console';
export const CSRF_HEADER = 'x-voicebot-csrf';
/** How long a console session lasts after sign-in. */
export const CONSOLE_SESSION_MS = 8 * 60 * 60 * 1000;
/** Sessions kept at once (the oldest is signed out beyond it). */
const MAX_SESSIONS = 64;
/** Failed sign-ins per address per minute before 429. */
const MAX_FAILURES_PER_MINUTE = 10;
const MAX_FAILURE_ENTRIES = 1000;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export interface ConsoleSession {
  id: string;
  csrf: string;
  ip: string;
  expiresAt: number;
  /** Try-out keys made for this session (bot → key id), revoked at sign-out. */
  tryKeys: Map<string, string>;
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

/** Console sign-ins of this relay, in memory. */
export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();
  private readonly requests = new WeakMap<Request, ConsoleSession>();
  /** Sessions pushed out by newer ones, for the next `sweep` to hand over. */
  private evicted: ConsoleSession[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  create(ip: string): ConsoleSession {
    this.sweep();
    while (this.sessions.size >= MAX_SESSIONS) {
      const [oldest] = this.sessions;
      if (!oldest) break;
      this.sessions.delete(oldest[0]);
      this.evicted.push(oldest[1]);
    }
    const session: ConsoleSession = {
      id: randomBytes(32).toString('base64url'),
      csrf: randomBytes(32).toString('base64url'),
      ip,
      expiresAt: this.now() + CONSOLE_SESSION_MS,
      tryKeys: new Map(),
    };
    this.sessions.set(sha256(session.id).toString('hex'), session);
    return session;
  }

  /** The live session the request's cookie names, if any. */
  of(c: Context): ConsoleSession | undefined {
    const cached = this.requests.get(c.req.raw);
    if (cached) return cached;
    const id = getCookie(c, CONSOLE_COOKIE);
    if (!id || id.length > 100) return undefined;
    const session = this.sessions.get(sha256(id).toString('hex'));
    if (!session) return undefined;
    // Expired: `sweep` removes it (and its try-out keys are revoked then).
    if (session.expiresAt <= this.now()) return undefined;
    this.requests.set(c.req.raw, session);
    return session;
  }

  csrfOk(session: ConsoleSession, header: string | undefined): boolean {
    return header !== undefined && header.length <= 100 && sameSecret(header, session.csrf);
  }

  delete(session: ConsoleSession): void {
    this.sessions.delete(sha256(session.id).toString('hex'));
  }

  /** Sessions that expired or were pushed out (their try-out keys are the caller's to revoke). */
  sweep(): ConsoleSession[] {
    const now = this.now();
    const expired = this.evicted;
    this.evicted = [];
    for (const [hash, session] of this.sessions)
      if (session.expiresAt <= now) {
        this.sessions.delete(hash);
        expired.push(session);
      }
    return expired;
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
    const session = sessions && !c.req.header('authorization') ? sessions.of(c) : undefined;
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

/** `Secure` unless the browser talks to this relay on a loopback name (plain http in development). */
function cookieFlags(c: Context, maxAgeSeconds: number): string {
  const host = (c.req.header('host') ?? '').replace(/:\d+$/, '').toLowerCase();
  const secure = LOCAL_HOSTS.has(host) ? '' : '; Secure';
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
  clientIp(c: Context): string;
  log: Logger;
  /** Where the console's browser build is (default: the installed `@voice-bot/console`). */
  assetsDir?: string | undefined;
  /** The widget's module URL when the relay serves it (`/widget/voice-bot.esm.js`), for "try the bot". */
  widgetUrl?: string | undefined;
  /** Closes a revoked key's sockets (the admin API's revoke path). */
  closeKey(keyId: string): void;
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

export function consoleRoutes(deps: ConsoleDeps): Hono {
  const { sessions, keys, log } = deps;
  const app = new Hono();
  const failures = new Map<string, { count: number; since: number }>();
  const actor = (c: Context): AuditActor => ({ kind: 'console', ip: deps.clientIp(c) });

  async function revokeTryKeys(session: ConsoleSession, who: AuditActor): Promise<void> {
    for (const id of session.tryKeys.values()) {
      await keys.revoke(id, who).catch(() => false);
      deps.closeKey(id);
    }
    session.tryKeys.clear();
  }
  const sweep = () => {
    for (const expired of sessions.sweep())
      void revokeTryKeys(expired, { kind: 'console', ip: expired.ip });
  };

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

  app.post('/console/session', async (c) => {
    sweep();
    const ip = deps.clientIp(c);
    const now = Date.now();
    const failed = failures.get(ip);
    if (failed && now - failed.since < 60_000 && failed.count >= MAX_FAILURES_PER_MINUTE)
      throw new RelayError('rate_limited', 429, 'too many failed sign-ins: wait a minute', {
        retryAfter: 60,
      });
    const input = await jsonBody(c);
    const token = input.token;
    if (typeof token !== 'string' || token.length > 1000 || !sameSecret(token, deps.token)) {
      if (!failures.has(ip) && failures.size >= MAX_FAILURE_ENTRIES) failures.clear();
      const entry = failed && now - failed.since < 60_000 ? failed : { count: 0, since: now };
      entry.count += 1;
      failures.set(ip, entry);
      log.warn({ ip }, 'console: sign-in refused');
      await consoleAudit(deps.storage, actor(c), 'console.sign_in_failed').catch(() => undefined);
      throw new RelayError('unauthorized', 401, 'that is not the admin token');
    }
    failures.delete(ip);
    const session = sessions.create(ip);
    sweep();
    c.header(
      'Set-Cookie',
      `${CONSOLE_COOKIE}=${session.id}${cookieFlags(c, CONSOLE_SESSION_MS / 1000)}`,
    );
    await consoleAudit(deps.storage, actor(c), 'console.sign_in');
    log.info({ ip }, 'console: signed in');
    return c.json(sessionView(session), 201);
  });

  const signedIn = (c: Context): ConsoleSession => {
    sweep();
    const session = sessions.of(c);
    if (!session) throw new RelayError('unauthorized', 401, 'not signed in to the console');
    return session;
  };
  const checkedCsrf = (c: Context): ConsoleSession => {
    const session = signedIn(c);
    if (!sessions.csrfOk(session, c.req.header(CSRF_HEADER)))
      throw new RelayError(
        'unauthorized',
        403,
        `the CSRF header ${CSRF_HEADER} is missing or wrong`,
      );
    return session;
  };

  app.get('/console/session', (c) => c.json(sessionView(signedIn(c))));

  app.delete('/console/session', async (c) => {
    const session = checkedCsrf(c);
    await revokeTryKeys(session, actor(c));
    sessions.delete(session);
    c.header('Set-Cookie', `${CONSOLE_COOKIE}=${cookieFlags(c, 0)}`);
    await consoleAudit(deps.storage, actor(c), 'console.sign_out');
    log.info({ ip: deps.clientIp(c) }, 'console: signed out');
    return c.json({ signed_out: true });
  });

  app.post('/console/try-key', async (c) => {
    const session = checkedCsrf(c);
    const input = await jsonBody(c);
    const bot = deps.bots.find((b) => b.id === input.bot);
    if (!bot)
      throw new RelayError('unknown_bot', 400, `there is no bot ${JSON.stringify(input.bot)}`);
    const origin = c.req.header('origin');
    if (!origin || !/^https?:\/\/[\w.:[\]-]+$/.test(origin))
      throw new RelayError('missing_origin', 400, 'the request has no Origin header');
    const old = session.tryKeys.get(bot.id);
    if (old) {
      await keys.revoke(old, actor(c));
      deps.closeKey(old);
    }
    const created = await keys.create(
      { origins: [origin], bots: [bot.id], label: 'console try-out' },
      actor(c),
    );
    session.tryKeys.set(bot.id, created.record.id);
    return c.json({ bot: bot.id, key_id: created.record.id, key: created.secret }, 201);
  });

  return app;
}

/** What the admin API needs from the console: its sessions, and an audit row per console change. */
export function consoleAdminDeps(
  storage: Pick<Storage, 'db' | 'ready'>,
  clientIp: (c: Context) => string,
): { sessions: ConsoleSessions; audit(c: Context, session: ConsoleSession): Promise<void> } {
  return {
    sessions: new ConsoleSessions(),
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
