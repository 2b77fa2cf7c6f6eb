import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { HttpToolConfig } from '../tools/http-tool.js';
import type { HandoffConfig } from '../handoff/handoff.js';
import type { ClientToolConfig } from '../tools/client-tool.js';

export interface StageConfig {
  /** OpenAI-compatible base URL, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`. */
  baseURL?: string;
  apiKey?: string;
  model: string;
  timeoutMs: number;
  maxRetries: number;
  /** The provider's label in metrics and logs (default: the host of `baseURL`). */
  name?: string;
  /** Give up on the provider (and fail over) when no response byte came within this long. */
  firstByteTimeoutMs?: number;
  /** Providers tried in order when this one fails before answering (README "Provider failover"). */
  fallbacks?: FallbackProviderConfig[];
}

/** A stage's next provider. Unset timeouts and retries are the stage's; the key is never inherited. */
export interface FallbackProviderConfig {
  baseURL: string;
  apiKey?: string;
  name?: string;
  /** Sent instead of the requested model (default: the same model). */
  model?: string;
  /** TTS only: sent instead of the requested voice. */
  voice?: string;
  timeoutMs?: number;
  maxRetries?: number;
  firstByteTimeoutMs?: number;
}

/** When a failing provider is skipped (README "Provider failover"). */
export interface CircuitConfig {
  /** Consecutive failures that open the circuit. */
  failures: number;
  /** How long an open circuit skips the provider before one request probes it again. */
  openMs: number;
}

export interface ProvidersConfig {
  stt: StageConfig;
  llm: StageConfig;
  tts: StageConfig & { voice: string };
  /** The knowledge base's `/v1/embeddings` (default: the LLM stage's provider, `text-embedding-3-small`). */
  embeddings?: StageConfig;
  /** Circuit breaker of every stage's providers (default 3 failures, 30 s). */
  circuit?: CircuitConfig;
}

export interface BotConfig {
  id: string;
  name: string;
  systemPrompt: string;
  /** Spoken when a new conversation starts. */
  greeting?: string;
  /** BCP 47 language hint for STT (e.g. `en`). */
  language?: string;
  /** Per-bot model overrides; unset means the provider stage's model. */
  sttModel?: string;
  chatModel?: string;
  ttsModel?: string;
  voice?: string;
  temperature?: number;
  maxTokens?: number;
  /** Names of the tools this bot may call (code tools passed to `createRelay`, or HTTP tools from the config). */
  tools?: string[];
  /** Page-side tools the bot may call: the page registers and runs them (README "Page-side tools"). */
  clientTools?: ClientToolConfig[];
  /** Spoken while tools run when the model said nothing first, e.g. "One moment, let me check." */
  toolFiller?: string;
  /** Tool-call rounds per turn before the model must answer (default 3). */
  maxToolRounds?: number;
  /**
   * Speculative turns (default true): on the client's `pause` the reply is prepared at once and held
   * until `commit` confirms it. Costs the provider requests of the turns the visitor talks on through.
   */
  speculation?: boolean;
  /** Knowledge base collections the bot may search (the built-in `search_knowledge` tool). */
  knowledge?: string[];
  /** The built-in `handoff` tool: the model hands the conversation to a person (README "Handoff to a person"). */
  handoff?: HandoffConfig;
  /** Hosts (`example.com`, `*.example.com`) replies may link to, announced to the page (the page's own host always is). */
  linkHosts?: string[];
  /** Conversation records (opt-in): turns, tool calls, timings, feedback and an end-of-conversation analysis. */
  records?: RecordsConfig;
  /** JSON Schema (an object schema) of the fields the end-of-conversation analysis extracts, e.g. name, phone. */
  extract?: Record<string, unknown>;
  /** The visitor may rate replies (`feedback` messages; needs `records`). Default false. */
  feedback?: boolean;
  /** Webhook endpoints for this bot's events (besides the global ones). */
  webhooks?: WebhookEndpointConfig[];
}

export type RedactKind = 'email' | 'phone' | 'card';

export interface RecordsConfig {
  /** Keep the turns' text after the analysis (false: the texts are erased once the conversation is analysed). */
  transcripts: boolean;
  /** Records are deleted this many days after the conversation's last activity. */
  retentionDays: number;
  /** What is replaced before anything is stored (`[email]`, `[phone]`, `[card]`). */
  redact?: RedactKind[];
}

export interface WebhookEndpointConfig {
  url: string;
  /** Default: every event. */
  events?: ('conversation.ended' | 'handoff.requested')[];
  /** The environment variable holding the endpoint's signing secret. */
  secretEnv: string;
}

