#!/usr/bin/env node
import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRelay, type RelayOptions } from '../relay.js';
import {
  defaultWorkerCount,
  isRelayClusterWorker,
  startClusterPrimary,
} from '../state/cluster/primary.js';
import { clusterWorkerState } from '../state/cluster/worker.js';
import { redisState } from '../state/redis/index.js';
import type { SharedState } from '../state/shared-state.js';
import {
  ConfigError,
  DEFAULT_LIMITS,
  applyConfigFile,
  defaultDataDir,
  hasProvider,
  loadTokenSecret,
  providersFromEnv,
  type ConfigFile,
  type LimitsConfig,
} from '../config/config.js';
import {
  DEMO_COLLECTION,
  clinicHours,
  ensureDemoKey,
  ingestDemoClinic,
  startDemoUpstream,
} from './demo.js';
import type { AuditActor } from '../auth/keys.js';
import { createLogger, type Logger } from '../logger.js';
import { InvalidOriginPattern } from '../auth/origins.js';
import { processEnv, readConfigFile, relayEnv, serveEnv } from '../config/settings.js';
import { StorageError } from '../store/database.js';
import { MissingDependencyError } from '../dependencies.js';
import { createStorage, openStorage, type Storage } from '../store/storage.js';
import { widgetAssetsDir } from '../http/widget-assets.js';
import { consoleAssetsDir } from '../http/console.js';
import { KB_USAGE, KbUsageError, kbCommand } from './kb.js';
import { KnowledgeError } from '../knowledge/errors.js';

const USAGE = `voicebot-relay — the voice-bot relay

Usage:
  voicebot-relay serve [--port N] [--host H] [--config FILE] [--workers N|auto] [--demo]
  voicebot-relay keys create --origin URL [--origin URL …] [--bot ID …] [--label TEXT] [--json]
  voicebot-relay keys list [--json]
  voicebot-relay keys revoke ID
  voicebot-relay keys visitor-secret ID [--remove]  a new secret that signs visitor tokens (signed-in visitors)
  voicebot-relay db migrate  apply the database migrations and exit (serve applies them too)
${KB_USAGE}
Environment:
  PORT, HOST                 where to listen (default 8787, 127.0.0.1)
  VOICEBOT_WORKERS           relay processes sharing the port: a number or auto (one per core); default 1
  VOICEBOT_DATA_DIR          SQLite database (voicebot.db) and generated secrets (default ./.voicebot)
  DATABASE_URL               postgres://user:password@host:5432/db: keys, usage, conversations and
                             used tokens in PostgreSQL instead of SQLite
  REDIS_URL                  redis://[:password@]host:6379: token claims, rate limits, concurrency
                             slots, quota counters and revocations shared by a fleet of relays
  VOICEBOT_PUBLIC_URL        the address visitors use (ws_url in session grants), behind a proxy
  VOICEBOT_SECRET            signs session tokens (≥ 32 chars; default: generated into the data dir;
                             every relay of a fleet needs the same one)
  OPENAI_API_KEY, OPENAI_BASE_URL              provider for every stage
  VOICEBOT_{STT,LLM,TTS}_{BASE_URL,API_KEY,MODEL}  per-stage overrides; VOICEBOT_TTS_VOICE
  VOICEBOT_{STT,LLM,TTS}_FALLBACK_{BASE_URL,API_KEY,MODEL}  a provider each stage fails over to
  VOICEBOT_EMBEDDINGS_{BASE_URL,API_KEY,MODEL}      the knowledge base's embeddings (default text-embedding-3-small)
  VOICEBOT_ADMIN_TOKEN       enables the admin API under /admin (≥ 16 chars)
  VOICEBOT_METRICS_TOKEN     enables GET /metrics behind this bearer token (VOICEBOT_METRICS=public: no token, =off: never)
  VOICEBOT_TRUST_PROXY=1     take the client IP from X-Forwarded-For (behind one reverse proxy)
  VOICEBOT_SHUTDOWN_GRACE_MS on SIGTERM, how long turns in flight may finish (default 10000)
`;

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

