import { randomBytes } from 'node:crypto';
import { upgradeWebSocket, type WebSocketData } from '@hono/node-server';
import { Hono } from 'hono';
import type { WebSocket } from 'ws';
import { SUBPROTOCOL, TALK_PATH, TOKEN_SUBPROTOCOL_PREFIX } from '@voice-bot/protocol';
import type { KeyStore } from '../auth/keys.js';
import { isOriginAllowed, normaliseOrigin } from '../auth/origins.js';
import { TokenError, type SessionClaims, type SessionTokens } from '../auth/tokens.js';
import type { BotConfig, LimitsConfig } from '../config/config.js';
import type { SessionSocket, TalkSession } from '../conversation/session.js';
import type { Logger } from '../logger.js';
import type { SessionGuard } from '../policy/guard.js';
import { RelayError } from './errors.js';
import {
  refusalError,
  shuttingDownError,
  storageUnavailableError,
  type Hardening,
} from './hardening.js';
import type { WriteBatcher } from './write-batching.js';

/** What an accepted upgrade carries to the socket. */
export interface TalkGrant {
  sessionId: string;
  claims: SessionClaims;
  bot: BotConfig;
  /** The key's effective limits. */
  limits: LimitsConfig;
  log: Logger;
}

export interface TalkRouteDeps {
  keys: KeyStore;
  bots: readonly BotConfig[];
  tokens: SessionTokens;
  hardening: Hardening;
  writes: WriteBatcher;
  logger: Logger;
  /** Makes the session of an opened socket. */
  openSession(grant: TalkGrant, socket: SessionSocket, guard: SessionGuard): TalkSession;
  /** The socket closed. */
  closed(session: TalkSession): void;
}

type TalkEnv = { Variables: { talk: TalkGrant } };

/** Parses `Sec-WebSocket-Protocol: voicebot.v1, bearer.<jwt>`. */
function tokenFromSubprotocols(header: string | undefined): {
  offered: boolean;
  token: string | undefined;
} {
  const protocols = (header ?? '').split(',').map((p) => p.trim());
  const token = protocols
    .find((p) => p.startsWith(TOKEN_SUBPROTOCOL_PREFIX))
    ?.slice(TOKEN_SUBPROTOCOL_PREFIX.length);
  return { offered: protocols.includes(SUBPROTOCOL), token };
}

/** A WebSocket message as bytes (`ws` gives a Buffer, a view on the socket's read; fragments or ArrayBuffers otherwise). */
function messageBytes(data: WebSocketData): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data instanceof Uint8Array ? data : Buffer.concat(data);
}

/**
 * `GET /v1/talk`: every check before the upgrade (docs/protocol.md §3, in that order; a refusal is
 * the HTTP status with the code in `X-Voicebot-Error`), then the socket and its session.
 */