export interface LimitsConfig {
  maxJsonBytes: number;
  maxAudioFrameBytes: number;
  maxUtteranceMs: number;
  maxTextChars: number;
  /** How many past messages the LLM sees. */
  maxHistoryMessages: number;
  startTimeoutMs: number;
  /** Conversations are kept in memory this long after their last turn, for resuming. */
  conversationTtlMs: number;
  maxConversations: number;
  // Hardening (limits.ts). For every rate, count and quota below, 0 means "no limit".
  /** JSON messages (text frames) a socket may send per second. */
  messagesPerSecond: number;
  /** Audio (binary) frames a socket may send per second (20 ms frames in real time = 50/s). */
  audioFramesPerSecond: number;
  /** No client frame for this long (and no turn running) closes the socket with 4002. */
  idleTimeoutMs: number;
  /** A socket is closed with 4004 after this long, whatever it is doing. */
  maxSessionMs: number;
  /** `POST /v1/sessions` per key per minute. */
  sessionsPerMinutePerKey: number;
  /** `POST /v1/sessions` per client IP per minute (all keys together). */
  sessionsPerMinutePerIp: number;
  /** `POST /v1/bot-info` per client IP per minute (a budget of its own; relay-wide only). */
  botInfoPerMinutePerIp: number;
  /** Open sockets per key. */
  maxConcurrentSessionsPerKey: number;
  /** Visitor audio received per key per UTC day, in minutes (fractions allowed). */
  audioMinutesPerKeyPerDay: number;
  /** LLM prompt + completion tokens per key per UTC day (charged when a request is sent, from an estimate, then corrected by the provider's usage). */
  llmTokensPerKeyPerDay: number;
  /** Characters sent to speech synthesis per key per UTC day (charged when each request is sent). */
  ttsCharsPerKeyPerDay: number;
  /** Turns (utterances, texts) a socket may start per minute. */
  turnsPerMinute: number;
  /** Speculative turns (started by `pause`) a socket may start per minute; over it a `pause` is ignored (0: speculation off). */
  speculativeTurnsPerMinute: number;
  /** Bytes a socket may have queued towards the page before the relay stops pulling from the providers. */
  maxBufferedBytes: number;
  /** A socket over `maxBufferedBytes` for this long (the page is not reading) is closed with 4006. */
  slowClientTimeoutMs: number;
}

export interface RelayConfig {
  dataDir: string;
  providers: ProvidersConfig;
  bots: BotConfig[];
  limits: LimitsConfig;
  tokenTtlSeconds: number;
  /** Public base URL of the relay (for `ws_url`) when it sits behind a proxy. */
  publicUrl?: string;
  /** Reply text goes to the client at most once per this many ms after its first piece (0: every piece). Default 50. */
  textDeltaIntervalMs?: number;
  /** Static directories to serve, e.g. the demo site at `/` and the widget at `/widget/`. */
  staticDirs: { urlPath: string; dir: string }[];
}

export const DEFAULT_LIMITS: LimitsConfig = {
  maxJsonBytes: 16 * 1024,
  maxAudioFrameBytes: 64 * 1024,
  maxUtteranceMs: 60_000,
  maxTextChars: 2_000,
  maxHistoryMessages: 40,
  startTimeoutMs: 10_000,
  conversationTtlMs: 30 * 60_000,
  maxConversations: 10_000,
  messagesPerSecond: 20,
  audioFramesPerSecond: 200,
  idleTimeoutMs: 60_000,
  maxSessionMs: 30 * 60_000,
  sessionsPerMinutePerKey: 120,
  sessionsPerMinutePerIp: 30,
  botInfoPerMinutePerIp: 60,
  maxConcurrentSessionsPerKey: 50,
  audioMinutesPerKeyPerDay: 600,
  llmTokensPerKeyPerDay: 2_000_000,
  ttsCharsPerKeyPerDay: 600_000,
  turnsPerMinute: 30,
  speculativeTurnsPerMinute: 30,
  maxBufferedBytes: 1024 * 1024,
  slowClientTimeoutMs: 5_000,
};

export const DEFAULT_BOT: BotConfig = {
  id: 'default',
  name: 'Assistant',
  systemPrompt:
    'You are a friendly voice assistant on a website. Answer in one to three short, spoken-style sentences. ' +
    'Do not use markdown, lists or emoji: everything you write is read aloud.',
};

export type Env = Record<string, string | undefined>;

