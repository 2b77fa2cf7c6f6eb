import { Hono } from 'hono';
import { cors } from 'hono/cors';
import {
  BOT_INFO_PATH,
  SESSIONS_PATH,
  TALK_PATH,
  type BotInfo,
  type SessionGrant,
  type VisitorClaims,
} from '@voice-bot/protocol';
import { addressBucket } from './client-address.js';
import type { ClientKeyRecord, KeyStore } from '../auth/keys.js';
import { verifyVisitorToken } from '../auth/visitor-tokens.js';
import { isOriginAllowed, normaliseOrigin } from '../auth/origins.js';
import type { SessionTokens } from '../auth/tokens.js';
import type { BotConfig } from '../config/config.js';
import type { Logger } from '../logger.js';
import type { RequestRate } from '../state/rate-limiters.js';
import { MAX_SESSION_BODY_BYTES, limitBody } from './body-limit.js';
import { RelayError } from './errors.js';
import { parseJsonObject } from './json-body.js';
import {
  refusalError,
  shuttingDownError,
  storageUnavailableError,
  type Hardening,
} from './hardening.js';

export interface SessionRouteDeps {
  keys: KeyStore;
  bots: readonly BotConfig[];
  tokens: SessionTokens;
  hardening: Hardening;
  logger: Logger;
  /** Public base URL for `ws_url` (default: the request's own). */
  publicUrl: string | undefined;
  /** `POST /v1/bot-info` per client IP (`limits.botInfoPerMinutePerIp`); absent: not limited. */
  botInfoRate?: RequestRate | undefined;
}

/** Key, origin and bot of a session request; the first failure is thrown. */
async function authorise(
  deps: SessionRouteDeps,
  secret: string | undefined,
  origin: string | undefined,
  botId: string | undefined,
): Promise<{ key: ClientKeyRecord; origin: string; bot: BotConfig }> {
  if (!secret)
    throw new RelayError(
      'invalid_key',
      401,
      'a client key is required (Authorization: Bearer vb_pk_…)',
    );
  const key = await deps.keys.findBySecret(secret);
  if (!key) throw new RelayError('invalid_key', 401, 'this client key is not valid');
  if (key.revoked_at) throw new RelayError('key_revoked', 401, 'this client key has been revoked');
  if (!origin) throw new RelayError('missing_origin', 403, 'the request has no Origin header');
  const canonical = normaliseOrigin(origin);
  if (!canonical || !isOriginAllowed(canonical, key.origins))
    throw new RelayError('origin_not_allowed', 403, `this client key is not allowed on ${origin}`);
  const bot = botId === undefined ? deps.bots[0] : deps.bots.find((b) => b.id === botId);
  if (!bot) throw new RelayError('unknown_bot', 403, `there is no bot ${JSON.stringify(botId)}`);
  if (key.bots.length > 0 && !key.bots.includes(bot.id))
    throw new RelayError('bot_not_allowed', 403, `this client key may not use bot ${bot.id}`);
  return { key, origin: canonical, bot };
}

/**
 * A signed-in visitor's claims, when the request carries a visitor token: it must verify with the
 * key's visitor secret, and a token with a `jti` opens one session only.
 */
async function visitorClaims(
  deps: SessionRouteDeps,
  key: ClientKeyRecord,
  token: unknown,
): Promise<VisitorClaims | undefined> {
  if (token === undefined) return undefined;
  if (typeof token !== 'string' || !token)
    throw new RelayError('bad_request', 400, 'visitor_token must be a string');
  const secret = await deps.keys.visitorSecret(key.id);
  if (!secret)
    throw new RelayError(
      'invalid_visitor_token',
      401,
      'this client key has no visitor secret (voicebot-relay keys visitor-secret ID)',
    );
  const verified = await verifyVisitorToken(token, secret);
  if (
    verified.jti &&
    !(await deps.tokens.claimOnce(`visitor:${key.id}:${verified.jti}`, verified.expiresAt))
  )
    throw new RelayError('invalid_visitor_token', 401, 'this visitor token (jti) was already used');
  return verified.claims;
}

const parseBody = (text: string): { key?: unknown; bot?: unknown; visitor_token?: unknown } =>
  parseJsonObject(text);

/**
 * `POST /v1/sessions`: a client key, the page's origin and a bot → a short-lived token for one
 * socket. Any origin may read the answer (CORS reflects it): errors carry no secrets, so a widget
 * on a refused site can explain why, and a 201 only ever goes to an origin the key allows.
 */