function fail(message: string): never {
  process.stderr.write(`voicebot-relay: ${message}\n`);
  process.exit(1);
}

async function serveCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      config: { type: 'string' },
      workers: { type: 'string' },
      demo: { type: 'boolean', default: false },
    },
  });
  const served = serveEnv();
  const workers = parseWorkers(values.workers ?? served.workers);
  if (workers > 1 && values.demo) fail('--demo runs one relay process; leave out --workers');
  const port = values.port === undefined ? served.port : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`invalid port ${values.port}`);
  const host = values.host ?? served.host;
  const dataDir = defaultDataDir();
  const configPath =
    values.config ?? (existsSync('voicebot.config.json') ? 'voicebot.config.json' : undefined);
  const file: ConfigFile = configPath ? await readConfigFile(configPath) : {};
  const env = processEnv();
  const settings = applyConfigFile(file, env, providersFromEnv(env));
  if (workers > 1 && cluster.isPrimary)
    return runPrimary(workers, dataDir, settings.limits ?? DEFAULT_LIMITS, served.shutdownGraceMs);
  // `{{env.NAME}}` in tool templates; VOICEBOT_URL is added once the relay listens.
  const toolEnv: Record<string, string | undefined> = { ...env };
  const worker = isRelayClusterWorker() ? cluster.worker : undefined;
  const clusterWorker = worker ? clusterWorkerState() : undefined;
  const vars = relayEnv(env);
  const logger = worker
    ? createLogger({ level: vars.logLevel }).child({ worker: worker.id, pid: process.pid })
    : createLogger({ level: vars.logLevel });
  const fleet = vars.redisUrl
    ? await fleetState(vars.redisUrl, vars.databaseUrl, dataDir, settings.limits, logger)
    : undefined;
  // In a cluster with Redis, Redis is the shared state; the primary still sums the metrics and
  // relays the shutdown.
  const state: SharedState | undefined = fleet
    ? {
        ...fleet.state,
        ...(clusterWorker
          ? {
              registerMetrics: clusterWorker.registerMetrics,
              clusterMetrics: clusterWorker.clusterMetrics,
              close: async () => {
                await fleet.state.close();
                await clusterWorker.close();
              },
            }
          : {}),
      }
    : clusterWorker;
  let providers = settings.providers ?? providersFromEnv();
  let closeDemo: (() => Promise<void>) | undefined;
  const offline = values.demo && !hasProvider(providers);
  if (offline) {
    const demo = await startDemoUpstream();
    providers = demo.providers;
    closeDemo = demo.close;
  }
  const staticDirs: NonNullable<RelayOptions['staticDirs']> = [];
  const widget = widgetAssetsDir() !== undefined;
  if (!widget)
    logger.warn(
      '@voice-bot/widget is not installed beside the relay: /widget/ (the script tag) is not served. npm i @voice-bot/widget to serve it',
    );
  const sdkDist = resolve(repoRoot, 'packages/sdk/dist/browser');
  if (values.demo && existsSync(sdkDist)) staticDirs.push({ urlPath: '/sdk/', dir: sdkDist });
  // The demo's pages and scripts only: its folder also holds voicebot.config.json. They ship with
  // the repository, not the npm package (installed, `repoRoot` is the project's node_modules).
  const demoDir = resolve(repoRoot, 'demo');
  const demoPages = existsSync(resolve(demoDir, 'voicebot.config.json'));
  if (values.demo && demoPages)
    staticDirs.push({ urlPath: '/', dir: demoDir, extensions: ['.html', '.css', '.js'] });
  else if (values.demo)
    logger.warn('the demo pages ship with the repository, not the npm package: / is not served');

  const relay = createRelay({
    ...settings,
    providers,
    dataDir,
    tokenSecret: await loadTokenSecret(dataDir),
    staticDirs,
    widget,
    toolEnv,
    logger,
    ...(state ? { state } : {}),
    ...(fleet ? { storage: fleet.storage } : {}),
  });
  // The demo page asks for its key here; the key is made once the real port is known.
  let demoConfig: { key: string; offline: boolean } | undefined;
  if (values.demo) {
    relay.app.get('/demo-config.json', (c) =>
      demoConfig ? c.json(demoConfig) : c.json({ error: 'starting' }, 503),
    );
    relay.app.get('/demo-api/hours', (c) => c.json(clinicHours(c.req.query('day'))));
    // Made now (filled once the port is known), so the relay does not warn that it is missing.
    await relay.knowledge.createCollection(DEMO_COLLECTION);
  }
  const { url, port: boundPort } = await relay.listen(port, host).catch(async (error: unknown) => {
    await closeDemo?.();
    throw error;
  });
  // HTTP tools in the config may build URLs from it (the demo's clinic API lives on this relay).
  toolEnv.VOICEBOT_URL ??= url;
  const shown = url.replace('127.0.0.1', 'localhost');
  let demoKeySecret: string | undefined;
  if (values.demo) {
    const origins = [`http://localhost:${boundPort}`, `http://127.0.0.1:${boundPort}`];
    const demoKey = await ensureDemoKey(relay.keys, dataDir, origins);
    demoKeySecret = demoKey.key;
    demoConfig = { key: demoKey.key, offline };
  }
  if (values.demo) {
    // The assistant answers from the clinic's pages, indexed from the files this relay serves.
    const indexed = await ingestDemoClinic(relay.knowledge, demoDir, shown).catch(
      (error: unknown) => {
        relay.logger.warn({ err: (error as Error).message }, 'demo knowledge base not indexed');
        return undefined;
      },
    );
    if (indexed)
      relay.logger.info(
        {
          collection: indexed.collection,
          added: indexed.added,
          updated: indexed.updated,
          unchanged: indexed.unchanged,
          failed: indexed.failed,
        },
        'demo knowledge base ready',
      );
  }
  // The console is served when there is an admin token; its address is worth printing, the token never.
  const consoleUrl =
    vars.adminToken !== undefined && consoleAssetsDir() !== undefined
      ? `${shown}/console/`
      : undefined;
  relay.logger.info(
    { url: shown, demo: values.demo, offline, ...(consoleUrl ? { console: consoleUrl } : {}) },
    'relay listening',
  );
  if (values.demo) {
    process.stdout.write(
      `\n  voice-bot demo:   ${shown}/\n  dev client key:   ${demoKeySecret} (allowed on http://localhost:${boundPort})\n` +
        (consoleUrl
          ? `  console:          ${consoleUrl} (sign in with VOICEBOT_ADMIN_TOKEN)\n`
          : '') +
        (offline
          ? '  provider:         OFFLINE DEMO (scripted replies, tone instead of voice).\n' +
            '                    Set OPENAI_API_KEY (or VOICEBOT_*_BASE_URL for a local server) for real answers.\n\n'
          : '  provider:         configured from the environment\n\n'),
    );
  }
  // SIGTERM/SIGINT: refuse new sessions (503), let turns in flight finish, close sockets with 1001.
  // A second signal stops at once.
  const graceMs = served.shutdownGraceMs;
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await relay.shutdown({ graceMs });
    await fleet?.storage.close();
    await closeDemo?.();
    process.exit(0);
  };
  let signalled = false;
  const onSignal = () => {
    if (signalled) process.exit(1);
    signalled = true;
    void shutdown();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // In a cluster the primary asks too (on its own SIGINT/SIGTERM). A terminal's Ctrl-C signals this
  // process as well, in either order, so the request does not count as a second signal. (A primary
  // that dies takes its workers with it: Node's cluster exits a worker whose channel closes.)
  clusterWorker?.onShutdown(() => void shutdown());
}

