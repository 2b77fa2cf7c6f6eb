/**
 * `@voice-bot/stt-whisper`: in-browser speech recognition for `@voice-bot/sdk` (`stt: 'browser'`).
 * Whisper runs on transformers.js and onnxruntime-web in a module Web Worker; only the transcript
 * reaches the relay. Give the SDK a loader, so your bundler splits this package off:
 *
 * ```ts
 * new VoiceBotClient({ relayUrl, clientKey, stt: 'browser', whisper: { load: () => import('@voice-bot/stt-whisper') } });
 * ```
 */
import type { SpeechRecognizer, SpeechRecognizerOptions } from '@voice-bot/sdk';
import { BrowserStt } from './browser-stt.js';

export { BrowserStt, type BrowserSttOptions } from './browser-stt.js';
export { CACHE_NAME } from './cache-name.js';
export type * from './protocol.js';
export {
  DEFAULT_WHISPER_MODEL,
  WHISPER_DTYPES,
  pcm16ToFloat32,
  type SttProgress,
  type WhisperDevice,
  type WhisperDtype,
  type WhisperOptions,
} from '@voice-bot/sdk';

/** The engine entry point the SDK calls (`WhisperEngine`): one recognizer per voice session. */
export function createRecognizer(options: SpeechRecognizerOptions): SpeechRecognizer {
  return new BrowserStt(options);
}
