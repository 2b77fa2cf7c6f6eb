/**
 * Everything the relay takes from outside — `voicebot.config.json` and the environment — parsed
 * and checked once, here, into typed values. Errors name the field and where it came from. No
 * other module reads `process.env`.
 */
import { readFile } from 'node:fs/promises';
import * as v from 'valibot';
import {
  ConfigError,
  DEFAULT_LIMITS,
  type ConfigFile,
  type Env,
  type LimitsConfig,
} from './config.js';
import { isChatUrl, isEmailAddress, isPhoneNumber } from '../handoff/handoff.js';

const text = v.pipe(v.string(), v.minLength(1, 'must not be empty'));
const count = v.pipe(v.number(), v.integer('must be a whole number'), v.minValue(0, 'must be ≥ 0'));
const strings = v.array(v.string());

const WebhookSchema = v.strictObject({
  url: v.pipe(v.string(), v.url('must be a URL such as https://example.com/hooks/voicebot')),
  events: v.optional(
    v.pipe(v.array(v.picklist(['conversation.ended', 'handoff.requested'])), v.minLength(1)),
  ),
  secretEnv: v.pipe(v.string(), v.regex(/^\w{1,128}$/, 'must be an environment variable name')),
});

const RecordsSchema = v.strictObject({
  transcripts: v.boolean(),
  retentionDays: v.pipe(v.number(), v.minValue(0.0001, 'must be > 0'), v.maxValue(3650)),
  redact: v.optional(v.array(v.picklist(['email', 'phone', 'card']))),
});

const HandoffSchema = v.strictObject({
  guidance: v.optional(v.string()),
  guidanceIn: v.optional(v.picklist(['tool', 'prompt'])),
  requireContact: v.optional(v.boolean()),
  targets: v.pipe(
    v.strictObject({
      webhook: v.optional(v.boolean()),
      phone: v.optional(
        v.pipe(v.string(), v.check(isPhoneNumber, 'must be a phone number such as +1 555 0100')),
      ),
      email: v.optional(v.pipe(v.string(), v.check(isEmailAddress, 'must be an email address'))),
      chatUrl: v.optional(
        v.pipe(v.string(), v.check(isChatUrl, 'must be an https URL (http only on localhost)')),
      ),
    }),
    v.check(
      (t) => Boolean(t.webhook || t.phone || t.email || t.chatUrl),
      'needs at least one of webhook, phone, email, chatUrl',
    ),
  ),
  message: v.optional(v.string()),
});

const LinkHostSchema = v.pipe(
  v.string(),
  v.regex(
    /^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:\d+)?$/i,
    'must be a host such as example.com or *.example.com',
  ),
);

const ClientToolSchema = v.strictObject({
  name: v.pipe(
    v.string(),
    v.regex(/^[a-zA-Z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -'),
  ),
  description: v.string(),
  parameters: v.optional(v.record(v.string(), v.unknown())),
  timeoutMs: v.optional(
    v.pipe(count, v.minValue(100, 'must be ≥ 100'), v.maxValue(60_000, 'must be ≤ 60000')),
  ),
});

const BotSchema = v.looseObject({
  id: text,
  name: v.optional(v.string()),
  systemPrompt: v.string(),
  greeting: v.optional(v.string()),
  language: v.optional(v.string()),
  sttModel: v.optional(text),
  chatModel: v.optional(text),
  ttsModel: v.optional(text),
  voice: v.optional(text),
  temperature: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(2))),
  maxTokens: v.optional(v.pipe(count, v.minValue(1, 'must be ≥ 1'))),
  tools: v.optional(strings),
  toolFiller: v.optional(v.string()),
  maxToolRounds: v.optional(count),
  speculation: v.optional(v.boolean()),
  knowledge: v.optional(
    v.array(
      v.pipe(
        v.string(),
        v.regex(
          /^[a-z0-9][a-z0-9_-]{0,63}$/i,
          'must be a collection name (letters, digits, - or _)',
        ),
      ),
    ),
  ),
  handoff: v.optional(HandoffSchema),
  linkHosts: v.optional(v.array(LinkHostSchema)),
  records: v.optional(RecordsSchema),
  extract: v.optional(v.record(v.string(), v.unknown())),
  feedback: v.optional(v.boolean()),
  webhooks: v.optional(v.array(WebhookSchema)),
  clientTools: v.optional(v.pipe(v.array(ClientToolSchema), v.maxLength(32, 'at most 32'))),
});

