export { createRelay, type Relay, type RelayOptions } from './app.js';
export {
  DEFAULT_BOT,
  DEFAULT_LIMITS,
  ConfigError,
  applyConfigFile,
  hasProvider,
  loadTokenSecret,
  providersFromEnv,
  readConfigFile,
  type BotConfig,
  type ConfigFile,
  type LimitsConfig,
  type ProvidersConfig,
  type StageConfig,
} from './config.js';
export { CLIENT_KEY_PREFIX, KeyStore, type ClientKeyRecord, type NewKey } from './keys.js';
export { isOriginAllowed, parseOriginPattern } from './origins.js';
export { SessionTokens, TokenError, type SessionClaims } from './tokens.js';
export { SentenceChunker, stripMarkdown } from './chunker.js';
export { createLogger, type Logger } from './logger.js';