function stage(env: Env, name: 'STT' | 'LLM' | 'TTS' | 'EMBEDDINGS', model: string): StageConfig {
  const baseURL = env[`VOICEBOT_${name}_BASE_URL`] ?? env.OPENAI_BASE_URL;
  const apiKey = env[`VOICEBOT_${name}_API_KEY`] ?? env.OPENAI_API_KEY;
  const fallbackURL = env[`VOICEBOT_${name}_FALLBACK_BASE_URL`];
  const fallbackKey = env[`VOICEBOT_${name}_FALLBACK_API_KEY`];
  const fallbackModel = env[`VOICEBOT_${name}_FALLBACK_MODEL`];
  return {
    ...(baseURL ? { baseURL } : {}),
    ...(apiKey ? { apiKey } : {}),
    model: env[`VOICEBOT_${name}_MODEL`] ?? model,
    timeoutMs: Number(env.VOICEBOT_UPSTREAM_TIMEOUT_MS ?? 30_000),
    maxRetries: Number(env.VOICEBOT_UPSTREAM_RETRIES ?? 1),
    ...(fallbackURL && name !== 'EMBEDDINGS'
      ? {
          fallbacks: [
            {
              baseURL: fallbackURL,
              ...(fallbackKey ? { apiKey: fallbackKey } : {}),
              ...(fallbackModel ? { model: fallbackModel } : {}),
            },
          ],
        }
      : {}),
  };
}

export const DEFAULT_EMBEDDINGS_MODEL = 'text-embedding-3-small';

/** The embeddings stage: as configured, else the LLM stage's provider with the default model. */
export function embeddingsStage(providers: ProvidersConfig): StageConfig {
  if (providers.embeddings) return providers.embeddings;
  const { baseURL, apiKey, timeoutMs, maxRetries } = providers.llm;
  return {
    ...(baseURL ? { baseURL } : {}),
    ...(apiKey ? { apiKey } : {}),
    model: DEFAULT_EMBEDDINGS_MODEL,
    timeoutMs,
    maxRetries,
  };
}

/** Provider settings from the environment (`OPENAI_*`, then `VOICEBOT_{STT,LLM,TTS}_*` per stage). */
export function providersFromEnv(env: Env = process.env): ProvidersConfig {
  return {
    stt: stage(env, 'STT', 'whisper-1'),
    llm: stage(env, 'LLM', 'gpt-4o-mini'),
    tts: { ...stage(env, 'TTS', 'gpt-4o-mini-tts'), voice: env.VOICEBOT_TTS_VOICE ?? 'alloy' },
    embeddings: stage(env, 'EMBEDDINGS', DEFAULT_EMBEDDINGS_MODEL),
  };
}

/** True when no stage has anything to talk to: then `serve --demo` uses the offline demo provider. */
export function hasProvider(providers: ProvidersConfig): boolean {
  return [providers.stt, providers.llm, providers.tts].some(
    (s) => s.apiKey !== undefined || s.baseURL !== undefined,
  );
}

/** The `voicebot.config.json` file: bots and non-secret settings. Secrets come from the environment. */
export interface ConfigFile {
  bots?: BotConfig[];
  /** HTTP integration tools, referenced by name from `bots[].tools`. */
  tools?: HttpToolConfig[];
  /** Hosts HTTP tools may reach even though they resolve to private/loopback addresses. */
  toolAllowHosts?: string[];
  limits?: Partial<LimitsConfig>;
  tokenTtlSeconds?: number;
  publicUrl?: string;
  textDeltaIntervalMs?: number;
  /** Webhook endpoints for every bot's events. */
  webhooks?: WebhookEndpointConfig[];
  providers?: {
    [K in 'stt' | 'llm' | 'tts' | 'embeddings']?: Partial<
      Omit<NonNullable<ProvidersConfig[K]>, 'apiKey' | 'fallbacks'>
    > & {
      apiKeyEnv?: string;
      fallbacks?: (Omit<FallbackProviderConfig, 'apiKey'> & { apiKeyEnv?: string })[];
    };
  } & { circuit?: Partial<CircuitConfig> };
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** How often streamed reply text is sent after its first piece, by default: 20 updates a second read as smooth. */
export const DEFAULT_TEXT_DELTA_INTERVAL_MS = 50;

/** A valid `textDeltaIntervalMs` (0–1000 ms), or the default. */
export function textDeltaInterval(value: number | undefined): number {
  if (value === undefined) return DEFAULT_TEXT_DELTA_INTERVAL_MS;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1000) {
    throw new ConfigError(
      `textDeltaIntervalMs must be a number of milliseconds from 0 to 1000, not ${JSON.stringify(value)}`,
    );
  }
  return value;
}

