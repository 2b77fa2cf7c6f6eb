export { VoiceBotClient, type ClientMetrics, type VoiceBotEvents, type VoiceBotOptions, type VoiceBotState } from './client.js';
export { VoiceBotError, type ClientErrorCode, type VoiceBotErrorCode } from './errors.js';
export { BrowserStt, DEFAULT_WHISPER_MODEL, pcm16ToFloat32, type BrowserSttOptions, type SttProgress, type WhisperDevice, type WhisperDtype, type WhisperOptions } from './stt/browser-stt.js';
export { WHISPER_DTYPES } from './stt/protocol.js';
export type { MicOptions } from './audio/engine.js';
export type { VadEvent, VadSettings, VoiceActivityDetector } from './vad.js';
export { indexedDbPersistence, type ConversationPersistence, type StoredConversation } from './persistence.js';
export type { ReconnectOptions } from './transport.js';
export * from './protocol/index.js';
