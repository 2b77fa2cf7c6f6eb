import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { serve, upgradeWebSocket, type ServerType, type WebSocketData } from '@hono/node-server';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono, type Context } from 'hono';
import { WebSocketServer, type WebSocket } from 'ws';
import { CLOSE_CODES, ERROR_HEADER, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX, type ErrorCode, type SessionGrant } from '@voice-bot/protocol';
import {
  ConfigError,
  DEFAULT_BOT,
  hasProvider,
  DEFAULT_LIMITS,
  providersFromEnv,
  textDeltaInterval,
  validateBots,
  type BotConfig,
  type LimitsConfig,
  type ProvidersConfig,
} from './config/config.js';
import { MAX_SESSION_BODY_BYTES, limitBody } from './http/body-limit.js';
import { Hardening, type HardeningOptions, type ShutdownOptions } from './http/hardening.js';
import type { SessionGuard } from './policy/limits.js';
import { localState, type SharedState } from './state/shared-state.js';
import type { UsageStore } from './policy/usage.js';
import { KeyStore, type ClientKeyRecord } from './auth/keys.js';
import { createLogger, type Logger } from './logger.js';
import { processEnv, relayEnv } from './config/settings.js';
import { isOriginAllowed, normaliseOrigin } from './auth/origins.js';
import { createProviderClients } from './providers/providers.js';
import { TalkSession } from './conversation/session.js';
import { createHttpTool, warnAboutRefusedToolHosts, type HttpToolConfig } from './tools/http-tool.js';
import { ToolRunner } from './tools/runner.js';
import type { ToolDefinition } from './tools/types.js';
import { SessionTokens, TokenError, type SessionClaims } from './auth/tokens.js';
import { SqliteTokenReplays, USED_TOKENS_FILE } from './auth/used-tokens.js';
import { widgetAssetsDir } from './http/widget-assets.js';
import { WriteBatcher } from './http/write-batching.js';

export interface RelayOptions extends HardeningOptions {
  /** Where keys live. Ignored when `keys` is given. Default `./.voicebot`. */
  dataDir?: string;
  keys?: KeyStore;
  /** Signs session tokens (≥ 32 bytes). Default: random per process (tokens die with it). */
  tokenSecret?: string;
  tokenTtlSeconds?: number;
  providers?: ProvidersConfig;
  /**
   * The HTTP client of the upstream calls. Default: undici's `request` API behind a `fetch`
   * signature (`createUpstreamFetch`), much cheaper per call and per streamed chunk than
   * Node's `fetch`. Pass `globalThis.fetch`, or a fetch that goes through a proxy, to replace it.
   */
  upstreamFetch?: typeof fetch;
  bots?: BotConfig[];
  limits?: Partial<LimitsConfig>;
  /** Public base URL (e.g. `https://relay.example.com`) used for `ws_url` behind a proxy. */
  publicUrl?: string;
  /**
   * Streamed reply text is sent at most once per this many ms after a turn's first piece, so a
   * model that streams a token at a time costs ~20 messages a second, not one per token. 0 sends
   * every piece as it arrives. Default 50.
   */
  textDeltaIntervalMs?: number;
  /** Code tools (`defineTool`), available to bots that list them in `tools`. */
  tools?: ToolDefinition[];
  /** HTTP integration tools (usually from `voicebot.config.json`). */
  httpTools?: HttpToolConfig[];
  /**
   * What `{{env.NAME}}` reads in HTTP tool templates (read at each call, so it may change).
   * Default: the process environment.
   */
  toolEnv?: Record<string, string | undefined>;
  /** Hosts HTTP tools may reach although they are private or loopback (off by default: SSRF guard). */
  toolAllowHosts?: string[];
  /**
   * Static folders to serve, e.g. `{ urlPath: '/widget/', dir: '…/widget/dist' }`. `extensions`
   * (e.g. `['.html', '.js']`) serves only files with those endings: the rest of the folder is a 404.
   */
  staticDirs?: { urlPath: string; dir: string; extensions?: string[] }[];
  /**
   * Serve the script-tag widget (`<script src=".../widget/voice-bot.js">`) at `/widget/`, from the
   * `@voice-bot/widget` package installed beside the relay (an optional peer dependency). Default
   * false; the CLI turns it on when the package is there.
   */
  widget?: boolean;
  logger?: Logger;
  /**
   * Where token replays, rate limits, concurrency slots, usage and conversations are kept.
   * Default: this process's memory. A cluster worker passes `clusterWorkerState()`, so all
   * workers share their primary's.
   */
  state?: SharedState;
}