const HttpToolSchema = v.looseObject({
  name: text,
  description: v.string(),
  parameters: v.record(v.string(), v.unknown()),
  http: v.looseObject({
    method: v.optional(v.picklist(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'])),
    url: text,
    headers: v.optional(v.record(v.string(), v.string())),
    body: v.optional(v.string()),
    timeoutMs: v.optional(v.pipe(count, v.minValue(1, 'must be ≥ 1'))),
    maxResponseBytes: v.optional(v.pipe(count, v.minValue(1, 'must be ≥ 1'))),
    followRedirects: v.optional(v.boolean()),
  }),
  metadata: v.optional(v.record(v.string(), v.string())),
  reply: v.optional(v.string()),
  public: v.optional(v.boolean()),
});

const StageSchema = v.strictObject({
  baseURL: v.optional(v.pipe(v.string(), v.url('must be a URL'))),
  model: v.optional(text),
  timeoutMs: v.optional(v.pipe(count, v.minValue(1, 'must be ≥ 1'))),
  maxRetries: v.optional(count),
  apiKeyEnv: v.optional(text),
});

/** A provider's label in metrics and logs. */
const ProviderNameSchema = v.pipe(
  v.string(),
  v.regex(/^[\w.:-]{1,64}$/, 'must be 1-64 letters, digits, _ . : or -'),
);

const FallbackSchema = v.strictObject({
  name: v.optional(ProviderNameSchema),
  baseURL: v.pipe(v.string(), v.url('must be a URL')),
  apiKeyEnv: v.optional(text),
  model: v.optional(text),
  timeoutMs: v.optional(v.pipe(count, v.minValue(1, 'must be ≥ 1'))),
  maxRetries: v.optional(count),
  firstByteTimeoutMs: v.optional(v.pipe(count, v.minValue(1, 'must be ≥ 1'))),
});

/** A stage with failover: its provider's name and first-byte timeout, then the providers after it. */
function failoverStage<T extends v.ObjectEntries>(extra: T) {
  return v.pipe(
    v.strictObject({
      ...StageSchema.entries,
      ...extra,
      name: v.optional(ProviderNameSchema),
      firstByteTimeoutMs: v.optional(v.pipe(count, v.minValue(1, 'must be ≥ 1'))),
      fallbacks: v.optional(
        v.pipe(
          v.array(v.strictObject({ ...FallbackSchema.entries, ...extra })),
          v.maxLength(4, 'at most 4 fallbacks'),
        ),
      ),
    }),
    v.check((stage) => {
      const names = [stage.name, ...(stage.fallbacks ?? []).map((f) => f.name)].filter(Boolean);
      return new Set(names).size === names.length;
    }, 'provider names must differ within a stage'),
  );
}

const LimitsSchema = v.strictObject(
  Object.fromEntries(
    Object.keys(DEFAULT_LIMITS).map((field) => [
      field,
      v.optional(v.pipe(v.number(), v.minValue(0, 'must be ≥ 0'))),
    ]),
  ) as Record<
    keyof LimitsConfig,
    v.OptionalSchema<
      v.SchemaWithPipe<readonly [v.NumberSchema<undefined>, v.MinValueAction<number, 0, string>]>,
      undefined
    >
  >,
);

const ConfigFileSchema = v.strictObject({
  $schema: v.optional(v.string()),
  bots: v.optional(v.array(BotSchema)),
  tools: v.optional(v.array(HttpToolSchema)),
  toolAllowHosts: v.optional(strings),
  webhooks: v.optional(v.array(WebhookSchema)),
  limits: v.optional(LimitsSchema),
  tokenTtlSeconds: v.optional(v.pipe(count, v.minValue(1, 'must be ≥ 1'))),
  publicUrl: v.optional(
    v.pipe(v.string(), v.url('must be a URL such as https://relay.example.com')),
  ),
  textDeltaIntervalMs: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(1000))),
  providers: v.optional(
    v.strictObject({
      stt: v.optional(failoverStage({})),
      llm: v.optional(failoverStage({})),
      tts: v.optional(failoverStage({ voice: v.optional(text) })),
      embeddings: v.optional(StageSchema),
      circuit: v.optional(
        v.strictObject({
          failures: v.optional(v.pipe(count, v.minValue(1, 'must be ≥ 1'))),
          openMs: v.optional(v.pipe(count, v.minValue(1, 'must be ≥ 1'))),
        }),
      ),
    }),
  ),
});

/** `bots[0].systemPrompt`, from a valibot issue path. */
function fieldPath(issue: v.BaseIssue<unknown>): string {
  let out = '';
  for (const item of issue.path ?? []) {
    const key = (item as { key?: unknown }).key;
    out += typeof key === 'number' ? `[${key}]` : out ? `.${String(key)}` : String(key);
  }
  return out || '(top level)';
}