/**
 * `REDIS_URL`: the database (opened and migrated now) and the Redis state a fleet of relays
 * shares. Either unreachable: a clear message and exit code 1.
 */
async function fleetState(
  redisUrl: string,
  databaseUrl: string | undefined,
  dataDir: string,
  limits: Partial<LimitsConfig> | undefined,
  logger: Logger,
): Promise<{ storage: Storage; state: SharedState }> {
  if (!databaseUrl)
    logger.warn(
      "REDIS_URL is set but DATABASE_URL is not: keys, usage and conversations stay in this machine's SQLite file, so other machines neither see them nor resume its conversations. Set DATABASE_URL for a fleet",
    );
  const storage = await openStorage({ databaseUrl, dataDir, logger });
  try {
    const ttl = { ...DEFAULT_LIMITS, ...limits }.conversationTtlMs;
    const state = await redisState({
      url: redisUrl,
      conversations: storage.conversations(ttl),
      ledger: storage.usage,
      logger,
    });
    return { storage, state };
  } catch (error) {
    await storage.close();
    fail((error as Error).message);
  }
}

/** `--workers`: a count, or `auto` for one per core. */
function parseWorkers(value: string | undefined): number {
  if (value === undefined || value === '') return 1;
  if (value === 'auto') return defaultWorkerCount();
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1 || count > 256)
    fail(`invalid worker count ${value} (a number from 1 to 256, or auto)`);
  return count;
}

