/**
 * The browser STT session (`stt: 'browser'`): loads the engine (`whisper.load`, else the
 * `setWhisperLoader()` one), its worker and model in the background, and turns each utterance into
 * text; utterances spoken while the model loads wait for it. When the model cannot load and the
 * owner allowed it (`fallbackToRelay`), the session asks for a relay-STT session instead and hands
 * the utterance back as audio. No DOM of its own: unit-tested in Node with a fake engine.
 */
import { VoiceBotError } from '../errors.js';
import {
  pcm16ToFloat32,
  whisperLoader,
  type SpeechRecognizer,
  type SttProgress,
  type WhisperEngine,
  type WhisperLoader,
  type WhisperOptions,
} from '../stt.js';

/** The in-browser recognition engine, or `stt_unavailable` saying what is missing. */
export async function loadWhisperEngine(load: WhisperLoader | undefined): Promise<WhisperEngine> {
  if (!load) {
    throw new VoiceBotError(
      'stt_unavailable',
      "In-browser speech recognition is unavailable: stt: 'browser' needs the @voice-bot/stt-whisper package. Install it (npm i @voice-bot/stt-whisper) and pass whisper: { load: () => import('@voice-bot/stt-whisper') } (or call setWhisperLoader() once).",
    );
  }
  let engine: WhisperEngine | undefined;
  try {
    engine = await load();
    if (typeof engine?.createRecognizer !== 'function')
      throw new TypeError(
        'the loader did not resolve to @voice-bot/stt-whisper (no createRecognizer export)',
      );
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new VoiceBotError(
      'stt_unavailable',
      `In-browser speech recognition is unavailable: @voice-bot/stt-whisper could not be loaded (${reason}).`,
      { cause },
    );
  }
  return engine;
}

export interface BrowserSttHandlers {
  progress(progress: SttProgress): void;
  ready(info: { device: 'webgpu' | 'wasm'; loadMs: number }): void;
  /** Not fatal: the session stays open (typing works). */
  error(error: VoiceBotError): void;
  /**
   * The model failed and `fallbackToRelay` is set: open a session whose input is audio (same
   * conversation). Resolves once it is ready.
   */
  restartWithRelay(): Promise<void>;
  /** Called right after `restartWithRelay()`: tell the owner (`stt-fallback`, `error`). */
  fellBack(notice: VoiceBotError): void;
}

/** What became of one utterance. */
export type UtteranceOutcome =
  /** Its words went to the relay as text. */
  | { kind: 'sent' }
  /** No words in it (silence, "[BLANK_AUDIO]"): no turn. */
  | { kind: 'empty' }
  /** The model never loaded and the relay's STT took over: send this audio there. */
  | { kind: 'relay'; frames: Int16Array[] }
  /** It could not be transcribed or sent; `error` is what to report (none: already reported). */
  | { kind: 'failed'; error?: VoiceBotError };

export interface BrowserSttOptions {
  whisper?: WhisperOptions | undefined;
  assetBaseUrl?: string | URL | undefined;
}

export class BrowserSttSession {
  private stt: Promise<SpeechRecognizer> | undefined;
  /** Settles once the model's load has succeeded or its failure has been handled. */
  private outcome: Promise<void> = Promise.resolve();
  /** Set when the model failed and the owner allowed relay STT: resolves once that session is ready. */
  private fallback: Promise<void> | undefined;
  /** The confirmed utterance's audio so far. */
  private frames: Int16Array[] = [];

  constructor(
    private readonly options: BrowserSttOptions,
    private readonly handlers: BrowserSttHandlers,
  ) {}

  /** Whisper transcribes (false once the relay's STT took over, until `stop()`). */
  get active(): boolean {
    return !this.fallback;
  }

  /** Starts loading the engine and model in the background. */
  start(): void {
    const { load, fallbackToRelay, ...settings } = this.options.whisper ?? {};
    const engine = loadWhisperEngine(load ?? whisperLoader());
    const assetBaseUrl = this.options.assetBaseUrl;
    const stt = engine.then((module) =>
      module.createRecognizer({
        ...settings,
        ...(assetBaseUrl !== undefined ? { assetBaseUrl } : {}),
        onProgress: (p) => this.handlers.progress(p),
      }),
    );
    this.stt = stt;
    this.outcome = stt
      .then((s) => s.load())
      .then(
        (info) => {
          if (this.stt === stt) this.handlers.ready(info);
        },
        (cause: unknown) => {
          if (this.stt !== stt) return;
          const error =
            cause instanceof VoiceBotError
              ? cause
              : new VoiceBotError(
                  'stt_unavailable',
                  `In-browser speech recognition is unavailable: ${String(cause)}`,
                  { cause },
                );
          if (!fallbackToRelay) {
            this.handlers.error(error);
            return;
          }
          const notice = new VoiceBotError(
            'stt_unavailable',
            `${error.message} Using the relay’s speech recognition instead.`,
            { cause },
          );
          this.fallback = this.handlers.restartWithRelay();
          this.handlers.fellBack(notice);
        },
      );
  }

  /** A frame of the confirmed utterance. */
  push(frame: Int16Array): void {
    this.frames.push(frame);
  }

  /** The utterance's audio, which is forgotten here. */
  take(): Int16Array[] {
    const frames = this.frames;
    this.frames = [];
    return frames;
  }

  /** Forgets the utterance in progress. */
  clear(): void {
    this.frames = [];
  }

  /**
   * Transcribes an utterance (waiting for the model) and hands its words to `send`; a failure of
   * `send` counts as the utterance's failure.
   */
  async recognize(
    frames: Int16Array[],
    send: (words: string) => Promise<void>,
  ): Promise<UtteranceOutcome> {
    const stt = this.stt;
    try {
      if (!stt) throw new VoiceBotError('stt_unavailable', 'Speech recognition is not running.');
      const text = await (await stt).transcribe(pcm16ToFloat32(frames));
      // Whisper's non-speech markers ("[BLANK_AUDIO]", "(music)") are not words.
      const words = text.replace(/\[[^\]]*\]|\([^)]*\)/g, '').trim();
      if (!words) return { kind: 'empty' };
      await send(words);
      return { kind: 'sent' };
    } catch (cause) {
      await this.outcome;
      if (this.fallback && this.stt === stt) {
        // The model never loaded: this utterance goes to the relay's STT like the next ones.
        await this.fallback.catch(() => undefined);
        return { kind: 'relay', frames };
      }
      // A load failure was reported when it happened; only what came after it is news.
      if (
        this.stt !== stt ||
        (cause instanceof VoiceBotError &&
          cause.code === 'stt_unavailable' &&
          cause.message.startsWith('In-browser'))
      )
        return { kind: 'failed' };
      return {
        kind: 'failed',
        error:
          cause instanceof VoiceBotError
            ? cause
            : new VoiceBotError('stt_unavailable', String(cause), { cause }),
      };
    }
  }

  /** Releases the worker and model; the next `start()` loads them again (and tries Whisper again). */
  stop(): void {
    void this.stt?.then(
      (stt) => stt.dispose(),
      () => undefined,
    );
    this.stt = undefined;
    this.fallback = undefined;
  }
}
