export { createRelay, type Relay, type RelayOptions } from './app.js';
export {
  DEFAULT_BOT,
  DEFAULT_LIMITS,
  DEFAULT_TEXT_DELTA_INTERVAL_MS,
  ConfigError,
  applyConfigFile,
  hasProvider,
  loadTokenSecret,
  providersFromEnv,
  type BotConfig,
  type ConfigFile,
  type LimitsConfig,
  type ProvidersConfig,
  type StageConfig,
} from './config.js';
export { parseConfigFile, readConfigFile, relayEnv, serveEnv, type RelayEnv, type ServeEnv } from './settings.js';
export { CLIENT_KEY_PREFIX, KeyStore, type ClientKeyRecord, type KeyPatch, type NewKey } from './keys.js';
export type { HardeningOptions, ShutdownOptions } from './hardening.js';
export { KEY_LIMIT_FIELDS, effectiveLimits, parseKeyLimits, type KeyLimits } from './limits.js';
export { UsageTracker, type DayUsage, type UsageStore } from './usage.js';
export { localState, type SharedState, type ConcurrencySlots } from './shared-state.js';
export { MemoryConversationStore, type ConversationStore, type Conversation } from './conversations.js';
export { clusterWorkerState, type ClusterWorkerOptions, type ClusterWorkerState } from './cluster/worker.js';
export { PrimaryState, defaultWorkerCount, isRelayClusterWorker, startClusterPrimary, type ClusterPrimary, type ClusterPrimaryOptions } from './cluster/primary.js';
export { isOriginAllowed, parseOriginPattern } from './origins.js';
export { SessionTokens, TokenError, type SessionClaims } from './tokens.js';
export { SentenceChunker, stripMarkdown } from './chunker.js';
export { createUpstreamFetch } from './upstream-fetch.js';
export { createLogger, type Logger } from './logger.js';
export { defineTool, ToolError, type JsonSchema, type ToolContext, type ToolDefinition } from './tools/types.js';
export type { HttpToolConfig } from './tools/http-tool.js';