export interface Relay {
  /** The Hono app: mount it, or pass `app.fetch` to any server. */
  app: Hono<RelayEnv>;
  /** Give this to `@hono/node-server`'s `serve({ websocket: { server } })` to enable `/v1/talk`. */
  websocketServer: WebSocketServer;
  keys: KeyStore;
  tokens: SessionTokens;
  logger: Logger;
  /** Starts an HTTP server with the WebSocket wiring (port 0 = any free port). */
  listen(port: number, hostname?: string): Promise<{ server: ServerType; url: string; port: number }>;
  /** Closes every session and the servers started by `listen`. */
  close(): Promise<void>;
  /** Graceful stop: new sessions get 503, turns in flight finish (≤ `graceMs`), sockets close with 1001, then `close()`. */
  shutdown(options?: ShutdownOptions): Promise<void>;
  /** Prometheus registry of this relay (served at `/metrics` when enabled). */
  metrics: Hardening['metrics']['registry'];
  /** Per-key usage counters. */
  usage: UsageStore;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1']);

interface TalkGrant {
  claims: SessionClaims;
  bot: BotConfig;
  /** The key's effective limits. */
  limits: LimitsConfig;
}

type RelayEnv = { Variables: { allowedOrigin: string | undefined; talk: TalkGrant } };

interface HttpError {
  status: 400 | 401 | 403 | 404;
  code: ErrorCode;
  message: string;
}

const httpError = (status: HttpError['status'], code: ErrorCode, message: string): HttpError => ({ status, code, message });

function bearer(header: string | undefined): string | undefined {
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return match?.[1];
}

/** Parses `Sec-WebSocket-Protocol: voicebot.v1, bearer.<jwt>`. */
function tokenFromSubprotocols(header: string | undefined): { offered: boolean; token: string | undefined } {
  const protocols = (header ?? '').split(',').map((p) => p.trim());
  const token = protocols.find((p) => p.startsWith(TOKEN_SUBPROTOCOL_PREFIX))?.slice(TOKEN_SUBPROTOCOL_PREFIX.length);
  return { offered: protocols.includes(SUBPROTOCOL), token };
}

/** One runner per bot, holding the tools the bot lists (an unknown name is a configuration error). */
function buildToolRunners(bots: readonly BotConfig[], options: RelayOptions): Map<string, ToolRunner> {
  const policy = { allowHosts: options.toolAllowHosts ?? [] };
  const available = new Map<string, ToolDefinition>();
  for (const tool of [...(options.tools ?? []), ...(options.httpTools ?? []).map((config) => createHttpTool(config, policy, options.toolEnv ?? {}))]) {
    if (available.has(tool.name)) throw new ConfigError(`tool ${tool.name} is defined twice`);
    available.set(tool.name, tool);
  }
  return new Map(
    bots.map((bot) => {
      const tools = (bot.tools ?? []).map((name) => {
        const tool = available.get(name);
        if (!tool) throw new ConfigError(`bot ${bot.id} lists tool ${name}, which is not defined`);
        return tool;
      });
      return [bot.id, new ToolRunner(tools)];
    }),
  );
}

/** Content-hashed chunks never change; entry files and assets are revalidated now and then. */
function cacheControl(path: string): string {
  if (/\/chunks\/[^/]+-[A-Za-z0-9_-]{6,}\.js$/.test(path)) return 'public, max-age=31536000, immutable';
  if (/\.(wasm|onnx|mjs)$/.test(path)) return 'public, max-age=86400';
  return 'public, max-age=300';
}

/** A WebSocket message as bytes (`ws` gives a Buffer, a view on the socket's read; fragments or ArrayBuffers otherwise). */
function messageBytes(data: WebSocketData): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data instanceof Uint8Array ? data : Buffer.concat(data);
}