export function sessionRoutes(deps: SessionRouteDeps): Hono {
  const app = new Hono();
  app.use(
    SESSIONS_PATH,
    cors({
      origin: (origin) => origin,
      allowMethods: ['POST'],
      allowHeaders: ['Authorization', 'Content-Type'],
      maxAge: 600,
    }),
  );
  app.post(SESSIONS_PATH, limitBody(MAX_SESSION_BODY_BYTES), async (c) => {
    const { hardening, logger } = deps;
    if (hardening.draining) throw shuttingDownError();
    if (!hardening.health().ok) throw storageUnavailableError();
    const body = parseBody(await c.req.text());
    if (body.bot !== undefined && typeof body.bot !== 'string')
      throw new RelayError('bad_request', 400, 'bot must be a string');
    const bearer = c.req.header('authorization')?.match(/^Bearer\s+(\S+)$/i)?.[1];
    const secret = bearer ?? (typeof body.key === 'string' ? body.key : undefined);
    let granted: Awaited<ReturnType<typeof authorise>>;
    try {
      granted = await authorise(deps, secret, c.req.header('origin'), body.bot);
    } catch (error) {
      if (error instanceof RelayError) {
        logger.info({ code: error.code, origin: c.req.header('origin') }, 'session refused');
        throw error;
      }
      // The key lookup failed: the database went away since its last ping.
      logger.warn({ err: String(error) }, 'session refused: key lookup failed');
      throw storageUnavailableError();
    }
    let refusal: Awaited<ReturnType<typeof hardening.admitSession>>;
    try {
      refusal = await hardening.admitSession(c, granted.key);
    } catch (error) {
      // The rate limiters' store (Redis) went away since the last health check.
      logger.warn({ err: String(error) }, 'session refused: shared state unreachable');
      throw storageUnavailableError();
    }
    if (refusal) throw refusalError(refusal);
    // After the rate limits: a refused visitor token counts as a session request too.
    let user: VisitorClaims | undefined;
    try {
      user = await visitorClaims(deps, granted.key, body.visitor_token);
    } catch (error) {
      if (error instanceof RelayError) logger.info({ code: error.code }, 'session refused');
      throw error;
    }
    const { token, expiresAt } = await deps.tokens.issue({
      keyId: granted.key.id,
      origin: granted.origin,
      bot: granted.bot.id,
      user,
    });
    const base = new URL(deps.publicUrl ?? c.req.url);
    logger.info(
      {
        key_id: granted.key.id,
        bot: granted.bot.id,
        origin: granted.origin,
        signed_in: user !== undefined,
      },
      'session token issued',
    );
    const grant: SessionGrant = {
      token,
      expires_at: new Date(expiresAt * 1000).toISOString(),
      ws_url: `${base.protocol === 'https:' ? 'wss:' : 'ws:'}//${base.host}${TALK_PATH}`,
      bot: granted.bot.id,
      ...(user ? { user } : {}),
    };
    return c.json(grant, 201);
  });
  // What a page shows before any session: no token, no session budget spent (it has a per-address
  // budget of its own). A POST (without a body) because browsers send no Origin header with a
  // same-origin GET.
  app.use(BOT_INFO_PATH, cors({ origin: (origin) => origin, allowMethods: ['POST'], maxAge: 600 }));
  app.post(BOT_INFO_PATH, async (c) => {
    // Before the key lookup: each call costs one.
    let wait: number | undefined;
    try {
      wait = await deps.botInfoRate?.take(addressBucket(deps.hardening.clientIp(c)));
    } catch (error) {
      deps.logger.warn({ err: String(error) }, 'bot info refused: shared state unreachable');
      throw storageUnavailableError();
    }
    if (wait !== undefined)
      throw new RelayError('rate_limited', 429, 'too many bot-info requests; slow down', {
        retryAfter: wait,
      });
    let bot: BotConfig;
    try {
      ({ bot } = await authorise(
        deps,
        c.req.query('key'),
        c.req.header('origin'),
        c.req.query('bot'),
      ));
    } catch (error) {
      if (error instanceof RelayError) throw error;
      deps.logger.warn({ err: String(error) }, 'bot info refused: key lookup failed');
      throw storageUnavailableError();
    }
    const greeting = bot.greeting?.trim();
    const info: BotInfo = {
      bot: bot.id,
      name: bot.name,
      ...(greeting && !greeting.includes('{{') ? { greeting } : {}),
    };
    return c.json(info);
  });
  return app;
}
