import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { WebSocketServer } from 'ws';
import { CLOSE_CODES, SUBPROTOCOL } from '@voice-bot/protocol';
import {
  ConfigError,
  DEFAULT_BOT,
  hasProvider,
  DEFAULT_LIMITS,
  embeddingsStage,
  providersFromEnv,
  textDeltaInterval,
  validateBots,
  type BotConfig,
  type LimitsConfig,
  type ProvidersConfig,
  type WebhookEndpointConfig,
} from './config/config.js';
import { createAdminApp } from './http/admin.js';
import { consoleAdminDeps, consoleRoutes, type ConsoleRoutes } from './http/console.js';
import { errorHandler, notFoundHandler } from './http/errors.js';
import { securityHeaders } from './http/security.js';
import { sessionRoutes } from './http/sessions.js';
import { staticRoutes, type StaticDir } from './http/static.js';
import { talkRoutes } from './http/talk.js';
import {
  Hardening,
  storageUnavailableError,
  type HardeningOptions,
  type ShutdownOptions,
} from './http/hardening.js';
import { RequestRate } from './state/rate-limiters.js';
import { localState, type SharedState } from './state/shared-state.js';
import type { UsageStore } from './policy/usage.js';
import type { KeyStore } from './auth/keys.js';
import { createLogger, type Logger } from './logger.js';
import { processEnv, relayEnv } from './config/settings.js';
import { createProviderClients } from './providers/providers.js';
import { TalkSession } from './conversation/session.js';
import {
  createHttpTool,
  warnAboutRefusedToolHosts,
  type HttpToolConfig,
} from './tools/http-tool.js';
import { ToolRunner } from './tools/runner.js';
import { clientTool } from './tools/client-tool.js';
import { KnowledgeBase } from './knowledge/knowledge-base.js';
import { SEARCH_KNOWLEDGE_TOOL, searchKnowledgeTool } from './knowledge/tool.js';
import { HANDOFF_TOOL_NAME, createHandoffTool, promptWithHandoff } from './handoff/handoff.js';
import type { WebhookSink } from './webhooks/outbox.js';
import { DbWebhookOutbox, endpointsFor } from './webhooks/queue.js';
import { WebhookDispatcher } from './webhooks/dispatcher.js';
import type { RetrySchedule } from './webhooks/backoff.js';
import { ConversationRecords } from './records/records.js';
import { resolveWebhooks, validateRecordsConfig } from './records/config.js';
import type { ToolDefinition } from './tools/types.js';
import { SessionTokens } from './auth/tokens.js';
import { createStorage, storageOfKeys, type Storage } from './store/storage.js';
import { widgetAssetsDir } from './http/widget-assets.js';
import { WriteBatcher } from './http/write-batching.js';

export interface RelayOptions extends HardeningOptions {
  /**
   * The database: keys, audit log, usage, conversations, used tokens (`openStorage()`). The
   * caller closes it. Default: opened from `databaseUrl`, else SQLite in `dataDir`, and closed
   * with the relay.
   */
  storage?: Storage;
  /** `postgres://…`: PostgreSQL instead of SQLite. Default: `DATABASE_URL`. */
  databaseUrl?: string;
  /** Where the SQLite database (`voicebot.db`) lives, and an old `keys.json` is imported from. Default `./.voicebot`. */
  dataDir?: string;
  /** Client keys. Default: the storage's. */
  keys?: KeyStore;
  /** Signs session tokens (≥ 32 bytes). Default: random per process (tokens die with it). */
  tokenSecret?: string;
  tokenTtlSeconds?: number;
  providers?: ProvidersConfig;
  /**
   * A `fetch` for the upstream calls instead of the default, undici's `request` API with Node
   * streams (no `Headers`/`Response`/web stream per call). Pass `globalThis.fetch`, or a fetch
   * that goes through a proxy; it costs more CPU per call and per streamed chunk.
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
  /** The knowledge base bots search (`knowledge` in a bot's config). Default: in the relay's database, embedded by `providers.embeddings`. */
  knowledge?: KnowledgeBase;
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
  staticDirs?: StaticDir[];
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
  /** Webhook endpoints for every bot's events (bots may add their own in `webhooks`). */
  webhooks?: WebhookEndpointConfig[];
  /** Where webhook secrets (`secretEnv`) are read from. Default: the process environment. */
  webhookEnv?: Record<string, string | undefined>;
  /**
   * Background timings of records and webhooks, for tests: how often ended conversations are
   * looked for (default 15 s), how often the outbox is polled (default 2 s), the retry schedule
   * (default 30 s doubling, capped at 1 h, for a day).
   */
  recordsTiming?: { sweepMs?: number; webhookPollMs?: number; webhookRetry?: RetrySchedule };
  /** How often expired console sessions end and their try-out keys are revoked (default 60 s; for tests). */
  consoleSweepMs?: number;
}