export function validateBots(bots: readonly BotConfig[]): void {
  const seen = new Set<string>();
  for (const bot of bots) {
    if (!bot.id || !/^[a-z0-9][a-z0-9_-]{0,63}$/i.test(bot.id))
      throw new ConfigError(
        `bot id ${JSON.stringify(bot.id)} must be 1-64 letters, digits, - or _`,
      );
    if (seen.has(bot.id)) throw new ConfigError(`bot id ${bot.id} is defined twice`);
    if (typeof bot.systemPrompt !== 'string')
      throw new ConfigError(`bot ${bot.id} needs a systemPrompt`);
    seen.add(bot.id);
  }
  if (bots.length === 0) throw new ConfigError('at least one bot must be configured');
}

/** Default circuit breaker: 3 consecutive failures skip a provider for 30 s. */
export const DEFAULT_CIRCUIT: CircuitConfig = { failures: 3, openMs: 30_000 };

function secretOf(env: Env, name: string, field: string): string {
  const value = env[name];
  if (value === undefined) throw new ConfigError(`${field} names ${name}, which is not set`);
  return value;
}

/** Merges the config file over the environment's provider settings. */
export function applyConfigFile(
  file: ConfigFile,
  env: Env,
  base: ProvidersConfig = providersFromEnv(env),
): Partial<RelayConfig> & {
  httpTools?: HttpToolConfig[];
  toolAllowHosts?: string[];
  webhooks?: WebhookEndpointConfig[];
} {
  // Checked here too, not only in `createRelay`: `serve --workers` must refuse a bad file before it forks.
  if (file.bots) validateBots(file.bots);
  const providers: ProvidersConfig = structuredClone(base);
  for (const name of ['stt', 'llm', 'tts', 'embeddings'] as const) {
    const override = file.providers?.[name];
    if (!override) continue;
    const { apiKeyEnv, fallbacks, ...rest } = override;
    const target: StageConfig =
      name === 'embeddings'
        ? (providers.embeddings ??= embeddingsStage(providers))
        : providers[name];
    Object.assign(target, rest);
    if (apiKeyEnv) target.apiKey = secretOf(env, apiKeyEnv, `providers.${name}.apiKeyEnv`);
    if (fallbacks)
      target.fallbacks = fallbacks.map(({ apiKeyEnv: keyEnv, ...fallback }, i) => ({
        ...fallback,
        ...(keyEnv
          ? { apiKey: secretOf(env, keyEnv, `providers.${name}.fallbacks[${i}].apiKeyEnv`) }
          : {}),
      }));
  }
  if (file.providers?.circuit)
    providers.circuit = { ...DEFAULT_CIRCUIT, ...providers.circuit, ...file.providers.circuit };
  return {
    providers,
    ...(file.bots ? { bots: file.bots } : {}),
    ...(file.tools ? { httpTools: file.tools } : {}),
    ...(file.toolAllowHosts ? { toolAllowHosts: file.toolAllowHosts } : {}),
    ...(file.webhooks ? { webhooks: file.webhooks } : {}),
    limits: { ...DEFAULT_LIMITS, ...file.limits },
    ...(file.tokenTtlSeconds ? { tokenTtlSeconds: file.tokenTtlSeconds } : {}),
    ...(file.publicUrl ? { publicUrl: file.publicUrl } : {}),
    ...(file.textDeltaIntervalMs !== undefined
      ? { textDeltaIntervalMs: textDeltaInterval(file.textDeltaIntervalMs) }
      : {}),
  };
}

export function defaultDataDir(env: Env = process.env): string {
  return resolve(env.VOICEBOT_DATA_DIR ?? '.voicebot');
}

/**
 * The secret that signs session tokens: `VOICEBOT_SECRET`, or one generated once and kept in the
 * data dir (so tokens survive a restart; several relays behind a balancer must share `VOICEBOT_SECRET`).
 */
export async function loadTokenSecret(dataDir: string, env: Env = process.env): Promise<string> {
  if (env.VOICEBOT_SECRET) {
    if (env.VOICEBOT_SECRET.length < 32)
      throw new ConfigError('VOICEBOT_SECRET must be at least 32 characters');
    return env.VOICEBOT_SECRET;
  }
  const file = join(dataDir, 'token-secret');
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString('base64url');
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' }).catch(
    async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    },
  );
  return (await readFile(file, 'utf8')).trim();
}