/** One client frame: the guard's limits first, then the session. A throw must not reach `ws`. */
function onFrame(open: { session: TalkSession; guard: SessionGuard }, data: WebSocketData, isBinary: boolean, log: Logger): void {
  const bytes = messageBytes(data);
  if (!open.guard.admit(isBinary ? 'audio' : 'json', bytes.byteLength)) return;
  try {
    if (isBinary) open.session.onBinary(bytes);
    else open.session.onText(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (error) {
    log.error({ err: String(error) }, 'frame handling failed');
  }
}

export function createRelay(given: RelayOptions = {}): Relay {
  // What the options leave out comes from the environment, read and checked once (settings.ts).
  const env = relayEnv();
  const options: RelayOptions = {
    adminToken: env.adminToken,
    metricsToken: env.metricsToken,
    metrics: env.metrics,
    trustProxy: env.trustProxy,
    usageFile: env.usageFile,
    toolEnv: processEnv(),
    ...given,
  };
  const textDeltaIntervalMs = textDeltaInterval(options.textDeltaIntervalMs);
  const logger = options.logger ?? createLogger({ level: env.logLevel });
  const keys = options.keys ?? KeyStore.inDataDir(options.dataDir ?? '.voicebot');
  const bots = options.bots ?? [DEFAULT_BOT];
  validateBots(bots);
  const defaultBot = bots[0] as BotConfig;
  const limits: LimitsConfig = { ...DEFAULT_LIMITS, ...options.limits };
  const providers = options.providers ?? providersFromEnv();
  const clients = createProviderClients(providers, options.upstreamFetch);
  const state =
    options.state ??
    localState({
      usageFile: options.usageFile,
      conversationTtlMs: limits.conversationTtlMs,
      maxConversations: limits.maxConversations,
      usedTokens: new SqliteTokenReplays(join(dirname(keys.file), USED_TOKENS_FILE)),
    });
  const tokens = new SessionTokens(options.tokenSecret ?? randomBytes(32).toString('base64url'), options.tokenTtlSeconds, (jti, expiresAt) =>
    state.claimToken(jti, expiresAt),
  );
  const conversations = state.conversations;
  const toolRunners = buildToolRunners(bots, options);
  if (!hasProvider(providers)) {
    logger.warn('no provider configured: every turn will fail (upstream_*). Set OPENAI_API_KEY, or VOICEBOT_{STT,LLM,TTS}_BASE_URL for a local server, or pass createRelay({ providers })');
  }
  warnAboutRefusedToolHosts(options.httpTools ?? [], options.toolAllowHosts ?? [], logger, options.toolEnv ?? {});
  const staticDirs = [...(options.staticDirs ?? [])];
  if (options.widget) {
    const dir = widgetAssetsDir();
    if (!dir) throw new ConfigError('widget: true needs the @voice-bot/widget package installed beside @voice-bot/relay (npm i @voice-bot/widget)');
    staticDirs.push({ urlPath: '/widget/', dir });
  }
  const sessions = new Set<TalkSession>();
  const servers = new Set<ServerType>();
  const hardening = new Hardening({ options, limits, keys, bots, logger, state });
  const writes = new WriteBatcher();

  const websocketServer = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxAudioFrameBytes,
    perMessageDeflate: false,
    handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });

  const app = new Hono<RelayEnv>();
  app.use('*', hardening.securityHeaders());
  hardening.mount(app);

  /** Key + origin + bot checks shared by session creation. */
  async function authorise(secret: string | undefined, origin: string | undefined, botId: string | undefined): Promise<HttpError | { key: ClientKeyRecord; origin: string; bot: BotConfig }> {
    if (!secret) return httpError(401, 'invalid_key', 'a client key is required (Authorization: Bearer vb_pk_…)');
    const key = await keys.findBySecret(secret);
    if (!key) return httpError(401, 'invalid_key', 'this client key is not valid');
    if (key.revoked_at) return httpError(401, 'key_revoked', 'this client key has been revoked');
    if (!origin) return httpError(403, 'missing_origin', 'the request has no Origin header');
    const canonical = normaliseOrigin(origin);
    if (!canonical || !isOriginAllowed(canonical, key.origins)) return httpError(403, 'origin_not_allowed', `this client key is not allowed on ${origin}`);
    const bot = botId === undefined ? defaultBot : bots.find((b) => b.id === botId);
    if (!bot) return httpError(403, 'unknown_bot', `there is no bot ${JSON.stringify(botId)}`);
    if (key.bots.length > 0 && !key.bots.includes(bot.id)) return httpError(403, 'bot_not_allowed', `this client key may not use bot ${bot.id}`);
    return { key, origin: canonical, bot };
  }

  const fail = (c: Context<RelayEnv>, error: HttpError) => {
    hardening.metrics.error(error.code);
    c.header(ERROR_HEADER, error.code);
    return c.json({ error: { code: error.code, message: error.message } }, error.status);
  };

  const refuseTalk = (c: Context<RelayEnv>, error: HttpError) => {
    logger.info({ code: error.code }, 'upgrade refused');
    return fail(c, error);
  };

  app.get('/healthz', (c) => (hardening.draining ? c.json({ ok: false, draining: true }, 503) : c.json({ ok: true })));

  // Errors carry no secrets, so any page may read them (the widget explains "key not allowed on
  // this site"); a token is only ever readable by an origin the key allows.
  app.use('/v1/sessions', async (c, next) => {
    const origin = c.req.header('origin');
    if (c.req.method === 'OPTIONS') {
      if (origin) {
        c.header('Access-Control-Allow-Origin', origin);
        c.header('Access-Control-Allow-Methods', 'POST');
        c.header('Access-Control-Allow-Headers', 'Authorization, Content-Type');
        c.header('Access-Control-Max-Age', '600');
        c.header('Vary', 'Origin');
      }
      return c.body(null, 204);
    }
    await next();
    if (origin && (c.res.status >= 400 || c.get('allowedOrigin') === origin)) {
      c.res.headers.set('Access-Control-Allow-Origin', origin);
      c.res.headers.append('Vary', 'Origin');
    }
  });

  app.post('/v1/sessions', limitBody(MAX_SESSION_BODY_BYTES, () => hardening.metrics.error('payload_too_large')), async (c) => {
    if (hardening.draining) return hardening.shuttingDown(c);
    let body: { key?: unknown; bot?: unknown } = {};
    const text = await c.req.text();
    if (text.trim()) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
        body = parsed as typeof body;
      } catch {
        return fail(c, httpError(400, 'bad_request', 'request body must be a JSON object'));
      }
    }
    if (body.bot !== undefined && typeof body.bot !== 'string') return fail(c, httpError(400, 'bad_request', 'bot must be a string'));
    const secret = bearer(c.req.header('authorization')) ?? (typeof body.key === 'string' ? body.key : undefined);
    const result = await authorise(secret, c.req.header('origin'), body.bot);
    if ('status' in result) {
      logger.info({ code: result.code, origin: c.req.header('origin') }, 'session refused');
      return fail(c, result);
    }
    const refusal = await hardening.admitSession(c, result.key);
    if (refusal) return hardening.refuse(c, refusal);
    const { token, expiresAt } = await tokens.issue({ keyId: result.key.id, origin: result.origin, bot: result.bot.id });
    c.set('allowedOrigin', c.req.header('origin'));
    const base = new URL(options.publicUrl ?? c.req.url);
    const wsUrl = `${base.protocol === 'https:' ? 'wss:' : 'ws:'}//${base.host}/v1/talk`;
    logger.info({ key_id: result.key.id, bot: result.bot.id, origin: result.origin }, 'session token issued');
    const grant: SessionGrant = { token, expires_at: new Date(expiresAt * 1000).toISOString(), ws_url: wsUrl, bot: result.bot.id };
    return c.json(grant, 201);
  });

  app.get(
    '/v1/talk',
    async (c, next) => {
      if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') return refuseTalk(c, httpError(400, 'bad_request', 'this endpoint only accepts WebSocket upgrades'));
      if (hardening.draining) return hardening.shuttingDown(c);
      const { offered, token } = tokenFromSubprotocols(c.req.header('sec-websocket-protocol'));
      if (!offered) return refuseTalk(c, httpError(400, 'bad_request', `offer the ${SUBPROTOCOL} subprotocol`));
      if (!token) return refuseTalk(c, httpError(401, 'invalid_token', 'no session token in Sec-WebSocket-Protocol'));
      let claims: SessionClaims;
      try {
        claims = await tokens.verify(token);
      } catch (error) {
        if (error instanceof TokenError) return refuseTalk(c, httpError(401, error.code, error.message));
        throw error;
      }
      const origin = c.req.header('origin');
      if (!origin) return refuseTalk(c, httpError(403, 'missing_origin', 'the upgrade request has no Origin header'));
      if (normaliseOrigin(origin) !== claims.origin) return refuseTalk(c, httpError(403, 'origin_not_allowed', 'this token was issued for another origin'));
      const key = await keys.get(claims.keyId);
      if (!key || key.revoked_at) return refuseTalk(c, httpError(401, 'key_revoked', 'the client key behind this token has been revoked'));
      // The key as it is now: narrowing its origins or bots also stops tokens issued before.
      if (!isOriginAllowed(claims.origin, key.origins)) return refuseTalk(c, httpError(403, 'origin_not_allowed', `this client key is no longer allowed on ${claims.origin}`));
      const bot = bots.find((b) => b.id === claims.bot);
      if (!bot) return refuseTalk(c, httpError(403, 'unknown_bot', 'the bot of this token no longer exists'));
      if (key.bots.length > 0 && !key.bots.includes(bot.id)) return refuseTalk(c, httpError(403, 'bot_not_allowed', `this client key may no longer use bot ${bot.id}`));
      const keyLimits = hardening.keyLimits(key);
      const refusal = await hardening.admitUpgrade(key, keyLimits);
      if (refusal) {
        logger.info({ key_id: key.id, code: refusal.code }, 'upgrade refused');
        return hardening.refuse(c, refusal);
      }
      try {
        await tokens.consume(claims);
      } catch (error) {
        hardening.cancelUpgrade(key);
        if (error instanceof TokenError) return refuseTalk(c, httpError(401, error.code, error.message));
        throw error;
      }
      c.set('talk', { claims, bot, limits: keyLimits });
      await next();
    },
    upgradeWebSocket((c) => {
      const { claims, bot, limits: talkLimits } = c.get('talk');
      const sessionId = `sess_${randomBytes(9).toString('base64url')}`;
      const log = logger.child({ session: sessionId, key_id: claims.keyId, bot: bot.id });
      let session: TalkSession | undefined;
      let guard: SessionGuard | undefined;
      return {
        onOpen(_event, ws) {
          // The server is `ws`'s WebSocketServer: its sockets are `ws` WebSockets.
          const raw = ws.raw as WebSocket | undefined;
          if (!raw) return;
          guard = hardening.guard(sessionId, claims.keyId, talkLimits, log);
          session = new TalkSession({
            id: sessionId,
            keyId: claims.keyId,
            bot,
            providers,
            clients,
            conversations,
            tools: toolRunners.get(bot.id) as ToolRunner,
            limits: talkLimits,
            textDeltaIntervalMs,
            socket: hardening.countingSocket({
              send: writes.sender(raw),
              close: (code, reason) => raw.close(code, reason),
              get bufferedAmount() {
                return raw.bufferedAmount;
              },
              terminate: () => raw.terminate(),
            }),
            log,
            hooks: guard,
          });
          guard.attach(session);
          hardening.opened({ id: sessionId, keyId: claims.keyId, session, guard });
          sessions.add(session);
          // Frames straight from the `ws` socket, not through the adapter's `onMessage` (which
          // copies every binary frame into a new ArrayBuffer and wraps it in a MessageEvent: at
          // 50 audio frames per second per session that is most of the relay's uplink cost). The
          // adapter starts listening only after `onOpen`, so no frame can arrive before this listener.
          const open = { session, guard };
          raw.on('message', (data, isBinary) => onFrame(open, data, isBinary, log));
          log.info('socket open');
        },
        onClose(event) {
          if (session) {
            session.onClose();
            sessions.delete(session);
          }
          hardening.closed(sessionId, guard);
          log.info({ code: event.code }, 'socket closed');
        },
        onError(event) {
          log.warn({ err: 'error' in event ? String(event.error) : 'socket error' }, 'socket error');
        },
      };
    }),
  );

  for (const { urlPath, dir, extensions } of staticDirs) {
    const prefix = urlPath.endsWith('/') ? urlPath : `${urlPath}/`;
    app.use(`${prefix}*`, async (c, next) => {
      await next();
      if (c.res.status !== 200) return;
      // Pages on other origins import these modules, worklets and wasm files: that needs CORS.
      c.res.headers.set('Access-Control-Allow-Origin', '*');
      c.res.headers.set('Cross-Origin-Resource-Policy', 'cross-origin');
      c.res.headers.set('X-Content-Type-Options', 'nosniff');
      c.res.headers.set('Cache-Control', cacheControl(c.req.path));
    });
    const serveDir = serveStatic({ root: dir, precompressed: true, rewriteRequestPath: (path) => path.slice(prefix.length - 1) });
    // Other files of the folder are not served (the request goes on to the routes, or a 404).
    const served = (path: string) => !extensions || path.endsWith('/') || extensions.some((ext) => path.endsWith(ext));
    app.use(`${prefix}*`, (c, next) => (served(c.req.path) ? serveDir(c, next) : next()));
  }

  app.notFound((c) => fail(c, httpError(404, 'not_found', 'not found')));
  app.onError((error, c) => {
    logger.error({ err: error.message }, 'request failed');
    return c.json({ error: { code: 'internal', message: 'internal error' } }, 500);
  });

  return {
    app,
    websocketServer,
    keys,
    tokens,
    logger,
    metrics: hardening.metrics.registry,
    usage: hardening.usage,
    async shutdown(shutdownOptions) {
      await hardening.shutdown(shutdownOptions);
      await this.close();
    },
    listen(port, hostname = '127.0.0.1') {
      if (!options.publicUrl && !LOOPBACK_HOSTS.has(hostname)) {
        logger.warn(
          { host: hostname },
          'listening beyond loopback without publicUrl: ws_url is built from each request\'s Host header; set publicUrl (voicebot.config.json or createRelay) to the address visitors use',
        );
      }
      return new Promise((resolve) => {
        const server = serve({ fetch: app.fetch, port, hostname, websocket: { server: websocketServer } }, (info: AddressInfo) => {
          resolve({ server, url: `http://${hostname.includes(':') ? `[${hostname}]` : hostname}:${info.port}`, port: info.port });
        });
        servers.add(server);
      });
    },
    async close() {
      await hardening.close();
      for (const session of sessions) session.close(CLOSE_CODES.goingAway, 'relay shutting down');
      sessions.clear();
      await Promise.all(
        [...servers].map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              if ('closeAllConnections' in server) server.closeAllConnections();
            }),
        ),
      );
      servers.clear();
      websocketServer.close();
    },
  };
}