/** Parses and checks the text of a `voicebot.config.json`; a mistake names the field and the file. */
export function parseConfigFile(text: string, path: string): ConfigFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  const result = v.safeParse(ConfigFileSchema, json);
  if (!result.success) {
    const lines = result.issues
      .slice(0, 5)
      .map((issue) => `  ${fieldPath(issue)}: ${issue.message}`);
    throw new ConfigError(`config file ${path} is not valid:\n${lines.join('\n')}`);
  }
  return result.output as ConfigFile;
}

/** Reads `voicebot.config.json` (or another path) and checks it. */
export async function readConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  return parseConfigFile(text, path);
}

/** What `createRelay` takes from the environment when its options leave it out (providers: `providersFromEnv`). */
export interface RelayEnv {
  adminToken: string | undefined;
  metricsToken: string | undefined;
  metrics: boolean | 'public';
  trustProxy: boolean;
  /** `DATABASE_URL` (PostgreSQL); unset = SQLite in the data dir. */
  databaseUrl: string | undefined;
  /** `REDIS_URL`: state shared by a fleet of relays; unset = this machine's processes only. */
  redisUrl: string | undefined;
  /** `VOICEBOT_PUBLIC_URL`: the address visitors use (`publicUrl` in the config file wins). */
  publicUrl: string | undefined;
  logLevel: string;
}

/** What `voicebot-relay serve` takes from the environment. */
export interface ServeEnv {
  port: number;
  host: string;
  /** `VOICEBOT_WORKERS` as given (`--workers` wins). */
  workers: string | undefined;
  shutdownGraceMs: number;
}

function numberVar(
  env: Env,
  name: string,
  fallback: number,
  check: (n: number) => boolean,
  what: string,
): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!check(value)) throw new ConfigError(`${name}=${raw} is not valid: ${what}`);
  return value;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The process's environment, for defaults and `{{env.NAME}}` in tool templates: read here only. */
export function processEnv(): Env {
  return process.env;
}

/** Reads and checks the relay's variables once; a bad value names the variable. */
export function relayEnv(env: Env = processEnv()): RelayEnv {
  const metrics = env.VOICEBOT_METRICS;
  if (metrics !== undefined && metrics !== '' && metrics !== 'public' && metrics !== 'off')
    throw new ConfigError(`VOICEBOT_METRICS=${metrics} is not valid: use public or off`);
  const logLevel = env.VOICEBOT_LOG_LEVEL || 'info';
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError(
      `VOICEBOT_LOG_LEVEL=${logLevel} is not valid: use one of ${LOG_LEVELS.join(', ')}`,
    );
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//i.test(databaseUrl))
    throw new ConfigError(
      'DATABASE_URL is not valid: use postgres://user:password@host:5432/database (unset = SQLite in VOICEBOT_DATA_DIR)',
    );
  const redisUrl = env.REDIS_URL || undefined;
  if (redisUrl !== undefined && !/^rediss?:\/\//i.test(redisUrl))
    throw new ConfigError(
      'REDIS_URL is not valid: use redis://[:password@]host:6379[/db] or rediss://… (unset = no shared state across machines)',
    );
  const publicUrl = env.VOICEBOT_PUBLIC_URL || undefined;
  if (publicUrl !== undefined && !/^https?:\/\/[^/]/i.test(publicUrl))
    throw new ConfigError(
      `VOICEBOT_PUBLIC_URL=${publicUrl} is not valid: use the relay's public address, e.g. https://relay.example.com`,
    );
  return {
    adminToken: env.VOICEBOT_ADMIN_TOKEN || undefined,
    metricsToken: env.VOICEBOT_METRICS_TOKEN || undefined,
    metrics: metrics === 'public' ? 'public' : metrics !== 'off',
    trustProxy: env.VOICEBOT_TRUST_PROXY === '1',
    databaseUrl,
    redisUrl,
    publicUrl,
    logLevel,
  };
}

/** Reads and checks the `serve` command's variables. */
export function serveEnv(env: Env = processEnv()): ServeEnv {
  return {
    port: numberVar(
      env,
      'PORT',
      8787,
      (n) => Number.isInteger(n) && n >= 0 && n <= 65535,
      'a port number from 0 to 65535',
    ),
    host: env.HOST || '127.0.0.1',
    workers: env.VOICEBOT_WORKERS || undefined,
    shutdownGraceMs: numberVar(
      env,
      'VOICEBOT_SHUTDOWN_GRACE_MS',
      10_000,
      (n) => Number.isFinite(n) && n >= 0,
      'milliseconds ≥ 0',
    ),
  };
}
