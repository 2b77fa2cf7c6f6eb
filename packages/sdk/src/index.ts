export {
  VoiceBotClient,
  type ClientMetrics,
  type EndOfTurnOptions,
  type ClientTool,
  type HandoffEvent,
  type JitterBufferOptions,
  type SpeechSynthesisSettings,
  type ToolEvent,
  type VoiceBotEvents,
  type VoiceBotOptions,
  type VoiceBotState,
} from './client.js';
export { VoiceBotError, type ClientErrorCode, type VoiceBotErrorCode } from './errors.js';
export type { AudioDevice, AudioDevices } from './client/devices.js';
export {
  DEFAULT_WHISPER_MODEL,
  WHISPER_DTYPES,
  pcm16ToFloat32,
  setWhisperLoader,
  whisperLoader,
  type SpeechRecognizer,
  type SpeechRecognizerOptions,
  type SttProgress,
  type WhisperDevice,
  type WhisperDtype,
  type WhisperEngine,
  type WhisperEngineSettings,
  type WhisperLoader,
  type WhisperOptions,
} from './stt.js';
export {
  END_OF_TURN_DEFAULTS,
  TURN_WORDS,
  classifyTurnEnding,
  rulesEndOfTurnPolicy,
  type EndOfTurnInput,
  type EndOfTurnPolicy,
  type RulesPolicyOptions,
  type TurnEnding,
  type TurnWords,
} from './client/end-of-turn.js';
export type { MicOptions } from './audio/engine.js';
export { DEFAULT_UPLINK_FRAME_MS } from './audio/uplink.js';
export type { VadEvent, VadSettings, VoiceActivityDetector } from './vad.js';
export {
  indexedDbPersistence,
  type ConversationPersistence,
  type StoredConversation,
} from './persistence.js';
export {
  RelayTransport,
  type ReconnectOptions,
  type TransportEvents,
  type TransportFactory,
  type TransportOptions,
  type VoiceBotTransport,
} from './transport.js';
export * from './protocol/index.js';
