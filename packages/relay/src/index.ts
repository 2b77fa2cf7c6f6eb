export { createRelay, type Relay, type RelayOptions } from './relay.js';
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
} from './config/config.js';
export {
  parseConfigFile,
  readConfigFile,
  relayEnv,
  serveEnv,
  type RelayEnv,
  type ServeEnv,
} from './config/settings.js';
export {
  CLIENT_KEY_PREFIX,
  KeyStore,
  type AuditActor,
  type ClientKeyRecord,
  type KeyPatch,
  type NewKey,
} from './auth/keys.js';
export { Storage, createStorage, openStorage, type StorageOptions } from './store/storage.js';
export { StorageError, redactUrl, type Engine } from './store/database.js';
export { MissingDependencyError } from './dependencies.js';
export type { AuditEntry } from './store/keys.js';
export type { DbConversationStore } from './store/conversations.js';
export type { HardeningOptions, ShutdownOptions } from './http/hardening.js';
export {
  KEY_LIMIT_FIELDS,
  effectiveLimits,
  parseKeyLimits,
  type KeyLimits,
} from './policy/limits.js';
export {
  UsageTracker,
  type DayUsage,
  type QuotaTotals,
  type UsageDays,
  type UsageLedger,
  type UsageStore,
} from './policy/usage.js';
export {
  localState,
  type ConcurrencySlots,
  type LocalStateOptions,
  type SharedState,
  type StateStatus,
  type TokenReplays,
} from './state/shared-state.js';
export {
  MemoryConversationStore,
  type ConversationStore,
  type Conversation,
} from './conversation/conversations.js';
export {
  clusterWorkerState,
  type ClusterWorkerOptions,
  type ClusterWorkerState,
} from './state/cluster/worker.js';
export {
  PrimaryState,
  defaultWorkerCount,
  isRelayClusterWorker,
  startClusterPrimary,
  type ClusterPrimary,
  type ClusterPrimaryOptions,
} from './state/cluster/primary.js';
export { isOriginAllowed, parseOriginPattern } from './auth/origins.js';
export { SessionTokens, TokenError, type SessionClaims } from './auth/tokens.js';
export { SentenceChunker, stripMarkdown } from './pipeline/chunker.js';
export { createUpstreamFetch } from './providers/upstream-fetch.js';
export { createLogger, type Logger } from './logger.js';
export {
  defineTool,
  ToolError,
  type JsonSchema,
  type ToolContext,
  type ToolDefinition,
} from './tools/types.js';
export type { HttpToolConfig } from './tools/http-tool.js';
export {
  connectRedis,
  redisState,
  redisTarget,
  SharedStateUnavailableError,
  type RedisState,
  type RedisStateOptions,
} from './state/redis/index.js';
export type { RecordsConfig, RedactKind, WebhookEndpointConfig } from './config/config.js';
export { ConversationRecords, type RecordsOptions } from './records/records.js';
export type {
  FullRecord,
  RecordView,
  TurnView,
  RecordedTool,
  Sentiment,
  Urgency,
} from './records/store.js';
export { redactText, luhnValid } from './records/redact.js';
export type { WebhookEvent, WebhookSink, EnqueueOptions } from './webhooks/outbox.js';
export type { DbWebhookOutbox, DeliveryView, DeliveryAttempt } from './webhooks/queue.js';
export { signWebhook, verifyWebhookSignature } from './webhooks/sign.js';
export type { RetrySchedule } from './webhooks/backoff.js';
export {
  KnowledgeBase,
  type AddOptions,
  type IngestOutcome,
  type IngestReport,
  type KnowledgeBaseOptions,
  type UploadedFile,
} from './knowledge/knowledge-base.js';
export { KnowledgeError, type KnowledgeErrorCode } from './knowledge/errors.js';
export type { SearchResult, SearchOptions } from './knowledge/search.js';
export type { CollectionInfo, DocumentInfo } from './knowledge/store.js';
export { SEARCH_KNOWLEDGE_TOOL, type KnowledgeToolResult } from './knowledge/tool.js';
