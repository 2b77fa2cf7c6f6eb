/**
 * Messages between `BrowserStt` (main thread) and its speech-recognition worker (`stt-worker.js`).
 * A worker that speaks this protocol can stand in for the transformers.js one (`whisper.workerUrl`).
 */
import type { WhisperDevice, WhisperDtype } from '@voice-bot/sdk';

export type { WhisperDevice, WhisperDtype } from '@voice-bot/sdk';

export interface SttLoadMessage {
  type: 'load';
  /** Model id, a folder under `modelBaseUrl` (e.g. `onnx-community/whisper-tiny.en`). */
  model: string;
  /** Absolute URL of the self-hosted model folder root (ends with `/`). */
  modelBaseUrl: string;
  allowRemoteModels: boolean;
  /** Keep model files and onnxruntime's wasm in the Cache API (`voice-bot-stt`) for the next visit. */
  cache: boolean;
  /**
   * Absolute URLs of onnxruntime-web's `ort-wasm-simd-threaded.asyncify` Emscripten glue (`.mjs`)
   * and binary (`.wasm`). Two URLs rather than a folder: a bundler may give each file its own name.
   */
  wasmPaths: { mjs: string; wasm: string };
  device: WhisperDevice;
  dtype?: WhisperDtype | Record<string, WhisperDtype>;
  /** Spoken language for multilingual models (`en`, `hi`, `es`…); English-only models ignore it. */
  language?: string;
}

export interface SttTranscribeMessage {
  type: 'transcribe';
  id: number;
  /** 16 kHz mono samples in [-1, 1]. */
  audio: Float32Array;
}

export type SttRequest = SttLoadMessage | SttTranscribeMessage;

export interface SttProgressMessage {
  type: 'progress';
  file: string;
  loaded: number;
  total: number;
  /** 0..100 over every file seen so far. */
  percent: number;
}
export interface SttReadyMessage {
  type: 'ready';
  device: 'webgpu' | 'wasm';
  /** Load plus warm-up, in ms. */
  loadMs: number;
}
export interface SttLoadErrorMessage {
  type: 'load-error';
  message: string;
}
export interface SttResultMessage {
  type: 'result';
  id: number;
  text: string;
  /** Inference time in ms. */
  ms: number;
}
export interface SttTranscribeErrorMessage {
  type: 'transcribe-error';
  id: number;
  message: string;
}

export type SttResponse =
  | SttProgressMessage
  | SttReadyMessage
  | SttLoadErrorMessage
  | SttResultMessage
  | SttTranscribeErrorMessage;