/**
 * The primary process of `serve --workers N`: it forks the workers (which run this command again,
 * as cluster workers) and keeps what they share. It serves nothing itself.
 */
async function runPrimary(
  workers: number,
  dataDir: string,
  limits: typeof DEFAULT_LIMITS,
  shutdownGraceMs: number,
): Promise<void> {
  const logger = createLogger({ level: relayEnv().logLevel }).child({ worker: 'primary' });
  // Made here once, so the workers read the same secret rather than racing to create it.
  await loadTokenSecret(dataDir);
  // Migrated here before the workers start, so they find the database ready.
  const storage = await openStorage({ databaseUrl: relayEnv().databaseUrl, dataDir, logger });
  storage.monitor();
  const primary = startClusterPrimary({
    workers,
    logger,
    shutdownGraceMs,
    usedTokens: storage.usedTokens,
    usageLedger: storage.usage,
    conversations: storage.conversations(limits.conversationTtlMs),
    conversationTtlMs: limits.conversationTtlMs,
    maxConversations: limits.maxConversations,
  });
  let stopping = false;
  const shutdown = async () => {
    if (stopping) process.exit(1);
    stopping = true;
    await primary.shutdown();
    await storage.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
}

/** The database `keys` and `db` use: `DATABASE_URL`, else SQLite in the data dir. */
function cliStorage(): Storage {
  return createStorage({ databaseUrl: relayEnv().databaseUrl, dataDir: defaultDataDir() });
}

/** Who ran the command, for the audit log. */
function cliActor(): AuditActor {
  try {
    return { kind: 'cli', user: userInfo().username };
  } catch {
    return { kind: 'cli', user: 'unknown' };
  }
}

async function keysCommand(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (
    action !== 'create' &&
    action !== 'list' &&
    action !== 'revoke' &&
    action !== 'visitor-secret'
  )
    fail(`unknown keys action ${JSON.stringify(action ?? '')}\n\n${USAGE}`);
  const storage = cliStorage();
  try {
    await storage.ready();
    await keysAction(storage, action, rest);
  } finally {
    await storage.close();
  }
}

async function keysAction(storage: Storage, action: string, rest: string[]): Promise<void> {
  const keys = storage.keys;
  if (action === 'create') {
    const { values } = parseArgs({
      args: rest,
      options: {
        origin: { type: 'string', multiple: true },
        bot: { type: 'string', multiple: true },
        label: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
    if (!values.origin?.length)
      fail('keys create needs at least one --origin (e.g. --origin https://www.example.com)');
    const { record, secret } = await keys.create(
      {
        origins: values.origin,
        bots: values.bot ?? [],
        label: values.label ?? '',
      },
      cliActor(),
    );
    if (values.json)
      process.stdout.write(
        `${JSON.stringify({ id: record.id, key: secret, origins: record.origins, bots: record.bots })}\n`,
      );
    else {
      process.stdout.write(
        `Created ${record.id}\n  key:     ${secret}\n  origins: ${record.origins.join(', ')}\n  bots:    ${record.bots.length ? record.bots.join(', ') : 'all'}\n` +
          'The key is shown only this once. It is publishable: put it in your page; only the origins above can use it.\n',
      );
    }
    return;
  }
  if (action === 'list') {
    const { values } = parseArgs({
      args: rest,
      options: { json: { type: 'boolean', default: false } },
    });
    const list = (await keys.list()).map(({ hash: _hash, ...record }) => record);
    if (values.json) {
      process.stdout.write(`${JSON.stringify(list)}\n`);
      return;
    }
    if (list.length === 0)
      process.stdout.write(
        'No keys yet. Create one with: voicebot-relay keys create --origin https://www.example.com\n',
      );
    for (const k of list) {
      process.stdout.write(
        `${k.id}  …${k.hint}  ${k.revoked_at ? 'REVOKED' : 'active '}  ${k.origins.join(',')}  bots=${k.bots.length ? k.bots.join(',') : 'all'}  ${k.label}\n`,
      );
    }
    return;
  }
  if (action === 'visitor-secret') {
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { remove: { type: 'boolean', default: false } },
    });
    const id = positionals[0];
    if (!id) fail('keys visitor-secret needs a key id (see keys list)');
    const set = await keys.setVisitorSecret(id, cliActor(), values.remove);
    if (!set) {
      process.exitCode = 1;
      process.stderr.write(`voicebot-relay: no key with id ${id}\n`);
      return;
    }
    process.stdout.write(
      set.secret
        ? `Visitor secret of ${id} (any earlier one no longer works):\n  ${set.secret}\n` +
            "Keep it on your site's server (never in a page): it signs visitor tokens (HS256). Shown only this once.\n"
        : `Removed the visitor secret of ${id}\n`,
    );
    return;
  }
  if (action === 'revoke') {
    const id = rest[0];
    if (!id) fail('keys revoke needs a key id (see keys list)');
    if (!(await keys.revoke(id, cliActor()))) {
      process.exitCode = 1;
      process.stderr.write(`voicebot-relay: no key with id ${id}\n`);
      return;
    }
    process.stdout.write(`Revoked ${id}\n`);
  }
}

/** `db migrate`: applies what is pending and says what it did (exit 1 when it cannot). */
async function dbCommand(args: string[]): Promise<void> {
  const [action] = args;
  if (action !== 'migrate') fail(`unknown db action ${JSON.stringify(action ?? '')}\n\n${USAGE}`);
  const storage = cliStorage();
  try {
    await storage.ping();
    const applied = await storage.migrate();
    if (applied.length === 0) process.stdout.write(`${storage.display}: up to date\n`);
    for (const name of applied) process.stdout.write(`${storage.display}: applied ${name}\n`);
  } finally {
    await storage.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'serve') return serveCommand(rest);
  if (command === 'keys') return keysCommand(rest);
  if (command === 'db') return dbCommand(rest);
  if (command === 'kb') return kbCommand(rest);
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return;
  }
  fail(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (
    error instanceof ConfigError ||
    error instanceof InvalidOriginPattern ||
    error instanceof StorageError ||
    error instanceof MissingDependencyError ||
    error instanceof KbUsageError ||
    error instanceof KnowledgeError ||
    (error instanceof Error && error.name === 'TypeError' && 'code' in error)
  ) {
    fail(error.message);
  }
  throw error;
});