export function talkRoutes(deps: TalkRouteDeps): Hono<TalkEnv> {
  const { keys, bots, tokens, hardening, logger } = deps;
  const app = new Hono<TalkEnv>();

  const admit = async (req: {
    header(name: string): string | undefined;
  }): Promise<Omit<TalkGrant, 'sessionId' | 'log'>> => {
    if (req.header('upgrade')?.toLowerCase() !== 'websocket')
      throw new RelayError('bad_request', 400, 'this endpoint only accepts WebSocket upgrades');
    if (hardening.draining) throw shuttingDownError();
    const { offered, token } = tokenFromSubprotocols(req.header('sec-websocket-protocol'));
    if (!offered) throw new RelayError('bad_request', 400, `offer the ${SUBPROTOCOL} subprotocol`);
    if (!token)
      throw new RelayError('invalid_token', 401, 'no session token in Sec-WebSocket-Protocol');
    const claims = await tokens.verify(token);
    const origin = req.header('origin');
    if (!origin)
      throw new RelayError('missing_origin', 403, 'the upgrade request has no Origin header');
    if (normaliseOrigin(origin) !== claims.origin)
      throw new RelayError('origin_not_allowed', 403, 'this token was issued for another origin');
    const key = await keys.get(claims.keyId);
    if (!key || key.revoked_at)
      throw new RelayError('key_revoked', 401, 'the client key behind this token has been revoked');
    // The key as it is now: narrowing its origins or bots also stops tokens issued before.
    if (!isOriginAllowed(claims.origin, key.origins))
      throw new RelayError(
        'origin_not_allowed',
        403,
        `this client key is no longer allowed on ${claims.origin}`,
      );
    const bot = bots.find((b) => b.id === claims.bot);
    if (!bot) throw new RelayError('unknown_bot', 403, 'the bot of this token no longer exists');
    if (key.bots.length > 0 && !key.bots.includes(bot.id))
      throw new RelayError(
        'bot_not_allowed',
        403,
        `this client key may no longer use bot ${bot.id}`,
      );
    const limits = hardening.keyLimits(key);
    const refusal = await hardening.admitUpgrade(key, limits);
    if (refusal) throw refusalError(refusal);
    try {
      await tokens.consume(claims);
    } catch (error) {
      hardening.cancelUpgrade(key);
      throw error;
    }
    return { claims, bot, limits };
  };

  app.get(
    TALK_PATH,
    async (c, next) => {
      let admitted: Awaited<ReturnType<typeof admit>>;
      try {
        admitted = await admit(c.req);
      } catch (error) {
        // Anything but a refusal comes from the key store or the token store: the database.
        const refused =
          error instanceof TokenError
            ? new RelayError(error.code, 401, error.message)
            : error instanceof RelayError
              ? error
              : storageUnavailableError();
        if (!(error instanceof RelayError) && !(error instanceof TokenError))
          logger.warn({ err: String(error) }, 'upgrade refused: storage failed');
        if (refused instanceof RelayError) logger.info({ code: refused.code }, 'upgrade refused');
        throw refused;
      }
      const sessionId = `sess_${randomBytes(9).toString('base64url')}`;
      c.set('talk', {
        ...admitted,
        sessionId,
        log: logger.child({
          session: sessionId,
          key_id: admitted.claims.keyId,
          bot: admitted.bot.id,
        }),
      });
      await next();
    },
    upgradeWebSocket((c) => {
      const grant = c.get('talk');
      const { log } = grant;
      let session: TalkSession | undefined;
      let guard: SessionGuard | undefined;
      return {
        onOpen(_event, ws) {
          // The server is `ws`'s WebSocketServer: its sockets are `ws` WebSockets.
          const raw = ws.raw as WebSocket | undefined;
          if (!raw) return;
          guard = hardening.guard(grant.sessionId, grant.claims.keyId, grant.limits, log);
          const socket = deps.writes.socket(raw, hardening.metrics);
          const opened = deps.openSession(grant, socket, guard);
          session = opened;
          hardening.opened({
            id: grant.sessionId,
            keyId: grant.claims.keyId,
            session: opened,
            guard,
          });
          // Frames straight from the `ws` socket, not through the adapter's `onMessage` (which
          // copies every binary frame into a new ArrayBuffer and wraps it in a MessageEvent: at
          // 50 audio frames per second per session that is most of the relay's uplink cost). The
          // adapter starts listening only after `onOpen`, so no frame can arrive before this listener.
          const frame = guard.wrap(opened);
          raw.on('message', (data, isBinary) => frame(messageBytes(data), isBinary));
          log.info('socket open');
        },
        onClose(event) {
          if (session) deps.closed(session);
          hardening.closed(grant.sessionId, guard);
          log.info({ code: event.code }, 'socket closed');
        },
        onError(event) {
          log.warn(
            { err: 'error' in event ? String(event.error) : 'socket error' },
            'socket error',
          );
        },
      };
    }),
  );
  return app;
}