export interface Relay {
  /** The Hono app: mount it, or pass `app.fetch` to any server. */
  app: Hono;
  /** Give this to `@hono/node-server`'s `serve({ websocket: { server } })` to enable `/v1/talk`. */
  websocketServer: WebSocketServer;
  keys: KeyStore;
  /** The database the relay uses. */
  storage: Storage;
  /** The knowledge base (`kb add` from code: `relay.knowledge.add([...], { collection })`). */
  knowledge: KnowledgeBase;
  /**
   * Resolves once the database is migrated (and an old `keys.json` imported); rejects with a
   * `StorageError` naming the database (never its password) when it cannot be reached. `listen`
   * waits for it; `/v1/*` and `/admin` requests made before wait too.
   */
  ready(): Promise<void>;
  tokens: SessionTokens;
  logger: Logger;
  /** Starts an HTTP server with the WebSocket wiring (port 0 = any free port). */
  listen(
    port: number,
    hostname?: string,
  ): Promise<{ server: ServerType; url: string; port: number }>;
  /** Closes every session and the servers started by `listen`. */
  close(): Promise<void>;
  /** Graceful stop: new sessions get 503, turns in flight finish (≤ `graceMs`), sockets close with 1001, then `close()`. */
  shutdown(options?: ShutdownOptions): Promise<void>;
  /** Prometheus registry of this relay (served at `/metrics` when enabled). */
  metrics: Hardening['metrics']['registry'];
  /** Per-key usage counters. */
  usage: UsageStore;
  /** Conversation records (bots with `records`): the store, and the end-of-conversation sweep. */
  records: ConversationRecords;
  /** The webhook outbox: `enqueue` events, list deliveries. */
  webhooks: DbWebhookOutbox;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1']);

/** One runner per bot, holding the tools the bot lists (an unknown name is a configuration error). */
function buildToolRunners(
  bots: readonly BotConfig[],
  options: RelayOptions,
  webhooks: WebhookSink,
  knowledge: KnowledgeBase,
): Map<string, ToolRunner> {
  const policy = { allowHosts: options.toolAllowHosts ?? [] };
  const available = new Map<string, ToolDefinition>();
  for (const tool of [
    ...(options.tools ?? []),
    ...(options.httpTools ?? []).map((config) =>
      createHttpTool(config, policy, options.toolEnv ?? {}),
    ),
  ]) {
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
      if (bot.handoff) {
        if (tools.some((tool) => tool.name === HANDOFF_TOOL_NAME))
          throw new ConfigError(
            `bot ${bot.id} has handoff and lists a tool named ${HANDOFF_TOOL_NAME}: rename that tool`,
          );
        tools.push(createHandoffTool(bot.id, bot.handoff, webhooks));
      }
      if (bot.knowledge?.length) {
        if (tools.some((tool) => tool.name === SEARCH_KNOWLEDGE_TOOL))
          throw new ConfigError(
            `bot ${bot.id} has knowledge and lists a tool named ${SEARCH_KNOWLEDGE_TOOL}: rename that tool`,
          );
        tools.push(searchKnowledgeTool(knowledge, bot.knowledge) as ToolDefinition);
      }
      for (const config of bot.clientTools ?? []) {
        if (tools.some((tool) => tool.name === config.name))
          throw new ConfigError(
            `bot ${bot.id} has a page-side tool and a server tool named ${config.name}: rename one`,
          );
        tools.push(clientTool(config));
      }
      return [bot.id, new ToolRunner(tools)];
    }),
  );
}

