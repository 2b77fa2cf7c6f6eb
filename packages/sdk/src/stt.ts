/**
 * In-browser speech recognition (`stt: 'browser'`), as the SDK sees it: the options, and the
 * contract of the engine that does the work. The engine itself (Whisper on transformers.js in a Web
 * Worker) is the separate package `@voice-bot/stt-whisper`, so that installing the SDK never
 * installs transformers.js or onnxruntime. The integrator hands the SDK a loader
 * (`whisper: { load: () => import('@voice-bot/stt-whisper') }`): their bundler code-splits the
 * engine, and an app that never uses `stt: 'browser'` does not need the package at all.
 */

export type WhisperDevice = 'webgpu' | 'wasm' | 'auto';
/** transformers.js dtypes; one for all modules or one per module (`encoder_model`, `decoder_model_merged`). */
export const WHISPER_DTYPES = [
  'fp32',
  'fp16',
  'q8',
  'int8',
  'uint8',
  'q4',
  'bnb4',
  'q4f16',
] as const;
export type WhisperDtype = (typeof WHISPER_DTYPES)[number];

export const DEFAULT_WHISPER_MODEL = 'onnx-community/whisper-tiny.en';

/** What the engine is asked for: the model, where its files are, how to run it. */
export interface WhisperEngineSettings {
  /** Model id: a folder under `modelBaseUrl` (default `onnx-community/whisper-tiny.en`). */
  model?: string;
  /**
   * Where self-hosted models live. Default: `models/` under `assetBaseUrl` when one is set, else
   * `/models/` on the page's origin. Another origin must send CORS headers.
   */
  modelBaseUrl?: string | URL;
  /** Fall back to the Hugging Face hub when a file is not self-hosted (default false). */
  allowRemoteModels?: boolean;
  /**
   * Keep model files and onnxruntime's wasm in the Cache API (`voice-bot-stt`), so the next visit
   * downloads nothing (default true).
   */
  cache?: boolean;
  /** Weights precision, for all modules or per module (default: transformers.js' choice). */
  dtype?: WhisperDtype | Record<string, WhisperDtype>;
  /** `auto` (default): WebGPU when an adapter exists, else WebAssembly. */
  device?: WhisperDevice;
  /** Spoken language for multilingual models; English-only (`*.en`) models ignore it. */
  language?: string;
  /** Give up loading (download, compile, warm-up) after this long (default 60 000 ms). */
  loadTimeoutMs?: number;
  /**
   * The worker script. Default: the engine's own `stt-worker.js` (beside its module, so bundlers
   * emit it), or `stt-worker.js` under `assetBaseUrl` when one is set. From another origin it is
   * imported by a `blob:` module worker, which needs CORS on the script.
   */
  workerUrl?: string | URL;
  /** Folder of onnxruntime-web's `ort-wasm-simd-threaded.asyncify.{wasm,mjs}` (default: beside the engine, or `stt/` under `assetBaseUrl`). */
  wasmBaseUrl?: string | URL;
}

/** The loaded engine module: what `import('@voice-bot/stt-whisper')` resolves to. */
export interface WhisperEngine {
  createRecognizer(options: SpeechRecognizerOptions): SpeechRecognizer;
}

/** Loads the engine, e.g. `() => import('@voice-bot/stt-whisper')` (a dynamic import, so bundlers split it off). */
export type WhisperLoader = () => Promise<WhisperEngine>;

export interface WhisperOptions extends WhisperEngineSettings {
  /**
   * Loads the engine: `() => import('@voice-bot/stt-whisper')`. Without it the loader given to
   * `setWhisperLoader()` is used (the widget's script-tag build sets one); without either,
   * `stt: 'browser'` fails with `stt_unavailable` saying what to install.
   */
  load?: WhisperLoader;
  /** When the model cannot load, send audio to the relay's STT instead (default false). */
  fallbackToRelay?: boolean;
}

export interface SttProgress {
  /** Bytes downloaded so far over all model files seen so far (files from the cache count none). */
  loaded: number;
  total: number;
  /** 0..100. */
  percent: number;
  /** The file that progressed, relative to the model folder. */
  file: string;
}

export interface SpeechRecognizerOptions extends WhisperEngineSettings {
  /**
   * The SDK's `assetBaseUrl`, when the integrator set one: the default worker, wasm and model URLs
   * then resolve under it (`stt-worker.js`, `stt/`, `models/`), as in the self-hosted layout.
   */
  assetBaseUrl?: string | URL;
  onProgress?: (progress: SttProgress) => void;
}

/** One speech recognizer: loads its model once, then transcribes 16 kHz mono audio, one call at a time. */
export interface SpeechRecognizer {
  /** Starts the worker and loads the model (once). Rejects with `stt_unavailable`. */
  load(): Promise<{ device: 'webgpu' | 'wasm'; loadMs: number }>;
  /** Transcribes 16 kHz mono samples in [-1, 1]; waits for the model. */
  transcribe(audio: Float32Array): Promise<string>;
  /** Stops the worker; pending transcriptions reject. */
  dispose(): void;
}

let registered: WhisperLoader | undefined;

/**
 * The loader `stt: 'browser'` uses when a client's options give none, for every client created
 * afterwards (`undefined` removes it). For apps where one place should decide, and for the
 * widget, whose element creates its clients itself:
 *
 * ```ts
 * setWhisperLoader(() => import('@voice-bot/stt-whisper'));
 * ```
 */
export function setWhisperLoader(load: WhisperLoader | undefined): void {
  registered = load;
}

/** The loader set with `setWhisperLoader()`, if any. */
export function whisperLoader(): WhisperLoader | undefined {
  return registered;
}

/** Joins 16-bit PCM frames into one Float32 buffer in [-1, 1]. */
export function pcm16ToFloat32(frames: readonly Int16Array[]): Float32Array {
  const length = frames.reduce((n, f) => n + f.length, 0);
  const out = new Float32Array(length);
  let offset = 0;
  for (const frame of frames) {
    for (let i = 0; i < frame.length; i++) out[offset + i] = (frame[i] ?? 0) / 32768;
    offset += frame.length;
  }
  return out;
}