/** Logs the collections bots list that do not exist (yet): `voicebot-relay kb add` makes them. */
function warnAboutMissingCollections(
  bots: readonly BotConfig[],
  knowledge: KnowledgeBase,
  logger: Logger,
): void {
  const wanted = new Set(bots.flatMap((bot) => bot.knowledge ?? []));
  if (wanted.size === 0) return;
  knowledge.collections().then(
    (collections) => {
      const existing = new Set(collections.map((c) => c.name));
      for (const name of wanted)
        if (!existing.has(name))
          logger.warn(
            {
              collection: name,
              bots: bots.filter((b) => b.knowledge?.includes(name)).map((b) => b.id),
            },
            `knowledge collection ${name} does not exist yet: add documents with voicebot-relay kb add <files|urls> --collection ${name}`,
          );
    },
    (error: unknown) =>
      logger.warn({ err: (error as Error).message }, 'knowledge collections could not be listed'),
  );
}

export function createRelay(given: RelayOptions = {}): Relay {
  // What the options leave out comes from the environment, read and checked once (settings.ts).
  const env = relayEnv();
  const options: RelayOptions = {
    adminToken: env.adminToken,
    metricsToken: env.metricsToken,
    metrics: env.metrics,
    trustProxy: env.trustProxy,
    publicUrl: env.publicUrl,
    toolEnv: processEnv(),
    ...given,
  };
  const textDeltaIntervalMs = textDeltaInterval(options.textDeltaIntervalMs);
  const logger = options.logger ?? createLogger({ level: env.logLevel });
  const givenStorage = options.storage ?? (options.keys && storageOfKeys(options.keys));
  const storage =
    givenStorage ??
    createStorage({
      databaseUrl: options.databaseUrl ?? env.databaseUrl,
      dataDir: options.dataDir ?? '.voicebot',
      logger,
    });
  // A storage the relay opened itself (or the one behind `KeyStore.inDataDir`) closes with it.
  const ownsStorage = options.storage === undefined;
  const keys = options.keys ?? storage.keys;
  const bots = (options.bots ?? [DEFAULT_BOT]).map((bot) =>
    bot.handoff ? { ...bot, systemPrompt: promptWithHandoff(bot.systemPrompt, bot.handoff) } : bot,
  );
  validateBots(bots);
  const limits: LimitsConfig = { ...DEFAULT_LIMITS, ...options.limits };
  const providers = options.providers ?? providersFromEnv();
  const state =
    options.state ??
    localState({
      conversationTtlMs: limits.conversationTtlMs,
      maxConversations: limits.maxConversations,
      usedTokens: storage.usedTokens,
      usageLedger: storage.usage,
      conversations: storage.conversations(limits.conversationTtlMs),
    });
  const tokens = new SessionTokens(
    options.tokenSecret ?? randomBytes(32).toString('base64url'),
    options.tokenTtlSeconds,
    (jti, expiresAt) => state.claimToken(jti, expiresAt),
  );
  const conversations = state.conversations;
  validateRecordsConfig(bots);
  const webhookEndpoints = resolveWebhooks(
    bots,
    options.webhooks ?? [],
    options.webhookEnv ?? processEnv(),
  );
  for (const bot of bots)
    if (
      bot.handoff?.targets?.webhook &&
      endpointsFor(webhookEndpoints, bot.id, 'handoff.requested').length === 0
    )
      logger.warn(
        { bot: bot.id },
        'handoff.targets.webhook is on but no webhook endpoint takes handoff.requested: nobody is notified (add one to webhooks)',
      );
  const timing = options.recordsTiming ?? {};
  const outbox = new DbWebhookOutbox(storage, webhookEndpoints, timing.webhookRetry);
  const dispatcher = new WebhookDispatcher({
    storage,
    endpoints: webhookEndpoints,
    policy: { allowHosts: options.toolAllowHosts ?? [] },
    log: logger,
    retry: timing.webhookRetry,
    pollMs: timing.webhookPollMs,
  });
  outbox.onEnqueued = () => dispatcher.kick();
  // The knowledge base (collections are data: one a bot lists but nobody made yet is only a warning).
  const knowledge =
    options.knowledge ??
    new KnowledgeBase({
      storage,
      embeddings: embeddingsStage(providers),
      allowHosts: options.toolAllowHosts ?? [],
      logger,
    });
  const toolRunners = buildToolRunners(bots, options, outbox, knowledge);
  if (!hasProvider(providers)) {
    logger.warn(
      'no provider configured: every turn will fail (upstream_*). Set OPENAI_API_KEY, or VOICEBOT_{STT,LLM,TTS}_BASE_URL for a local server, or pass createRelay({ providers })',
    );
  }
  warnAboutRefusedToolHosts(
    options.httpTools ?? [],
    options.toolAllowHosts ?? [],
    logger,
    options.toolEnv ?? {},
  );
  const staticDirs = [...(options.staticDirs ?? [])];
  if (options.widget) {
    const dir = widgetAssetsDir();
    if (!dir)
      throw new ConfigError(
        'widget: true needs the @voice-bot/widget package installed beside @voice-bot/relay (npm i @voice-bot/widget)',
      );
    staticDirs.push({ urlPath: '/widget/', dir });
  }
  const sessions = new Set<TalkSession>();
  const servers = new Set<ServerType>();
  const hardening = new Hardening({ options, limits, keys, bots, logger, state, storage });
  const clients = createProviderClients(providers, options.upstreamFetch, {
    observer: hardening.metrics,
    log: logger,
  });
  const records = new ConversationRecords({
    storage,
    bots,
    limits,
    providers,
    clients,
    usage: hardening.usage,
    keys,
    webhooks: outbox,
    log: logger,
    sweepMs: timing.sweepMs,
  });
  const hasWebhooks =
    webhookEndpoints.global.length > 0 ||
    [...webhookEndpoints.byBot.values()].some((list) => list.length > 0);
  let readiness: Promise<void> | undefined;
  let isReady = false;
  const ready = (): Promise<void> => {
    readiness ??= storage.ready().then(
      () => {
        isReady = true;
        storage.monitor();
        warnAboutMissingCollections(bots, knowledge, logger);
        records.start();
        if (hasWebhooks) dispatcher.start();
      },
      (error: unknown) => {
        readiness = undefined;
        throw error;
      },
    );
    return readiness;
  };
  const waitReady = async (_c: unknown, next: () => Promise<void>) => {
    if (!isReady) {
      try {
        await ready();
      } catch (error) {
        logger.error({ err: (error as Error).message }, 'database not ready');
        throw storageUnavailableError();
      }
    }
    await next();
  };
  const writes = new WriteBatcher();

  const websocketServer = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxAudioFrameBytes,
    perMessageDeflate: false,
    handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });

  const errors = {
    onError: errorHandler({ countError: (code) => hardening.metrics.error(code), log: logger }),
    notFound: notFoundHandler({ countError: (code) => hardening.metrics.error(code) }),
  };
  const app = new Hono();
  app.use('*', securityHeaders());
  // Liveness: 503 while draining or while the database (or shared state) does not answer.
  app.get('/healthz', (c) => {
    if (hardening.draining) return c.json({ ok: false, draining: true }, 503);
    const health = hardening.health();
    return c.json(health, health.ok ? 200 : 503);
  });
  // Readiness: 200 only when migrated, the database answers, and the relay is not draining.
  app.get('/readyz', (c) => {
    const health = hardening.health();
    if (isReady && health.ok && !hardening.draining) return c.json({ ready: true });
    return c.json(
      {
        ready: false,
        ...(isReady ? {} : { reason: 'starting' }),
        ...(hardening.draining ? { reason: 'draining' } : {}),
        ...(health.ok ? {} : { database: health.database, state: health.state }),
      },
      503,
    );
  });
  app.use('/v1/*', waitReady);
  app.use('/admin/*', waitReady);
  app.use('/admin', waitReady);
  const metricsRoutes = hardening.metricsRoutes();
  if (metricsRoutes) app.route('/', metricsRoutes);
  let consoleApp: ConsoleRoutes | undefined;
  if (hardening.adminToken !== undefined) {
    const admin = {
      token: hardening.adminToken,
      keys,
      audit: storage.audit,
      clientIp: (c: Context) => hardening.clientIp(c),
      usage: hardening.usage,
      registry: hardening.registry,
      state,
      bots,
      limits,
      log: logger,
      errors,
      conversations: { records: records.store, webhooks: outbox },
      knowledge,
      console: consoleAdminDeps(storage, (c: Context) => hardening.clientIp(c)),
      db: async () => (await storage.ready(), storage.db),
    };
    app.route('/admin', createAdminApp(admin));
    consoleApp = consoleRoutes({
      ...admin,
      ...admin.console,
      storage,
      widgetUrl: options.widget ? '/widget/voice-bot.esm.js' : undefined,
      closeKey: (id) => (state.announceRevoked(id), hardening.registry.closeKey(id)),
      publicUrl: options.publicUrl,
      sweepMs: options.consoleSweepMs,
    });
    app.route('/', consoleApp.app);
  }
  app.route(
    '/',
    sessionRoutes({
      keys,
      bots,
      tokens,
      hardening,
      logger,
      publicUrl: options.publicUrl,
      botInfoRate: new RequestRate(state, 'bot-info-ip', limits.botInfoPerMinutePerIp),
    }),
  );
  app.route(
    '/',
    talkRoutes({
      keys,
      bots,
      tokens,
      hardening,
      writes,
      logger,
      openSession: ({ sessionId, claims, bot, limits: talkLimits, log }, socket, guard) => {
        const session = new TalkSession({
          id: sessionId,
          keyId: claims.keyId,
          bot,
          providers,
          clients,
          conversations,
          tools: toolRunners.get(bot.id) as ToolRunner,
          limits: talkLimits,
          textDeltaIntervalMs,
          socket,
          log,
          policy: guard.policy,
          records,
          user: claims.user,
        });
        sessions.add(session);
        return session;
      },
      closed: (session) => {
        session.onClose();
        sessions.delete(session);
      },
    }),
  );
  app.route('/', staticRoutes(staticDirs));
  app.notFound(errors.notFound);
  app.onError(errors.onError);

  return {
    app,
    websocketServer,
    keys,
    storage,
    knowledge,
    ready,
    tokens,
    logger,
    metrics: hardening.metrics.registry,
    usage: hardening.usage,
    records,
    webhooks: outbox,
    async shutdown(shutdownOptions) {
      await hardening.shutdown(shutdownOptions);
      await this.close();
    },
    async listen(port, hostname = '127.0.0.1') {
      await ready();
      if (!options.publicUrl && !LOOPBACK_HOSTS.has(hostname)) {
        logger.warn(
          { host: hostname },
          "listening beyond loopback without publicUrl: ws_url is built from each request's Host header; set publicUrl (voicebot.config.json or createRelay) to the address visitors use",
        );
      }
      return new Promise((resolve) => {
        const server = serve(
          { fetch: app.fetch, port, hostname, websocket: { server: websocketServer } },
          (info: AddressInfo) => {
            resolve({
              server,
              url: `http://${hostname.includes(':') ? `[${hostname}]` : hostname}:${info.port}`,
              port: info.port,
            });
          },
        );
        servers.add(server);
      });
    },
    async close() {
      await hardening.close();
      consoleApp?.close();
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
      await records.close();
      await dispatcher.close();
      if (ownsStorage) await storage.close();
    },
  };
}
